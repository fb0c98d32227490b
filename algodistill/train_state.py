"""What a training run keeps so that a stop or a crash costs at most the step in progress, for SFT and GRPO alike.

- ``StoreCallback`` (``_callback_class``): every logged step to runs.db as it happens, progress and ETA, and after
  each completed optimizer step a CPU copy of the trainable (LoRA) weights and of the optimizer, scheduler and RNG
  states; checkpoints every N steps or M minutes; stop requests at step ends.
- Checkpoints: the newest complete one in an adapter directory (``latest_checkpoint``); after a stop that cut a step
  short, the Trainer's own checkpoint of the last completed step written from those copies
  (``_checkpoint_kept_step``), so Resume continues on the curve an uninterrupted run would have drawn.
- Ending a stopped run (``_keep_last_step``): the adapter as of the last completed step, its card, and what resumes;
  from the stop watcher's thread when the main thread is stuck in one long C call (``_stop_from_watcher``).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from .card import write_model_card
from .store import Store


RESUMABLE = ("interrupted", "stopped", "failed")


def latest_checkpoint(out: str | Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint in an adapter directory, as (step, path). Complete: its
    trainer_state.json exists, which the trainer writes after the weights, optimizer and RNG state."""
    found = []
    for path in Path(out).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m and (path / "trainer_state.json").is_file():
            found.append((int(m.group(1)), path))
    return max(found) if found else None

def _drop_checkpoints(out: Path, keep: Path | None = None) -> None:
    for path in out.glob("checkpoint-*"):
        if path.is_dir() and path != keep:
            shutil.rmtree(path, ignore_errors=True)

def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _callback_class():
    from transformers import TrainerCallback

    class StoreCallback(TrainerCallback):
        """Every log to runs.db as it happens; progress/ETA each step; a CPU copy of the trainable weights
        after each completed step (what a stop keeps); checkpoints every N steps or M minutes; stop
        requests at step ends (``StopWatch`` interrupts a step in progress)."""

        def __init__(self, store: Store, run_id: int, should_stop: Callable[[], bool], settings,
                     hold: Callable, logged_until: int = 0):
            self.store, self.run_id, self.should_stop, self.hold = store, run_id, should_stop, hold
            self.every_steps, self.every_s = settings.checkpoint_steps, settings.checkpoint_minutes * 60
            self.logged_until = logged_until  # a resumed run: steps already in the store are not logged twice
            self.began = self.last_save = time.time()
            self.start_step = 0
            self.last_tokens: tuple[float, float] | None = None  # (tokens so far, when)
            self.last_loss: float | None = None
            self.snapshot: tuple[int, dict] | None = None  # (step, {parameter name: CPU copy})
            self.resumable: dict | None = None  # that step's optimizer, scheduler and RNG states (CPU copies)
            self.stopped = False
            self.final: dict = {}
            self.print_steps = False  # a line per logged step in the run's log (when no progress bar does it)

        def keep(self, state, model, optimizer=None, lr_scheduler=None) -> None:
            with self.hold():  # a half-taken copy must not become the kept one
                weights = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
                self.snapshot = (state.global_step, weights)
                if optimizer is not None and lr_scheduler is not None:  # LoRA's Adam moments: a few MB to copy
                    self.resumable = {"step": state.global_step, "optimizer": _cpu_copy(optimizer.state_dict()),
                                      "scheduler": _cpu_copy(lr_scheduler.state_dict()), "rng": _rng_states()}

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.began = self.last_save = time.time()
            self.start_step = state.global_step
            if state.global_step and model is not None:  # resumed: the checkpoint's weights are a completed step
                self.keep(state, model)
            resumed = f", resumed after step {state.global_step}" if state.global_step else ""
            self.store.update_run(self.run_id, progress=state.global_step / max(state.max_steps, 1),
                                  message=f"training: {state.max_steps} steps{resumed}")

        def on_step_end(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
            self.keep(state, model, optimizer if args.world_size == 1 else None, lr_scheduler)
            done, total = state.global_step, max(state.max_steps, 1)
            elapsed = time.time() - self.began
            self.store.update_run(self.run_id, progress=done / total,
                                  eta=elapsed / max(done - self.start_step, 1) * (total - done),
                                  message=f"step {done}/{total}")
            last = done >= state.max_steps  # the final adapter is saved then: no checkpoint needed
            due = (self.every_steps and done % self.every_steps == 0) or \
                (self.every_s and time.time() - self.last_save >= self.every_s)
            stop = self.should_stop()
            if args.world_size > 1:  # every process stops and checkpoints at the same step: the main one decides
                from accelerate.utils import broadcast_object_list
                stop, due = broadcast_object_list([(stop, due)])[0]
            if stop:
                self.stopped = control.should_training_stop = True
                due = True  # what it has can be resumed
            if due and not last:
                control.should_save = True
            return control

        def on_save(self, args, state, control, **kwargs):
            self.last_save = time.time()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the closing summary, not a step
                self.final = logs
                return
            now = time.time()
            if "num_tokens" in logs:  # counted from this process's start, resumed or not
                if self.last_tokens and now > self.last_tokens[1]:
                    logs["tokens_per_s"] = (logs["num_tokens"] - self.last_tokens[0]) / (now - self.last_tokens[1])
                elif now > self.began:
                    logs["tokens_per_s"] = logs["num_tokens"] / (now - self.began)
                self.last_tokens = (logs["num_tokens"], now)
            self.last_loss = logs.get("loss", self.last_loss)
            epoch = logs.pop("epoch", state.epoch)
            if state.global_step > self.logged_until:
                self.store.log_metrics(self.run_id, state.global_step, logs, epoch=epoch)
            if self.print_steps and state.is_world_process_zero and "loss" in logs:
                print(step_line(state.global_step, state.max_steps, logs, epoch), flush=True)

    return StoreCallback


def step_line(step: int, total: int, logs: dict, epoch: float | None = None) -> str:
    """One logged step as the run's log shows it: 'step 5/63: loss 1.722 · lr 1.14e-04 · grad norm 1.72 · ...'."""
    names = (("loss", "loss", ".4g"), ("learning_rate", "lr", ".3g"), ("grad_norm", "grad norm", ".3g"),
             ("mean_token_accuracy", "token acc", ".3f"), ("tokens_per_s", "tokens/s", ".0f"))
    parts = [f"{label} {logs[key]:{spec}}" for key, label, spec in names if isinstance(logs.get(key), (int, float))]
    if epoch is not None:
        parts.append(f"epoch {epoch:.2f}")
    return f"step {step}/{total}: " + " · ".join(parts)


def _cpu_copy(value):
    """A deep copy of a state dict with every tensor copied to the CPU (the live one keeps changing)."""
    import copy

    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return copy.deepcopy(value)


def _rng_states() -> dict:
    """The generators a training step draws from (dropout, data order), as the Trainer's checkpoints keep them."""
    import random

    import numpy as np
    import torch
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.random.get_rng_state()
    return states


def _set_rng_states(states: dict) -> None:
    import random

    import numpy as np
    import torch
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.random.set_rng_state(states["cuda"])


def _checkpoint_kept_step(live: dict, out: Path, log) -> int | None:
    """After a stop that cut a step short: write the Trainer's own checkpoint of the last completed step (adapter,
    optimizer, scheduler, RNG, trainer state) from the callback's copies, so Resume continues exactly from there.
    Its step, or None when there is nothing to write it from (no step completed; several processes, which stop at
    a step end and checkpoint there)."""
    import torch
    callback, trainer = live.get("callback"), live.get("trainer")
    kept = callback.resumable if callback else None
    if not kept or not callback.snapshot or kept["step"] != callback.snapshot[0] or trainer.args.world_size > 1:
        return None
    step = kept["step"]
    existing = latest_checkpoint(out)
    if existing and existing[0] == step:  # stopped at a step end: the trainer wrote this one already
        return step
    weights = callback.snapshot[1]
    with torch.no_grad():  # the live weights as of the step kept (a cut step never reached its optimizer step,
        for name, param in trainer.model.named_parameters():  # but the stop may fall just after it)
            if name in weights:
                param.copy_(weights[name])
    trainer.optimizer.load_state_dict(kept["optimizer"])
    trainer.lr_scheduler.load_state_dict(kept["scheduler"])
    _set_rng_states(kept["rng"])
    trainer.state.global_step = step
    trainer.state.log_history = [entry for entry in trainer.state.log_history if entry.get("step", 0) <= step]
    trainer._save_checkpoint(trainer.model, trial=None)
    _drop_checkpoints(out, keep=out / f"checkpoint-{step}")
    log(f"checkpoint of step {step} written for Resume")
    return step

def _peak_memory(device: str) -> dict:
    import torch
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak

def _train_summary(live: dict, steps: int) -> dict:
    callback, trainer = live["callback"], live["trainer"]
    seconds = time.time() - live["began"]
    tokens = callback.last_tokens[0] if callback.last_tokens else None
    return {"steps": steps, "max_steps": trainer.state.max_steps, "train_seconds": seconds, "tokens": tokens,
            "tokens_per_s": tokens / seconds if tokens and seconds else None, "final_loss": callback.last_loss,
            "device": live["device"], "dtype": str(live["dtype"]), "stopped_early": steps < trainer.state.max_steps,
            **_peak_memory(live["device"])}


def _keep_last_step(store: Store, run_id: int, settings, live: dict, reason: str) -> dict:
    """End a stopped run: save the adapter as of the last completed optimizer step (the callback's copy),
    with its tokenizer and model card, and say in the run which step was kept and what can resume."""
    summary, callback = live["summary"], live.get("callback")
    kept = callback.snapshot if callback else None
    out = live.get("out")
    if kept:
        step, weights = kept
        summary.update(_train_summary(live, step))
        if live["trainer"].is_world_process_zero():
            live["trainer"].model.save_pretrained(str(out), state_dict=weights)
            live["tokenizer"].save_pretrained(str(out))
            write_model_card(out, settings, summary, run_id)
            try:
                _checkpoint_kept_step(live, Path(out), print)
            except Exception as exc:  # the adapter is saved: a checkpoint that cannot be written costs only Resume
                print(f"no checkpoint for Resume: {type(exc).__name__}: {exc}", file=sys.stderr)
        what = f"the adapter as of step {step} (the last completed step) was saved to {out}"
    else:
        what = "no training step had completed, so there was no adapter to save"
    checkpoint = latest_checkpoint(out) if out else None
    if checkpoint:
        what += f"; Resume (`python -m algodistill train --resume {run_id}`) continues from step {checkpoint[0]}"
    store.finish_run(run_id, "stopped", summary=summary or None, error=f"stopped ({reason}); {what}",
                     message=f"stopped; {what}"[:300])
    return summary


def _stop_from_watcher(store: Store, run_id: int, settings, live: dict, reason: str, log, keep=None) -> None:
    """The main thread is stuck in one long C call: keep the last completed step from here (``keep``: the
    training's own ``_keep_last_step``, SFT's by default) and end the process."""
    try:
        (keep or _keep_last_step)(store, run_id, settings, live, reason)
        log(f"stopped: {reason}")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
