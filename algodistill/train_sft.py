"""LoRA supervised fine-tuning on verified teacher traces, with TRL's SFTTrainer.

The defaults are the reference recipe: LoRA r=16, alpha=32 on all linear projections, 3 epochs, lr 2e-4,
effective batch 4 (gradient accumulation when the per-device batch is smaller), max length 1024, warmup
ratio 0.1; bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU. Only traces that pass their
instance's hidden tests are trained on. Rows are prompt/completion conversations in the model's own chat
template, so TRL puts the loss on the assistant's answer only.

``StoreCallback`` writes every logged step (loss, learning rate, grad norm, epoch, tokens/s) to runs.db
as it happens, keeps the run's progress and ETA current, and honours a stop request at the next step;
the adapter is saved either way, with a model card that gains evaluation results once they exist.
"""

from __future__ import annotations

import re
import resource
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

from .card import CARD_EVAL_MARK, add_eval_to_card, write_model_card  # noqa: F401 (callers import them from here)
from .models import DEFAULT_MODEL, default_device, default_dtype, load_model, load_tokenizer, materialize
from .store import Store
from .traces import BUNDLED, sft_rows, summary as trace_summary, verify_file

OUTPUTS = Path("outputs")


@dataclass
class SFTSettings:
    model: str = DEFAULT_MODEL
    traces: str = str(BUNDLED)
    experiment: str = "sft"
    epochs: float = 3.0
    learning_rate: float = 2e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    effective_batch: int = 4
    batch_size: int = 4              # per device; the rest of the effective batch is gradient accumulation
    max_length: int = 1024
    warmup_ratio: float = 0.1
    max_steps: int = -1              # > 0 overrides epochs (quick checks)
    seed: int = 42
    device: str = "auto"
    # on: the 3-epoch reference run on an H100 peaks at 1.8 GB instead of 8.0 GB for ~25% more time
    gradient_checkpointing: bool = True
    output_dir: str = ""             # default outputs/<run id>-<experiment>

    @classmethod
    def from_dict(cls, data: dict) -> "SFTSettings":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def grad_accum(self) -> int:
        return self.effective_batch // self.batch_size

    def check(self) -> None:
        problems = []
        if not 1 <= self.batch_size <= self.effective_batch:
            problems.append("per-device batch size must be between 1 and the effective batch size")
        elif self.effective_batch % self.batch_size:
            problems.append(f"effective batch {self.effective_batch} is not a multiple of the per-device "
                            f"batch {self.batch_size}")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("epochs must be > 0 (or max steps > 0)")
        if not 0 < self.learning_rate < 1:
            problems.append("learning rate must be between 0 and 1")
        if self.lora_r < 1 or self.lora_alpha <= 0:
            problems.append("LoRA rank must be >= 1 and alpha > 0")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            problems.append("dropout and warmup ratio must be in [0, 1)")
        if self.max_length < 64:
            problems.append("max length must be at least 64 tokens")
        if not re.fullmatch(r"[\w.\-]{1,64}", self.experiment or ""):
            problems.append("experiment name: 1-64 letters, digits, '.', '-' or '_'")
        if not Path(self.traces).is_file():
            problems.append(f"trace file not found: {self.traces}")
        if problems:
            raise ValueError("; ".join(problems))


def create_train_run(store: Store, settings: SFTSettings) -> int:
    """Queue a training run; its stored settings are what the job process trains with."""
    return store.create_run("train", asdict(settings), name=settings.experiment, model=settings.model)


def oom_message(settings: SFTSettings) -> str:
    return (f"out of GPU memory at per-device batch {settings.batch_size} and max length {settings.max_length}: "
            f"lower the per-device batch (gradient accumulation keeps the effective batch of "
            f"{settings.effective_batch}), lower the max length, or turn gradient checkpointing back on")


def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _callback_class():
    from transformers import TrainerCallback

    class StoreCallback(TrainerCallback):
        """Every log to runs.db as it happens; progress/ETA each step; stop requests at the next step."""

        def __init__(self, store: Store, run_id: int, should_stop: Callable[[], bool]):
            self.store, self.run_id, self.should_stop = store, run_id, should_stop
            self.began = time.time()
            self.last_tokens: tuple[float, float] | None = None  # (tokens so far, when)
            self.last_loss: float | None = None
            self.stopped = False
            self.final: dict = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.began = time.time()
            self.store.update_run(self.run_id, progress=0.0, message=f"training: {state.max_steps} steps")

        def on_step_end(self, args, state, control, **kwargs):
            done, total = state.global_step, max(state.max_steps, 1)
            elapsed = time.time() - self.began
            self.store.update_run(self.run_id, progress=done / total, eta=elapsed / done * (total - done),
                                  message=f"step {done}/{total}")
            if self.should_stop():
                self.stopped = control.should_training_stop = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the closing summary, not a step
                self.final = logs
                return
            now = time.time()
            if "num_tokens" in logs:
                if self.last_tokens and now > self.last_tokens[1]:
                    logs["tokens_per_s"] = (logs["num_tokens"] - self.last_tokens[0]) / (now - self.last_tokens[1])
                elif now > self.began:
                    logs["tokens_per_s"] = logs["num_tokens"] / (now - self.began)
                self.last_tokens = (logs["num_tokens"], now)
            self.last_loss = logs.get("loss", self.last_loss)
            epoch = logs.pop("epoch", state.epoch)
            self.store.log_metrics(self.run_id, state.global_step, logs, epoch=epoch)

    return StoreCallback


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


def _peak_memory(device: str) -> dict:
    import torch
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def run_training(store: Store, run_id: int, settings: SFTSettings, *, should_stop: Callable[[], bool] | None = None,
                 log: Callable[[str], None] = print, progress_bar: bool = False) -> dict:
    """Train one run to the end (completed / stopped / failed, recorded in the store). Returns its summary."""
    stop = should_stop or (lambda: store.stop_requested(run_id))
    store.mark_started(run_id)
    summary: dict = {}
    try:
        settings.check()
        store.update_run(run_id, message="verifying traces")
        checks = verify_file(settings.traces)
        counts = trace_summary(checks)
        rejected = [{"line": c.line, "id": c.id, "reason": c.reason} for c in checks if not c.kept]
        summary["traces"] = {"file": settings.traces, "kept": counts["kept"], "rejected": counts["rejected"],
                             "rejected_detail": rejected[:50], "per_cell": counts["per_cell"]}
        store.update_run(run_id, summary=summary)
        rows = sft_rows(checks)
        if not rows:
            raise ValueError(f"no trace in {settings.traces} passed verification; nothing to train on")
        log(f"{counts['kept']} traces kept, {counts['rejected']} rejected")

        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer

        device = default_device(settings.device)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        store.update_run(run_id, message="loading model")
        source = materialize(settings.model, log=log)
        tokenizer = load_tokenizer(source)
        dtype = default_dtype(device)
        # fp16 training keeps fp32 master weights (autocast); bf16 and fp32 load as they train
        model = load_model(source, dtype=torch.float32 if dtype == torch.float16 else dtype, device=device)
        rows, summary["length"] = _fit_length(rows, tokenizer, settings.max_length)
        store.update_run(run_id, summary=summary)
        if not rows:
            raise ValueError(f"every kept trace's prompt is longer than max length {settings.max_length} tokens "
                             "(nothing of the answer would be trained on): raise the max length")
        out = Path(settings.output_dir or OUTPUTS / f"{run_id}-{settings.experiment}")
        store.update_run(run_id, adapter=str(out))
        config = SFTConfig(
            output_dir=str(out), num_train_epochs=settings.epochs, max_steps=settings.max_steps,
            learning_rate=settings.learning_rate, per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.grad_accum, max_length=settings.max_length,
            warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio in this transformers version
            lr_scheduler_type="linear", logging_steps=1, save_strategy="epoch", save_only_model=True,
            save_total_limit=1, report_to="none", seed=settings.seed, bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16, use_cpu=device == "cpu", gradient_checkpointing=settings.gradient_checkpointing,
            completion_only_loss=True, disable_tqdm=not progress_bar, dataloader_num_workers=0)
        lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                          target_modules=settings.target_modules, task_type="CAUSAL_LM")
        callback = _callback_class()(store, run_id, stop)
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=lora, callbacks=[callback])
        trainable, total = trainer.model.get_nb_trainable_parameters()
        summary["parameters"] = {"trainable": trainable, "total": total}
        began = time.time()
        trainer.train()
        seconds = time.time() - began
        store.update_run(run_id, message="saving adapter")
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        tokens = callback.last_tokens[0] if callback.last_tokens else None
        summary.update({"steps": trainer.state.global_step, "max_steps": trainer.state.max_steps,
                        "train_seconds": seconds, "tokens": tokens,
                        "tokens_per_s": tokens / seconds if tokens and seconds else None,
                        "final_loss": callback.last_loss, "device": device, "dtype": str(dtype),
                        "stopped_early": callback.stopped, **_peak_memory(device)})
        write_model_card(out, settings, summary, run_id)
        status = "stopped" if callback.stopped else "completed"
        store.update_run(run_id, progress=1.0 if status == "completed" else None, eta=0.0,
                         message=f"{status}; adapter saved to {out}")
        store.finish_run(run_id, status, summary=summary,
                         error="stopped on request; the adapter so far was saved" if callback.stopped else None)
        return summary
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            status, message = "stopped", "interrupted from the keyboard"
        else:
            status = "failed"
            message = oom_message(settings) if _is_oom(exc) else f"{type(exc).__name__}: {exc}"
        store.update_run(run_id, message=message[:300])
        store.finish_run(run_id, status, error=message, summary=summary or None)
        raise
