"""What the tabs share: the store, run choices, status lines, the GPU line. Plain functions, no torch."""

from __future__ import annotations

import shutil
import subprocess
import time
from functools import lru_cache

from ..store import Store, default_path

_stores: dict[str, Store] = {}


def store() -> Store:
    """One connection per database path for the app process (the store is safe across threads)."""
    path = default_path()
    if path not in _stores:
        _stores[path] = Store(path)
    return _stores[path]


def run_label(run: dict) -> str:
    name = run.get("name") or run.get("model") or ""
    return f"#{run['id']} {name} [{run['status']}]"


def run_choices(kind: str, status: str | None = None) -> list[tuple[str, int]]:
    return [(run_label(r), r["id"]) for r in store().runs(kind=kind, status=status)]


def parse_run(value) -> int | None:
    """A run id from a dropdown value (an int, or a '#12 ...' label typed or kept from an old list)."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().lstrip("#").split()[0] if str(value).strip() else ""
    return int(text) if text.isdigit() else None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def status_markdown(run: dict | None) -> str:
    """A run's state in plain words: status, progress with ETA, what it is doing, its error."""
    if not run:
        return "No run yet."
    parts = [f"**Run #{run['id']}** ({run['kind']}, {run.get('name') or run.get('model')}): **{run['status']}**"]
    if run["status"] in ("queued", "running"):
        progress = run.get("progress") or 0.0
        bar = "█" * int(progress * 20) + "░" * (20 - int(progress * 20))
        eta = f", about {duration(run.get('eta'))} left" if run.get("eta") else ""
        parts.append(f"`{bar}` {progress:.0%}{eta}")
        if run.get("started"):
            parts.append(f"running for {duration(time.time() - run['started'])}")
    if run.get("message"):
        parts.append(f"{run['message']}")
    if run.get("error") and run["status"] != "completed":
        parts.append(f"⚠️ {run['error']}")
    return "  \n".join(parts)


@lru_cache(maxsize=1)
def gpu_line() -> str:
    """Which accelerator jobs will use, found without importing torch in the app process."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                return f"GPU: {out.splitlines()[0]}. Jobs train and evaluate on it, one at a time."
        except (OSError, subprocess.SubprocessError):
            pass
    return ("No GPU found: jobs run on the CPU. That works for small models (e.g. the offline smollm2-135m) "
            "and short runs; a 0.5B model takes about an hour for the full reference training on 2 cores.")
