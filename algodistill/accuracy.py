"""Accuracy during training: every N optimizer steps the model as it is then answers a small fixed grid, and
the verifier judges the answers in the sandbox, so the loss curve has the accuracy beside it.

The grid is every problem type at difficulties 1 and 5 of the evaluation seed (22 problems; no training
instance is one of them), greedy, in the contract wording or the style ``accuracy_style`` names (a style the
traces hold out measures transfer), answers capped at
``accuracy_max_new_tokens``. It is measured before the first step (the starting point), every
``accuracy_every`` steps, and after the last step. Each measurement logs, at its step, ``grid_accuracy`` (the
share of problems whose answer passes every test), ``grid_test_score`` (the mean share of tests passed) and
``grid_eval_seconds`` (what the measurement cost, so the price stays visible). Off by default: on 2 CPU
cores a 0.5B model takes minutes per measurement. Where accuracy rises while the loss keeps falling, the
model is learning; where the loss falls and accuracy stalls or drops, it is memorising the traces. With
``keep_best`` the callback keeps a CPU copy of the LoRA weights at the best measurement (ties: the later
step), and the training saves those (``train_options.restore_best``), saying which step it kept.

Only the main process of a launch measures; generation uses the training model itself (eval mode, the
adapter as trained so far), with the evaluation's own batching (``generation.Generator.wrap``).
"""

from __future__ import annotations

import time
from typing import Callable

from .problems import EVAL_SEED, PROBLEM_TYPES, Instance, grid

DIFFICULTIES = (1, 5)
METRICS = ("grid_accuracy", "grid_test_score", "grid_eval_seconds")


def instances(problems=PROBLEM_TYPES, style: str = "contract") -> list[Instance]:
    """The fixed grid measured during training, asked in ``style``."""
    from .problems.styles import styled
    return [styled(i, style) for i in grid(problems, DIFFICULTIES, seed=EVAL_SEED)]


def measure(model, tokenizer, items: list[Instance], max_new_tokens: int,
            should_stop: Callable[[], bool] = lambda: False) -> dict[str, float] | None:
    """Greedy answers of ``model`` to ``items``, judged: the metrics above, or None when ``should_stop``
    said so between answers (a stop must not wait for a whole grid)."""
    from .generation import Generator
    from .verify import verify_many
    began = time.perf_counter()
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    try:
        generator = Generator.wrap(model, tokenizer)
        answers: list[str | None] = [None] * len(items)
        for batch in generator.generate([i.prompt for i in items], max_new_tokens=max_new_tokens):
            for g in batch:
                answers[g.index] = g.text
            if should_stop():
                return None
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side  # generation pads on the left; the training's collator keeps its own
    verdicts = verify_many(list(zip(items, answers)))
    return {"grid_accuracy": sum(v.solved for v in verdicts) / len(verdicts),
            "grid_test_score": sum(v.score for v in verdicts) / len(verdicts),
            "grid_eval_seconds": time.perf_counter() - began}


def callback_class():
    from transformers import TrainerCallback

    class AccuracyCallback(TrainerCallback):
        """Measures the grid before the first step, every ``every`` steps and after the last, into the store."""

        def __init__(self, store, run_id: int, every: int, max_new_tokens: int, tokenizer,
                     should_stop: Callable[[], bool], log=print, style: str = "contract", keep_best: bool = False):
            self.store, self.run_id, self.every, self.max_new_tokens = store, run_id, every, max_new_tokens
            self.tokenizer, self.should_stop, self.log = tokenizer, should_stop, log
            self.style, self.keep_best = style, keep_best
            self.items = instances(style=style)
            self.measured: set[int] = set(int(m["step"]) for m in store.metrics(run_id, ["grid_accuracy"]))
            self.best: dict | None = None  # keep_best: step, accuracy, style and a CPU copy of the LoRA weights

        def _measure(self, step: int, model) -> None:
            from .distributed import is_main_process
            if step in self.measured or model is None or not is_main_process():
                return
            self.store.update_run(self.run_id, message=f"measuring grid accuracy at step {step}")
            values = measure(model, self.tokenizer, self.items, self.max_new_tokens, self.should_stop)
            if values is None:
                return
            self.measured.add(step)
            self.store.log_metrics(self.run_id, step, values)
            self.log(f"step {step}: grid accuracy {values['grid_accuracy']:.0%} "
                     f"({round(values['grid_accuracy'] * len(self.items))}/{len(self.items)}) in {self.style} "
                     f"wording, {values['grid_eval_seconds']:.0f} s")
            if self.keep_best and (self.best is None or values["grid_accuracy"] >= self.best["accuracy"]):
                from peft import get_peft_model_state_dict
                state = {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(model).items()}
                self.best = {"step": step, "accuracy": values["grid_accuracy"], "style": self.style, "state": state}

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self._measure(state.global_step, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % self.every == 0:
                self._measure(state.global_step, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if not self.should_stop():
                self._measure(state.global_step, model)

    return AccuracyCallback
