"""LoRA supervised fine-tuning on verified teacher traces, with TRL's SFTTrainer.

The defaults are the reference recipe: LoRA r=16, alpha=32 on all linear projections, 3 epochs, lr 2e-4,
effective batch 4 (gradient accumulation when the per-device batch is smaller), max length 1024, warmup
ratio 0.1; bf16 where the GPU supports it, else fp16 on GPU; on a CPU bf16 where it computes in it natively
(AMX, AVX512-BF16), else fp32, with a per-device batch of 1 (no padding) and no gradient checkpointing (its
recompute only pays for GPU memory): ``SFTSettings.for_device`` and ``models.training_dtype``, recorded in
the run's summary (``chosen``). Only traces that pass their
instance's hidden tests are trained on. Rows are prompt/completion conversations in the model's own chat
template, so TRL puts the loss on the assistant's answer only.

``StoreCallback`` (train_state.py, with the checkpoints and the stop that keeps the last step; GRPO uses them
too) writes every logged step (loss, learning rate, grad norm, epoch, tokens/s) to runs.db
as it happens and keeps the run's progress and ETA current. Work is never lost to a stop or a crash:
- after each completed optimizer step it keeps a CPU copy of the trainable (LoRA) weights, and of the
  optimizer, scheduler and RNG states; a stop interrupts the step in progress within seconds
  (``stopping.StopWatch``), saves the adapter as of that copy and writes a resumable checkpoint of that
  step from it, so a stop costs at most the step in progress, however long a step takes, and Resume goes on
  from the step that was kept, on the curve an uninterrupted run would have drawn;
- every ``checkpoint_steps`` steps or ``checkpoint_minutes`` minutes, whichever comes first, it has the
  trainer write a checkpoint (adapter, optimizer, scheduler, RNG; only the latest is kept), from which
  ``train --resume RUN`` continues a killed, stopped or failed run on the same loss curve.
The adapter directory gets a model card that gains evaluation results once they exist.

Under a launcher (``accelerate launch``, ``torchrun``) every process runs ``run_training``: the Trainer's own data
parallelism, the effective batch kept over all processes (``SFTSettings.split``), stops and checkpoints at the step
the main process decides, and files written by the main process alone; the other processes get a stand-in store
(``distributed.py``).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from .card import CARD_EVAL_MARK, add_eval_to_card, write_model_card  # noqa: F401 (callers import them from here)
from .distributed import processes
from .models import (DEFAULT_MODEL, DTYPES, default_device, load_model, load_tokenizer, materialize, training_dtype,
                     usable_problems)
from .settings import bounded, number_problems, option, stored
from .stopping import StopTraining, StopWatch
from .store import Store
from .traces import BUNDLED, is_dataset, sft_rows, summary as trace_summary, verify_file, wording_coverage
from .train_options import (accuracy_callbacks, accuracy_every_field, accuracy_style_field, accuracy_tokens_field,
                            checkpointing, keep_best_field, output_dir_field, report_to_field, restore_best,
                            tracker_problems, tracking, watch_problems)
from .train_state import (RESUMABLE, _callback_class, _drop_checkpoints, _is_oom, _keep_last_step,  # noqa: F401
                          _stop_from_watcher, _train_summary, latest_checkpoint)  # (callers take these from here)

OUTPUTS = Path("outputs")


@dataclass
class SFTSettings:
    """One training run's settings: the CLI flags, the Train form and the stored run row all map to these.
    Numeric fields carry their allowed range (``bounded``), which ``check`` enforces."""
    # form: the form group a field shows in ("run": its own widget; the rest are numbers, a row per group);
    # the order of the fields is the Train form's, and its public API's (/start_training), argument order
    model: str = option(DEFAULT_MODEL, metavar="SPEC", form="run",
                        help="hub id, local dir, .gguf file or offline name (default %(default)s)")
    traces: str = option(str(BUNDLED), metavar="FILE", form="run",
                         help="trace JSONL, a dataset folder in the Hub's layout, or a Hub dataset id USER/NAME (its train "
                         "split; loaded with datasets.load_dataset) (default: the bundled set)")
    experiment: str = option("sft", metavar="NAME", form="run", help="run name (default %(default)s)")
    epochs: float = bounded(3.0, 0, 1000, help="passes over the traces", form="schedule")
    learning_rate: float = bounded(2e-4, 0, 1, above=True, below=True, flag="--lr", form="schedule",
                                   metavar="LR", help="peak learning rate (default %(default)s)")
    lora_r: int = bounded(16, 1, 4096, label="LoRA rank (r)", help="LoRA rank", form="lora")
    lora_alpha: int = bounded(32, 0, 1_000_000, above=True, label="LoRA alpha", form="lora",
                              help="LoRA scaling (alpha / r scales the update)")
    lora_dropout: float = bounded(0.05, 0, 1, below=True, label="LoRA dropout", form="lora",
                                  help="dropout on the LoRA input")
    target_modules: str = "all-linear"
    effective_batch: int = bounded(4, 1, 65536, help="traces per optimizer step", form="batch")
    # per device; the rest of the effective batch is gradient accumulation. 0 is "auto" (``for_device``): 1 on
    # a CPU, where padding 4 traces of 300-700 tokens to the longest is pure cost, min(4, effective) on a GPU
    batch_size: int = bounded(0, 0, 65536, label="per-device batch (0: auto; rest: accumulation)", form="batch",
                              help="per-device batch; the rest is gradient accumulation (default 0: auto, 1 on a "
                              "CPU, min(4, effective batch) on a GPU)")
    max_length: int = bounded(1024, 64, 1 << 20, label="max length (tokens)", help="tokens (default %(default)s)",
                              form="batch")
    warmup_ratio: float = bounded(0.1, 0, 1, below=True, form="schedule",
                                  help="fraction of the steps that warm the learning rate up")
    max_steps: int = bounded(-1, -1, 10**7, label="max steps (-1: epochs decide)", form="schedule",
                             help="> 0 overrides epochs (default off)")
    seed: int = bounded(42, 0, 2**32 - 1, help="LoRA initialisation and data order")
    device: str = option("auto", form="run", help="auto, cpu, cuda ... (default %(default)s)")
    dtype: str = option("auto", choices=DTYPES, help="auto (bf16 on GPUs that have it, else fp16; bf16 on CPUs with "
                        "AMX or AVX512-BF16, else float32), float32, bfloat16 or float16 (default %(default)s)")
    # auto (None): on on a GPU (the 3-epoch reference run on an H100 peaks at 1.8 GB instead of 8.0 GB for ~25%
    # more time), off on a CPU, where memory is plentiful and the recompute is pure cost
    gradient_checkpointing: bool | None = option(None, boolean=True,
                                                 help="recompute activations in the backward pass: ~4x less GPU "
                                                 "memory, ~25%% slower (default: on on a GPU, off on a CPU)")
    # a resumable checkpoint (adapter, optimizer, scheduler, RNG) every N steps or M minutes, whichever first;
    # only the latest is kept. ~1 s for the 0.5B reference against CPU steps of a minute or more.
    checkpoint_steps: int = bounded(50, 0, 10**7, label="checkpoint every N steps (0: off)", metavar="N",
                                    help="save a resumable checkpoint every N optimizer steps (0: off; default "
                                    "%(default)s) ...")
    checkpoint_minutes: float = bounded(5.0, 0, 10**4, label="checkpoint every M minutes (0: off)", metavar="M",
                                        help="... or every M minutes, whichever comes first (0: off; default "
                                        "%(default)s); only the latest is kept, and it is removed once the run "
                                        "completes")
    # grid accuracy during training (accuracy.py; 0 is off) and the adapter directory: as every training's
    accuracy_every: int = accuracy_every_field()
    accuracy_max_new_tokens: int = accuracy_tokens_field()
    accuracy_style: str = accuracy_style_field()
    keep_best: bool = keep_best_field()
    report_to: str = report_to_field()
    output_dir: str = output_dir_field()  # default outputs/<run id>-<experiment>

    @classmethod
    def from_dict(cls, data: dict) -> "SFTSettings":
        return stored(cls, data)

    @property
    def grad_accum(self) -> int:
        return self.effective_batch // (self.batch_size or 1)

    def for_device(self, device: str) -> "SFTSettings":
        """These settings with "auto" decided for ``device``: the per-device batch (1 on a CPU, min(4, effective)
        on a GPU) and gradient checkpointing (on on a GPU; on a CPU off, where its recompute is pure cost, unless
        less than ``CPU_MEMORY_FOR_NO_CHECKPOINTING_GB`` is available). The optimizer steps never change: the rest
        of the effective batch is accumulation."""
        gpu = not device.startswith("cpu")
        return replace(self, batch_size=self.batch_size or (min(4, self.effective_batch) if gpu else 1),
                       gradient_checkpointing=checkpointing(device) if self.gradient_checkpointing is None
                       else bool(self.gradient_checkpointing))

    def split(self, processes: int) -> tuple[int, int]:
        """(per-device batch, gradient accumulation steps) that make the effective batch over ``processes``
        data-parallel processes, so that a run takes the same optimizer steps however many processes share it:
        the per-device batch shrinks to fit (effective 4 over 2 processes: 2 each, no accumulation)."""
        per_device = min(self.batch_size or 1, self.effective_batch // processes)
        if per_device < 1 or self.effective_batch % (per_device * processes):
            raise ValueError(f"effective batch {self.effective_batch} cannot be shared evenly by {processes} "
                             f"processes with a per-device batch of at most {self.batch_size}: make it a multiple "
                             f"of {processes} x the per-device batch")
        return per_device, self.effective_batch // (per_device * processes)

    def check(self) -> None:
        """Refuse, in one message, whatever would only fail later: numbers (NaN, infinities, fractions, ranges),
        the batch split, the experiment name, a trace file that is not there, a model spec that does not
        resolve. Cheap (no model load, no trace verification): callers run it before a run row exists."""
        problems = number_problems(self)
        if not problems:  # the rules between fields need numbers that passed on their own
            if not self.batch_size:
                pass  # auto: decided for the device (for_device)
            elif self.batch_size > self.effective_batch:
                problems.append("per-device batch size must be between 1 and the effective batch size")
            elif self.effective_batch % self.batch_size:
                problems.append(f"effective batch {self.effective_batch} is not a multiple of the per-device "
                                f"batch {self.batch_size}")
            if self.epochs <= 0 and self.max_steps <= 0:
                problems.append("epochs must be > 0 (or max steps > 0)")
        if not isinstance(self.experiment, str) or not re.fullmatch(r"[\w.\-]{1,64}", self.experiment):
            problems.append("experiment name: 1-64 letters, digits, '.', '-' or '_'")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.traces, str) or not (Path(self.traces).is_file() or is_dataset(self.traces)):
            problems.append(f"trace file not found: {self.traces}")
        problems += usable_problems(self.model)
        problems += watch_problems(self)
        problems += tracker_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def out_dir(self, run_id: int) -> Path:
        return Path(self.output_dir or OUTPUTS / f"{run_id}-{self.experiment}")


def create_train_run(store: Store, settings: SFTSettings) -> int:
    """Queue a training run; its stored settings are what the job process trains with. Without an output
    directory, the adapter goes to ``outputs/<run>-<experiment>`` next to runs.db (as logs and uploads do),
    not under whatever directory the app happened to start in: two stores must never share adapters."""
    run_id = store.create_run("train", asdict(settings), name=settings.experiment, model=settings.model)
    if not settings.output_dir:
        base = Path(store.path).resolve().parent if store.path != ":memory:" else Path.cwd()
        settings.output_dir = str(base / OUTPUTS / f"{run_id}-{settings.experiment}")
        store.update_run(run_id, settings=asdict(settings))
    return run_id


# ------------------------------------------------------------------------------------------ checkpoints

def run_dir(run: dict) -> Path:
    """Where a stored training run writes its adapter and checkpoints."""
    return Path(run.get("adapter") or SFTSettings.from_dict(run["settings"]).out_dir(run["id"]))


def resume_point(run: dict) -> tuple[SFTSettings, tuple[int, Path]]:
    """The settings and checkpoint a stored training run resumes from; ValueError saying why it cannot."""
    if run["kind"] != "train":
        raise ValueError(f"run {run['id']} is not a training run")
    if run["settings"].get("method") == "grpo":
        raise ValueError(f"run {run['id']} is a GRPO run: GRPO keeps no checkpoints, so it does not resume")
    if run["status"] not in RESUMABLE:
        raise ValueError(f"run {run['id']} is {run['status']}: only an interrupted, stopped or failed training resumes")
    settings = SFTSettings.from_dict(run["settings"])
    checkpoint = latest_checkpoint(run_dir(run))
    if checkpoint is None:
        raise ValueError(f"run {run['id']} has no checkpoint in {run_dir(run)} to resume from (one is saved every "
                         f"{settings.checkpoint_steps} steps or {settings.checkpoint_minutes:g} minutes, and when it "
                         "is stopped after a completed step)")
    settings.check()
    return settings, checkpoint


# ------------------------------------------------------------------------------------------ training

def oom_message(settings: SFTSettings) -> str:
    return (f"out of GPU memory at per-device batch {settings.batch_size} and max length {settings.max_length}: "
            f"lower the per-device batch (gradient accumulation keeps the effective batch of "
            f"{settings.effective_batch}), lower the max length, or turn gradient checkpointing back on")


def score_answer_tokens_only() -> None:
    """Make TRL's fused LM head score only the answer tokens on a CPU too, as it does on Triton devices.

    TRL 1.16 computes the loss through the 151,936-word vocabulary in chunks (``add_fused_lm_head``), but off
    CUDA/XPU it scores every position, prompt and padding included, because on Neuron a changing count of
    positions recompiles the graph. Nothing recompiles on a CPU, and there the vocabulary projection and its
    backward were ~70% of a Qwen2.5-Coder-0.5B optimizer step (py-spy, batch 4 padded): scoring the answer
    tokens alone does the same loss and gradient on a fraction of the positions. Only the choice of positions
    changes (``trl.trainer.utils``'s own name for the test); which kernel runs is decided in TRL's kernel module
    as before. A TRL without that name is left alone."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "answer_tokens_only", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or original(device)

    compact.answer_tokens_only, compact.original = True, original
    trl_utils._use_triton = compact


def _trainer_class(hold: Callable):
    from trl import SFTTrainer

    class Trainer(SFTTrainer):
        def _save_checkpoint(self, model, trial):
            with hold():  # a stop waits: half a checkpoint would be worse than none
                super()._save_checkpoint(model, trial)

    return Trainer


def _fit_length(rows: list[dict], tokenizer, max_length: int) -> tuple[list[dict], dict]:
    """Drop rows whose prompt alone fills max_length (no answer token would be trained on); count the
    rows the trainer will truncate, so the run says so instead of silently training on cut answers."""
    kept, dropped, truncated, longest = [], 0, 0, 0
    for row in rows:
        prompt = len(tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True,
                                                   return_dict=True)["input_ids"])
        answer = len(tokenizer(row["completion"][0]["content"], add_special_tokens=False).input_ids) + 2
        longest = max(longest, prompt + answer)
        if prompt >= max_length - 16:
            dropped += 1
            continue
        truncated += prompt + answer > max_length
        kept.append(row)
    return kept, {"max_length": max_length, "longest_tokens": longest, "truncated": truncated,
                  "dropped_too_long": dropped}


def run_training(store: Store, run_id: int, settings: SFTSettings, *, should_stop: Callable[[], bool] | None = None,
                 log: Callable[[str], None] = print, progress_bar: bool = False, resume: bool = False,
                 exit_when_stuck: bool = False) -> dict:
    """Train one run to the end (completed / stopped / failed, recorded in the store). Returns its summary.

    A stop (a request in the store, SIGTERM, Ctrl-C; ``should_stop`` is also asked at each step end) ends
    the run within seconds: the step in progress is interrupted (``stopping.StopWatch``) and the adapter is
    saved as of the last completed optimizer step, as ``stopped``. ``resume``: continue from the run's
    newest checkpoint with its optimizer, scheduler and RNG state, appending to its metrics.
    ``exit_when_stuck`` (job processes): when the step cannot be interrupted (one long C call), the watcher
    thread saves the last completed step, records the run and ends the process."""
    live: dict = {"summary": {}}
    stuck = (lambda reason: _stop_from_watcher(store, run_id, settings, live, reason, log)) if exit_when_stuck else None
    # several processes (a launch): a stop request is taken at the next step end, by all of them at once (the
    # callback); a signal from the launcher still interrupts each process's step at once
    requested = (lambda: False) if processes(settings.device).world > 1 else (lambda: store.stop_requested(run_id))
    with StopWatch(requested, fallback=stuck) as watch:
        try:
            watch.arm()
            return _train(store, run_id, settings, live, watch, should_stop or (lambda: store.stop_requested(run_id)),
                          log, progress_bar, resume)
        except (StopTraining, KeyboardInterrupt) as exc:
            watch.disarm()
            with watch.lock:
                return _keep_last_step(store, run_id, settings, live, str(exc) or "interrupted from the keyboard")
        except BaseException as exc:
            watch.disarm()
            message = oom_message(settings) if _is_oom(exc) else f"{type(exc).__name__}: {exc}"
            store.finish_run(run_id, "failed", error=message, summary=live["summary"] or None, message=message[:300])
            raise


def _train(store: Store, run_id: int, settings: SFTSettings, live: dict, watch: StopWatch,
           should_stop: Callable[[], bool], log: Callable[[str], None], progress_bar: bool, resume: bool) -> dict:
    summary = live["summary"]
    store.mark_started(run_id)
    settings.check()
    device = default_device(settings.device)
    settings = settings.for_device(device)  # the stored settings keep "auto"; the run's summary says what it chose
    world = processes(settings.device).world  # data-parallel processes of a launch (distributed.py)
    per_device, accumulation = settings.split(world)
    if world > 1:
        summary["processes"] = {"count": world, "per_device_batch": per_device, "grad_accum": accumulation}
    out = settings.out_dir(run_id)
    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise ValueError(f"no checkpoint to resume from in {out}")
    store.update_run(run_id, message="verifying traces")
    checks = verify_file(settings.traces)
    counts = trace_summary(checks)
    rejected = [{"line": c.line, "id": c.id, "reason": c.reason} for c in checks if not c.kept]
    # which prompt styles the traces teach, and whether in the evaluation's own words: what every score of this
    # adapter is, in-distribution or a transfer (the Eval and Learned-vs-forgot views say it per style)
    summary["traces"] = {"file": settings.traces, "kept": counts["kept"], "rejected": counts["rejected"],
                         "rejected_detail": rejected[:50], "per_cell": counts["per_cell"],
                         "wording": wording_coverage(checks)}
    store.update_run(run_id, summary=summary)
    rows = sft_rows(checks)
    if not rows:
        raise ValueError(f"no trace in {settings.traces} passed verification; nothing to train on")
    log(f"{counts['kept']} traces kept, {counts['rejected']} rejected")

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    store.update_run(run_id, message="loading model")
    source = materialize(settings.model, log=log)
    tokenizer = load_tokenizer(source)
    dtype = training_dtype(device, settings.dtype)
    summary["chosen"] = {"device": device, "dtype": str(dtype).removeprefix("torch."), "per_device_batch": per_device,
                         "grad_accum": accumulation, "gradient_checkpointing": settings.gradient_checkpointing}
    log("training on {device} in {dtype}, per-device batch {per_device_batch} x {grad_accum} accumulation, gradient "
        "checkpointing {}".format("on" if settings.gradient_checkpointing else "off", **summary["chosen"]))
    if device == "cpu":
        score_answer_tokens_only()
    # fp16 training keeps fp32 master weights (autocast); bf16 and fp32 load as they train
    model = load_model(source, dtype=torch.float32 if dtype == torch.float16 else dtype, device=device)
    rows, summary["length"] = _fit_length(rows, tokenizer, settings.max_length)
    store.update_run(run_id, summary=summary)
    if not rows:
        raise ValueError(f"every kept trace's prompt is longer than max length {settings.max_length} tokens "
                         "(nothing of the answer would be trained on): raise the max length")
    store.update_run(run_id, adapter=str(out.resolve()))
    # a fresh run drops checkpoints an earlier run left in the same directory; a resumed one the partial ones
    if processes().is_main:
        _drop_checkpoints(out, keep=checkpoint[1] if checkpoint else None)
    config = SFTConfig(
        output_dir=str(out), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        learning_rate=settings.learning_rate, per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation, max_length=settings.max_length,
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio in this transformers version
        lr_scheduler_type="linear", logging_steps=1,
        save_strategy="no", save_total_limit=1,  # the callback decides when (steps or minutes)
        seed=settings.seed, bf16=dtype == torch.bfloat16, **tracking(settings, run_id),
        fp16=dtype == torch.float16, use_cpu=device == "cpu", gradient_checkpointing=settings.gradient_checkpointing,
        completion_only_loss=True, disable_tqdm=not progress_bar, dataloader_num_workers=0,
        ddp_find_unused_parameters=False)  # several processes: every LoRA weight is used in every forward pass
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=settings.target_modules, task_type="CAUSAL_LM")
    callback = _callback_class()(store, run_id, should_stop, settings, watch.hold,
                                 logged_until=(store.last_step(run_id) or 0) if resume else 0)
    measuring = accuracy_callbacks(store, run_id, settings, tokenizer, should_stop, log)
    trainer = _trainer_class(watch.hold)(model=model, args=config, train_dataset=Dataset.from_list(rows),
                                         processing_class=tokenizer, peft_config=lora,
                                         callbacks=[callback, *measuring])
    if not progress_bar:  # the Trainer would print each step as a dict of strings: our own line instead
        from transformers.trainer_callback import PrinterCallback
        trainer.remove_callback(PrinterCallback)
        callback.print_steps = True
    live.update(out=out, tokenizer=tokenizer, callback=callback, trainer=trainer, device=device, dtype=dtype,
                began=time.time())
    trainable, total = trainer.model.get_nb_trainable_parameters()
    summary["parameters"] = {"trainable": trainable, "total": total}
    if checkpoint:
        summary["resumed_from_step"] = checkpoint[0]
        log(f"resuming from {checkpoint[1]}")
    trainer.train(resume_from_checkpoint=str(checkpoint[1]) if checkpoint else None)
    watch.disarm()
    with watch.lock:
        if callback.stopped:
            return _keep_last_step(store, run_id, settings, live, "stop requested")
        store.update_run(run_id, message="saving adapter")
        restore_best(trainer, measuring, summary, log)
        trainer.save_model(str(out))  # the main process writes it (the trainer's own rule)
        summary.update(_train_summary(live, trainer.state.global_step))
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(str(out))
            write_model_card(out, settings, summary, run_id)
            _drop_checkpoints(out)  # the adapter is final; optimizer state would only take room
        store.update_run(run_id, progress=1.0, eta=0.0)
        store.finish_run(run_id, "completed", summary=summary, message=f"completed; adapter saved to {out}")
        return summary
