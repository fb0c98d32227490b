"""GRPO with the verifier as the reward: LoRA reinforcement learning on the problem generator's prompts.

TRL's ``GRPOTrainer`` samples ``num_generations`` answers per prompt; each answer's code runs in the sandbox
against its instance's hidden tests (``verify_many``: a batch in parallel), and its reward is the fraction of
tests passed plus ``format_bonus`` when it is one well-formed python block defining the entry point. Partial
credit matters: an answer's advantage is its reward minus its group's mean, so a group whose answers all pass,
or all fail, has zero advantage and teaches nothing; passing 3 tests of 5 instead of 0 is a signal.

Prompts are the problem generator's instances at the training seed (42), in the model's chat template as for
SFT; an instance identical to one of the evaluation grid (seed 999) is dropped. No traces are needed.

The LoRA is new (``peft_config`` given to the trainer) or an SFT adapter's, loaded trainable: an adapter
loaded with ``PeftModel.from_pretrained`` is frozen by default, the trainer then updates nothing and the
reward stays flat, so the run refuses to start without trainable weights. With ``beta`` > 0 the reference
policy is the starting adapter (TRL keeps a frozen copy), not the bare base model.

The run is a ``train`` run (``method`` "grpo" in its settings): its logged steps go to the metrics table as
SFT's do (``train_sft``'s callback: reward, reward_std, frac_reward_zero_std, pass_rate, completion lengths,
clipped ratio, KL when beta > 0, ...), and every completion is stored as a sample of the run with its verdict
and per-test outcomes, numbered ``step * STEP_STRIDE + k`` (try k of that prompt at that step), so Inspect
shows what the model tried at any step. A stop ends the run within seconds (``stopping.StopWatch``) and saves
the adapter as of the last completed step; GRPO runs keep no checkpoints and do not resume.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .card import write_model_card
from .evaluate import record_isolation, sample_row
from .models import (DEFAULT_MODEL, default_device, load_model, load_tokenizer, materialize, training_dtype,
                     usable_problems)
from .problems import (DIFFICULTIES, EVAL_SEED, PROBLEM_TYPES, TRAIN_SEED, Instance, choice_problem, grid,
                       make_instance)
from .sandbox import Limits
from .settings import bounded, number_problems, option, stored
from .stopping import StopTraining, StopWatch
from .store import Store
from .train_options import (accuracy_callbacks, accuracy_every_field, accuracy_style_field, accuracy_tokens_field,
                            checkpointing, keep_best_field, output_dir_field, report_to_field, restore_best,
                            tracker_problems, tracking, watch_problems)
from .train_sft import OUTPUTS, score_answer_tokens_only
from .train_state import _callback_class, _is_oom, _peak_memory, _stop_from_watcher
from .verify import _FENCE, Verdict, _defines, verify_many

STEP_STRIDE = 1000  # a sample's number is step * STEP_STRIDE + its try: step 40's tries are 40000, 40001, ...
FORMAT_BONUS = 0.1


@dataclass
class GRPOSettings:
    """One GRPO run's settings (CLI flags and the stored run row). The defaults follow TRL's GRPO and LoRA
    guidance (docs: "LoRA Without Regret"): LoRA on all linear layers, a learning rate well above GRPOConfig's
    full fine-tuning 1e-6 (the guide's LoRA runs use 1e-5 to 5e-5), beta 0 (no reference model, TRL's default),
    8 generations per prompt (TRL's default) and a small effective batch (the guide: under 32 for LoRA)."""
    # form: the Train form's GRPO group a field shows in ("run": its own widget); the order is the form's and
    # its public API's (/start_grpo) argument order
    model: str = option(DEFAULT_MODEL, metavar="SPEC", form="run",
                        help="hub id, local dir, .gguf file or offline name (default %(default)s)")
    # an SFT adapter directory to start from; "": a new LoRA on the base model
    adapter: str = option("", metavar="DIR", cli_default=None, form="run",
                          help="start from this SFT adapter (its LoRA, trainable; its own r and alpha); default: a "
                          "new LoRA")
    experiment: str = option("grpo", metavar="NAME", form="run", help="run name (default %(default)s)")
    method: str = "grpo"             # what kind of training run, for readers of the stored settings
    problems: list[str] = option(default_factory=lambda: list(PROBLEM_TYPES), cli_default=None, metavar="TYPE",
                                 choices=tuple(PROBLEM_TYPES), form="run", help="problem types (default: all 11)")
    difficulties: list[int] = bounded(lo=1, hi=10, each=True, default_factory=lambda: list(DIFFICULTIES),
                                      cli_default=None, metavar="D", form="run", help="default: 1 to 10")
    per_cell: int = bounded(4, 1, 10_000, label="prompts per cell", metavar="N", form="prompts",
                            help="prompts per type x difficulty, indices 0..N-1 (default %(default)s)")
    max_steps: int = bounded(100, 1, 10**7, form="prompts", help="optimizer steps (default %(default)s)")
    num_generations: int = bounded(8, 2, 256, label="generations per prompt", metavar="G", form="prompts",
                                   help="answers sampled per prompt, the group (default %(default)s, TRL's)")
    prompts_per_step: int = bounded(2, 1, 4096, label="prompts per step", metavar="P", form="prompts",
                                    help="prompts per optimizer step: P x G completions a step (default "
                                    "%(default)s: 16)")
    # completions per forward/backward pass; the rest of a step's completions is gradient accumulation
    batch_size: int = bounded(8, 1, 65536, label="per-device batch (completions)", metavar="B", cli_default=None,
                              form="sampling", help="completions per forward/backward pass; the rest of a step is "
                              "gradient accumulation (default: G)")
    max_completion_length: int = bounded(512, 1, 1 << 20, label="max completion length (tokens)", metavar="L",
                                         form="sampling", help="tokens per answer (default %(default)s, TRL's; the "
                                         "clipped ratio says when it cuts answers)")
    learning_rate: float = bounded(5e-5, 0, 1, above=True, below=True, flag="--lr", form="sampling", metavar="LR",
                                   help="learning rate (default %(default)s; LoRA wants ~10x full fine-tuning's)")
    beta: float = bounded(0.0, 0, 100, label="KL coefficient (beta)", form="sampling",
                          help="KL coefficient against the starting policy (default %(default)s, TRL's: no "
                          "reference model)")
    temperature: float = bounded(1.0, 0, 100, above=True, form="sampling", help="sampling (default %(default)s)")
    # a new LoRA's shape; one that starts from an adapter keeps the adapter's own
    lora_r: int = bounded(16, 1, 4096, label="LoRA rank (r)", form="lora",
                          help="a new LoRA's rank (default %(default)s)")
    lora_alpha: int = bounded(32, 0, 1_000_000, above=True, label="LoRA alpha", form="lora",
                              help="a new LoRA's alpha (default %(default)s)")
    lora_dropout: float = bounded(0.0, 0, 1, below=True, label="LoRA dropout", form="lora",
                                  help="a new LoRA's dropout (default %(default)s)")
    target_modules: str = "all-linear"
    format_bonus: float = bounded(FORMAT_BONUS, 0, 10, label="format bonus", form="lora",
                                  help="reward for one well-formed python block defining the function (default "
                                  "%(default)s)")
    # sampling and shuffling; the prompts are always the training seed's
    seed: int = bounded(42, 0, 2**32 - 1, help="sampling and shuffling (default %(default)s); the prompts are "
                        "always seed 42's")
    device: str = option("auto", form="run", help="auto, cpu, cuda ... (default %(default)s)")
    # "auto" (vLLM colocated when installed and on a GPU), "hf" or "vllm"
    backend: str = option("auto", choices=("auto", "hf", "vllm"),
                          help="generation: auto uses vLLM colocated when installed and on a GPU, else transformers")
    gradient_checkpointing: bool | None = option(None, boolean=True, help="recompute activations in the backward "
                                                 "pass (default: on on a GPU, off on a CPU)")
    # grid accuracy during training (accuracy.py; 0 is off) and the adapter directory: as every training's
    accuracy_every: int = accuracy_every_field()
    accuracy_max_new_tokens: int = accuracy_tokens_field()
    accuracy_style: str = accuracy_style_field()
    keep_best: bool = keep_best_field()
    report_to: str = report_to_field()
    output_dir: str = output_dir_field()  # default outputs/<run id>-<experiment>

    # what train_sft's StoreCallback reads: no checkpoints, since a GRPO run does not resume (a stop still saves)
    checkpoint_steps = 0
    checkpoint_minutes = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "GRPOSettings":
        return stored(cls, data)

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    def check(self) -> None:
        """Refuse, in one message, whatever would only fail later: numbers, the batch split, problem types, the
        experiment name, the backend, a model spec that does not resolve, an adapter directory without one.
        Cheap (no model load): callers run it before a run row exists."""
        problems = number_problems(self)
        if not problems:
            if self.completions_per_step % self.batch_size:
                problems.append(f"a step's {self.completions_per_step} completions ({self.prompts_per_step} prompts x "
                                f"{self.num_generations} generations) are not a multiple of the per-device batch "
                                f"{self.batch_size}")
            if self.completions_per_step >= STEP_STRIDE:
                problems.append(f"at most {STEP_STRIDE - 1} completions per step (prompts x generations)")
        if wrong := choice_problem(self.problems):
            problems.append(wrong)
        if not self.difficulties:
            problems.append("choose at least one difficulty (1 to 10)")
        if not isinstance(self.experiment, str) or not re.fullmatch(r"[\w.\-]{1,64}", self.experiment):
            problems.append("experiment name: 1-64 letters, digits, '.', '-' or '_'")
        if self.method != "grpo":
            problems.append(f"method must be grpo, got {self.method!r}")
        if self.backend not in ("auto", "hf", "vllm"):
            problems.append("backend must be auto, hf or vllm")
        problems += usable_problems(self.model, self.adapter) + watch_problems(self) + tracker_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def out_dir(self, run_id: int) -> Path:
        return Path(self.output_dir or OUTPUTS / f"{run_id}-{self.experiment}")


def create_grpo_run(store: Store, settings: GRPOSettings) -> int:
    """Queue a GRPO run; without an output directory its adapter goes to ``outputs/<run>-<experiment>`` next
    to runs.db, as an SFT run's does."""
    run_id = store.create_run("train", asdict(settings), name=settings.experiment, model=settings.model)
    if not settings.output_dir:
        base = Path(store.path).resolve().parent if store.path != ":memory:" else Path.cwd()
        settings.output_dir = str(base / OUTPUTS / f"{run_id}-{settings.experiment}")
        store.update_run(run_id, settings=asdict(settings))
    return run_id


# ------------------------------------------------------------------------------------------ prompts

def prompt_instances(settings: GRPOSettings) -> tuple[list[Instance], int]:
    """The training seed's instances of the chosen cells, and how many were dropped for being identical to an
    instance of the evaluation grid of the same cells (the evaluation seed's)."""
    evaluation = {i.fingerprint() for i in grid(settings.problems, settings.difficulties, EVAL_SEED, settings.per_cell)}
    chosen = grid(settings.problems, settings.difficulties, TRAIN_SEED, settings.per_cell)
    kept = [i for i in chosen if i.fingerprint() not in evaluation]
    return kept, len(chosen) - len(kept)


def prompt_rows(instances: list[Instance]) -> list[dict]:
    """Conversational prompts (TRL applies the chat template, as for SFT) with the instance's key, which the
    reward functions receive as columns."""
    return [{"prompt": [{"role": "user", "content": i.prompt.strip()}], "problem": i.problem,
             "difficulty": i.difficulty, "seed": i.seed, "index": i.index} for i in instances]


# ------------------------------------------------------------------------------------------ reward

def well_formed(completion: str, entry_point: str) -> bool:
    """The format the bonus pays for: exactly one fenced block, opened with a python tag and closed, whose
    code parses and defines ``entry_point``."""
    lines = completion.splitlines()
    fences = [(n, m.group(2)) for n, line in enumerate(lines) if (m := _FENCE.match(line.strip()))]
    if len(fences) != 2 or fences[0][1].lower() not in ("python", "py", "python3") or fences[1][1]:
        return False
    code = "\n".join(lines[fences[0][0] + 1:fences[1][0]])
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # NUL bytes, thousands of nested brackets
        return False
    return _defines(code, entry_point)


def judge(instances: list[Instance], completions: list[str], limits: Limits = Limits()) -> list[tuple[Verdict, bool]]:
    """Each completion's verdict (its programs run in the sandbox in parallel) and whether it is well formed."""
    verdicts = verify_many(list(zip(instances, completions)), limits=limits)
    return [(v, well_formed(c, i.entry_point)) for v, c, i in zip(verdicts, completions, instances)]


def reward(verdict: Verdict, formed: bool, bonus: float = FORMAT_BONUS) -> float:
    """The fraction of tests passed, plus ``bonus`` for a well-formed answer."""
    return verdict.score + (bonus if formed else 0.0)


def _text(completion) -> str:
    """A completion as TRL passes it: a list of messages (conversational prompts) or plain text."""
    return completion[-1]["content"] if isinstance(completion, list) else completion


def reward_functions(store: Store, run_id: int, settings: GRPOSettings, eos: set[int]) -> list[Callable]:
    """TRL reward functions, weighted 1 and ``format_bonus``: ``tests_passed`` (the fraction of tests passed;
    it also stores every completion as a sample of the run, numbered by step, and logs ``pass_rate``) and
    ``well_formed`` (1 for one well-formed python block defining the function). TRL logs each one's mean and
    std and their weighted sum as ``reward``."""

    def tests_passed(completions, completion_ids, problem, difficulty, seed, index, trainer_state, log_metric,
                     **_) -> list[float]:
        step = trainer_state.global_step + 1  # generated for the optimizer step about to run
        instances = [make_instance(*key) for key in zip(problem, difficulty, seed, index)]
        texts = [_text(c) for c in completions]
        judged = judge(instances, texts)
        tries: dict[tuple, int] = {}
        with store.transaction():
            for instance, text, ids, (verdict, formed) in zip(instances, texts, completion_ids, judged):
                k = tries[instance.key] = tries.get(instance.key, -1) + 1
                cut_off = len(ids) >= settings.max_completion_length and ids[-1] not in eos
                row = sample_row(instance, text, verdict, sample=step * STEP_STRIDE + k, tokens=len(ids),
                                 cut_off=int(cut_off))
                total = reward(verdict, formed, settings.format_bonus)
                row["notes"] = [f"GRPO step {step}, try {k + 1}: reward {total:.3f} (tests {verdict.score:.2f}"
                                f"{f' + format {settings.format_bonus:g}' if formed else ', not well formed'})"
                                ] + row["notes"]
                store.add_sample(run_id, row)
        log_metric("pass_rate", sum(v.solved for v, _ in judged) / len(judged))
        return [v.score for v, _ in judged]

    def well_formed_block(completions, problem, difficulty, seed, index, **_) -> list[float]:
        instances = [make_instance(*key) for key in zip(problem, difficulty, seed, index)]
        return [float(well_formed(_text(c), i.entry_point)) for c, i in zip(completions, instances)]

    well_formed_block.__name__ = "well_formed"  # the name TRL logs it under (rewards/well_formed/mean)
    return [tests_passed, well_formed_block]


# ------------------------------------------------------------------------------------------ training

def _use_vllm(settings: GRPOSettings, device: str) -> bool:
    if settings.backend == "hf":
        return False
    from .generation import vllm_available
    if settings.backend == "vllm" and not (device.startswith("cuda") and vllm_available()):
        raise ValueError("the vLLM backend needs vLLM installed (pip install vllm) and a CUDA GPU")
    return device.startswith("cuda") and vllm_available()


def run_grpo(store: Store, run_id: int, settings: GRPOSettings, *, should_stop: Callable[[], bool] | None = None,
             log: Callable[[str], None] = print, progress_bar: bool = False, exit_when_stuck: bool = False) -> dict:
    """Train one GRPO run to the end (completed / stopped / failed, recorded in the store); returns its summary.
    A stop (a request in the store, SIGTERM, Ctrl-C; ``should_stop`` is also asked at each step end) ends it
    within seconds with the adapter as of the last completed step. ``exit_when_stuck`` (job processes): when the
    step in progress cannot be interrupted, the watcher thread saves that step's adapter and ends the process."""
    live: dict = {"summary": {}}
    stuck = ((lambda reason: _stop_from_watcher(store, run_id, settings, live, reason, log, keep=_keep_last_step))
             if exit_when_stuck else None)
    with StopWatch(lambda: store.stop_requested(run_id), fallback=stuck) as watch:
        try:
            watch.arm()
            return _train(store, run_id, settings, live, watch, should_stop or (lambda: store.stop_requested(run_id)),
                          log, progress_bar)
        except (StopTraining, KeyboardInterrupt) as exc:
            watch.disarm()
            with watch.lock:
                return _keep_last_step(store, run_id, settings, live, str(exc) or "interrupted from the keyboard")
        except BaseException as exc:
            watch.disarm()
            message = (f"out of GPU memory: lower the per-device batch ({settings.batch_size}), the generations per "
                       f"prompt ({settings.num_generations}) or the max completion length "
                       f"({settings.max_completion_length}), or turn gradient checkpointing back on"
                       if _is_oom(exc) else f"{type(exc).__name__}: {exc}")
            store.finish_run(run_id, "failed", error=message, summary=live["summary"] or None, message=message[:300])
            raise


def _load_policy(settings: GRPOSettings, log: Callable[[str], None]):
    """(tokenizer, model, peft_config or None, device, dtype). From an adapter: the base model with the adapter
    loaded trainable (``is_trainable``; frozen is the default and would train nothing) and no peft_config, which
    TRL refuses next to a PeftModel. Else the base model and a new LoRA's config for the trainer to apply."""
    import torch
    from peft import LoraConfig, PeftModel

    device = default_device(settings.device)
    dtype = training_dtype(device)
    if device == "cpu":
        score_answer_tokens_only()  # the completion's tokens, not the prompt's and the padding's too
    source = materialize(settings.model, log=log)
    tokenizer = load_tokenizer(source)
    # fp16 training keeps fp32 master weights (autocast); bf16 and fp32 load as they train
    model = load_model(source, dtype=torch.float32 if dtype == torch.float16 else dtype, device=device)
    if settings.adapter:
        return tokenizer, PeftModel.from_pretrained(model, settings.adapter, is_trainable=True), None, device, dtype
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return tokenizer, model, lora, device, dtype


def _train(store: Store, run_id: int, settings: GRPOSettings, live: dict, watch: StopWatch,
           should_stop: Callable[[], bool], log: Callable[[str], None], progress_bar: bool) -> dict:
    summary = live["summary"]
    store.mark_started(run_id)
    settings.check()
    record_isolation(store, run_id)  # the reward is the sandbox's verdict: how confined it was stays with the run
    out = settings.out_dir(run_id)
    instances, dropped = prompt_instances(settings)
    summary["prompts"] = {"seed": TRAIN_SEED, "instances": len(instances), "dropped_in_eval_grid": dropped}
    if len(instances) < settings.prompts_per_step:
        raise ValueError(f"{len(instances)} prompt(s) for {settings.prompts_per_step} prompts per step: choose more "
                         "problem types, difficulties or instances per cell")
    store.update_run(run_id, summary=summary, message="loading model")

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    tokenizer, model, lora, device, dtype = _load_policy(settings, log)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    store.update_run(run_id, adapter=str(out.resolve()))
    config = GRPOConfig(
        output_dir=str(out), max_steps=settings.max_steps, learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.completions_per_step // settings.batch_size,  # one generation a step
        num_generations=settings.num_generations, max_completion_length=settings.max_completion_length,
        temperature=settings.temperature, beta=settings.beta, reward_weights=[1.0, settings.format_bonus],
        use_vllm=_use_vllm(settings, device), vllm_mode="colocate", logging_steps=1, save_strategy="no",
        seed=settings.seed, bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, **tracking(settings, run_id),
        # auto: on a GPU only (on a CPU memory is plentiful and the recompute pure cost)
        gradient_checkpointing=checkpointing(device) if settings.gradient_checkpointing is None
        else bool(settings.gradient_checkpointing),
        use_cpu=device == "cpu", disable_tqdm=not progress_bar, dataloader_num_workers=0)
    eos = {tokenizer.eos_token_id} | set(_ids(model.generation_config.eos_token_id))
    callback = _callback_class()(store, run_id, should_stop, settings, watch.hold)
    measuring = accuracy_callbacks(store, run_id, settings, tokenizer, should_stop, log)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_functions(store, run_id, settings, eos), args=config,
                          train_dataset=Dataset.from_list(prompt_rows(instances)), processing_class=tokenizer,
                          peft_config=lora, callbacks=[callback, *measuring])
    live.update(out=out, tokenizer=tokenizer, callback=callback, trainer=trainer, device=device, dtype=dtype,
                began=time.time())
    trainable, total = trainer.model.get_nb_trainable_parameters()
    summary["parameters"] = {"trainable": trainable, "total": total}
    if not trainable:
        raise ValueError("the policy has no trainable weights, so GRPO would change nothing (an adapter loaded "
                         "without is_trainable=True is frozen)")
    summary["start"] = {"adapter": settings.adapter} if settings.adapter else {"lora": {
        "r": settings.lora_r, "alpha": settings.lora_alpha, "target_modules": settings.target_modules}}
    trainer.train()
    watch.disarm()
    with watch.lock:
        if callback.stopped:
            return _keep_last_step(store, run_id, settings, live, "stop requested")
        store.update_run(run_id, message="saving adapter")
        restore_best(trainer, measuring, summary, log)
        _save(live, out)
        summary.update(_summary(store, run_id, live, trainer.state.global_step))
        write_model_card(out, settings, summary, run_id)
        store.update_run(run_id, progress=1.0, eta=0.0)
        store.finish_run(run_id, "completed", summary=summary, message=f"completed; adapter saved to {out}")
        return summary


def _ids(value) -> list[int]:
    return [] if value is None else [value] if isinstance(value, int) else list(value)


def _save(live: dict, out: Path, weights: dict | None = None) -> None:
    """The trained adapter (``weights``: a kept copy of it) and the tokenizer to ``out``; only the "default"
    adapter, not the frozen reference copy TRL adds when beta > 0."""
    model = live["trainer"].model
    model.save_pretrained(str(out), selected_adapters=["default"], **({"state_dict": weights} if weights else {}))
    live["tokenizer"].save_pretrained(str(out))


def _summary(store: Store, run_id: int, live: dict, steps: int) -> dict:
    """Steps, time, the first and last logged reward and the last pass rate, device and memory."""
    trainer = live["trainer"]
    rewards = [m["value"] for m in store.metrics(run_id, ["reward"])]
    passes = [m["value"] for m in store.metrics(run_id, ["pass_rate"])]
    return {"steps": steps, "max_steps": trainer.state.max_steps, "train_seconds": time.time() - live["began"],
            "first_reward": rewards[0] if rewards else None, "final_reward": rewards[-1] if rewards else None,
            "final_pass_rate": passes[-1] if passes else None, "device": live["device"], "dtype": str(live["dtype"]),
            "stopped_early": steps < trainer.state.max_steps, **_peak_memory(live["device"])}


def _keep_last_step(store: Store, run_id: int, settings: GRPOSettings, live: dict, reason: str) -> dict:
    """End a stopped run: save the adapter as of the last completed step (the callback's copy), with its
    tokenizer and model card, and say in the run which step was kept."""
    summary, callback = live["summary"], live.get("callback")
    kept = callback.snapshot if callback else None
    out = live.get("out")
    if kept:
        step, weights = kept
        _save(live, out, weights)
        summary.update(_summary(store, run_id, live, step))
        write_model_card(out, settings, summary, run_id)
        what = f"the adapter as of step {step} (the last completed step) was saved to {out}"
    else:
        what = "no training step had completed, so there was no adapter to save"
    store.finish_run(run_id, "stopped", summary=summary or None, error=f"stopped ({reason}); {what}",
                     message=f"stopped; {what}"[:300])
    return summary


