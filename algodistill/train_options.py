"""What every training has, SFT and GRPO alike: the settings fields they share (grid accuracy during training, its
style and the best-step option, the tracker to also report to, the output directory), gradient checkpointing's
"auto", and the pieces that act on those fields during a run (the accuracy callback, putting the best measured
step's weights back, the tracker's Trainer arguments)."""

from __future__ import annotations

from .models import available_memory_gb
from .problems.styles import STYLES
from .settings import bounded, option
from .store import Store


# fields every training's settings have (SFT and GRPO): each call makes a field for one dataclass

def accuracy_every_field():
    return bounded(0, 0, 10**7, label="grid accuracy every N steps (0: off)", metavar="N", form="watch",
                   help="every N optimizer steps, and before the first and after the last, the model answers a fixed "
                   "grid of 22 evaluation problems (every type at difficulties 1 and 5, greedy) and its accuracy is "
                   "plotted with the loss; each measurement is a small evaluation, minutes on a CPU (default 0: off)")


def accuracy_tokens_field():
    return bounded(512, 16, 1 << 16, label="grid accuracy: max new tokens", metavar="M", form="watch",
                   help="answer cap of those measurements (default %(default)s)")


# the 3-epoch reference run of Qwen2.5-Coder-0.5B on the 84 varied traces peaked at 8.7 GB RSS on a CPU without
# gradient checkpointing (bf16, per-device batch 1); with less free memory than this it stays on
CPU_MEMORY_FOR_NO_CHECKPOINTING_GB = 12.0


def checkpointing(device: str) -> bool:
    """Gradient checkpointing's "auto": on a GPU on (memory is what it buys), on a CPU off when memory is plentiful
    (the recompute is ~25% more work for nothing), on when less than CPU_MEMORY_FOR_NO_CHECKPOINTING_GB is free."""
    if not device.startswith("cpu"):
        return True
    free = available_memory_gb()
    return free is not None and free < CPU_MEMORY_FOR_NO_CHECKPOINTING_GB


def accuracy_style_field():
    return option("contract", choices=STYLES, metavar="STYLE", form="watch", label="grid accuracy: prompt style",
                  help="the prompt style those measurements ask in (contract, terse, stub, stdio): a style the traces "
                  "hold out measures transfer, not the template (default %(default)s)")


def keep_best_field():
    return option(False, form="watch", label="keep the best measured step's adapter",
                  help="keep the adapter of the step with the best grid accuracy measured (ties: "
                  "the later step) instead of the last step's; needs --accuracy-every (default off)")


# trackers TRL reports to through ``report_to``, besides runs.db (which always gets every metric); each needs its
# package: trackio with requirements-trackio.txt, the others installed by the user
TRACKERS = ("none", "trackio", "wandb", "tensorboard")


def report_to_field():
    return option("none", choices=TRACKERS, metavar="TRACKER", form="watch", label="also report to",
                  help="also send the metrics to this tracker through TRL's report_to (trackio: local SQLite, "
                  "`trackio show` to look; needs pip install -r requirements-trackio.txt); runs.db gets them "
                  "either way (default %(default)s)")


def tracker_problems(settings) -> list[str]:
    """Why the chosen tracker cannot report here (its package missing), in words; [] when it can."""
    import importlib.util
    tracker = settings.report_to
    if tracker not in TRACKERS:
        return [f"report to must be one of {', '.join(TRACKERS)}, got {tracker!r}"]
    module = {"tensorboard": "tensorboard"}.get(tracker, tracker)
    if tracker != "none" and importlib.util.find_spec(module) is None:
        extra = " -r requirements-trackio.txt" if tracker == "trackio" else f" {tracker}"
        return [f"report to {tracker}: the {tracker} package is not installed (pip install{extra})"]
    return []


def tracking(settings, run_id: int) -> dict:
    """The Trainer arguments that report to the chosen tracker: the project is "algodistill", the run named
    <run id>-<experiment>, as its adapter folder is."""
    if settings.report_to == "none":
        return {"report_to": "none"}
    return {"report_to": [settings.report_to], "project": "algodistill", "run_name": f"{run_id}-{settings.experiment}"}


def output_dir_field():
    return option("", cli_default=None,
                  help="adapter directory (default outputs/<run>-<experiment> next to the run store)")


def watch_problems(settings) -> list[str]:
    """What is wrong with a training's accuracy-measurement settings (every training's: SFT and GRPO)."""
    problems = []
    if settings.accuracy_style not in STYLES:
        problems.append(f"accuracy style must be one of {', '.join(STYLES)}, got {settings.accuracy_style!r}")
    if settings.keep_best and not settings.accuracy_every:
        problems.append("keeping the best step needs grid accuracy measured during training (--accuracy-every N)")
    return problems


def accuracy_callbacks(store: Store, run_id: int, settings, tokenizer, should_stop, log) -> list:
    """The grid-accuracy callback when the settings ask for it (``accuracy_every`` > 0), else none."""
    from .distributed import is_main_process
    if not settings.accuracy_every or not is_main_process():  # the other processes of a launch wait at the next step
        return []
    from .accuracy import callback_class
    return [callback_class()(store, run_id, settings.accuracy_every, settings.accuracy_max_new_tokens, tokenizer,
                             should_stop, log, style=settings.accuracy_style, keep_best=settings.keep_best)]


def restore_best(trainer, callbacks: list, summary: dict, log) -> None:
    """With ``keep_best``: put the LoRA weights of the best measured step back before the adapter is saved, and
    say in the summary which step that was and why."""
    best = next((c.best for c in callbacks if getattr(c, "best", None)), None)
    if best is None:
        return
    step, accuracy, state = best["step"], best["accuracy"], best["state"]
    summary["kept_step"] = {"step": step, "grid_accuracy": accuracy, "style": best["style"],
                            "last_step": trainer.state.global_step}
    if step != trainer.state.global_step:
        from peft import set_peft_model_state_dict
        set_peft_model_state_dict(trainer.model, state)
        log(f"keeping the adapter of step {step} (grid accuracy {accuracy:.0%} in {best['style']} wording), not the "
            f"last step's ({trainer.state.global_step})")
