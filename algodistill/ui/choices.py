"""What the Train and Eval forms offer and accept: the models (``model_choices``), the adapters of finished
training runs (``adapter_choices``, ``adapter_dir``) and the training run that can be evaluated
(``evaluable``). Below both tabs, so that neither imports the other."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..models import DEFAULT_MODEL, offline_models, usable_default
from . import access
from .common import parse_run, store


def model_choices() -> list[str]:
    """The usable default first (the hub model, or an offline one when the Hub is out of reach), then the
    rest of the hub default and the offline models present; hosted, only what the allow list has."""
    choices = list(dict.fromkeys([starting_model()[0], DEFAULT_MODEL, *offline_models()]))
    if access.hosted():
        allowed = access.allowed_models()
        choices = [m for m in choices if m in allowed] + [m for m in allowed if m not in choices]
    return choices



@lru_cache(maxsize=1)
def starting_model() -> tuple[str, str | None]:
    return usable_default()  # checks the Hub once per app process (2 s at most when it is out of reach)



def adapter_choices() -> list[tuple[str, str]]:
    """Adapters of finished training runs (completed or stopped with a saved adapter). Locally the value is
    the directory (other directories may be typed); hosted it is the run ('#7'), so the page names no
    server path."""
    out = [("(none: the base model)", "")]
    for run in store().runs(kind="train"):
        if run["status"] in ("completed", "stopped") and run.get("adapter"):
            value = f"#{run['id']}" if access.hosted() else run["adapter"]
            out.append((f"#{run['id']} {run.get('name') or ''} ({run['model']})", value))
    return out



def adapter_dir(value: str | None) -> str | None:
    """The adapter directory a form value names: a finished training run's ('#7', the hosted form) or, used
    locally, a directory as typed. Hosted, nothing but this store's adapters is accepted."""
    value = (value or "").strip()
    access.check_adapter(value, [v for _, v in adapter_choices() if v])
    run = parse_run(value) if value.startswith("#") else None
    if run is not None:
        found = store().get_run(run) if run in [r["id"] for r in store().runs(kind="train")] else None
        if not found or not found.get("adapter"):
            raise ValueError(f"training run {value} has no adapter")
        return found["adapter"]
    return value or None



def evaluable(run_id) -> dict | None:
    """The followed training run (or the newest, as the status shows) when it left an adapter to evaluate:
    completed, or stopped after a step (its adapter directory has the adapter's config); else None."""
    run_id = parse_run(run_id)
    if run_id is None:
        newest = store().runs(kind="train", limit=1)
        run_id = newest[0]["id"] if newest else None
    try:
        run = store().get_run(run_id) if run_id is not None else None
    except KeyError:
        return None
    if not run or run["kind"] != "train" or run["status"] not in ("completed", "stopped") or not run.get("adapter"):
        return None
    return run if (Path(run["adapter"]) / "adapter_config.json").is_file() else None
