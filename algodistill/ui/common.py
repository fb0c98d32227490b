"""What the tabs share: the store, run choices, status lines, the GPU line. Plain functions, no torch."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from functools import lru_cache
from pathlib import Path

from .. import jobs
from ..store import ACTIVE, Store, default_path
from ..traces import BUNDLED, BUNDLED_SETS

_stores: dict[str, Store] = {}
_verified: dict[str, list] = {}  # content digest -> checks: a trace set is verified once per content
_verifying = threading.Lock()


def store() -> Store:
    """One connection per database path for the app process (the store is safe across threads)."""
    path = default_path()
    if path not in _stores:
        _stores[path] = Store(path)
    return _stores[path]


def uploads_dir() -> Path:
    return Path(store().path).resolve().parent / "uploads"


def verified(path: str | Path) -> list:
    """The TraceChecks of a trace file (every line: kept, rejected or malformed), cached by content, so an
    upload verified before it was kept is not verified again when Data shows it. One verification at a time:
    visitors opening Data together wait for the first one and share its result instead of each running the
    sandbox over the same set."""
    from ..traces import verify_file
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest not in _verified:
        with _verifying:
            if digest not in _verified:
                _verified[digest] = verify_file(path)
    return _verified[digest]


# Reads that make the server work (verifying a trace set in the sandbox, building a zip) are open to every
# visitor; they share one queue slot, so however many visitors ask at once, one such job runs at a time next to
# the owner's (and each result that can be is cached: ``verified``).
HEAVY = {"concurrency_limit": 1, "concurrency_id": "heavy"}


# ---------------------------------------------------------------------------------------------- polling

FAST_POLL_S = 2.0  # a tab's refresh while a job runs or its view just changed
WATCH_S = 15.0  # an idle page's one cheap question: did anything change?


def activity() -> tuple[bool, str]:
    """(whether a run is queued or running, a token that changes whenever anything writes the store). Cheap: a
    query on the runs' status and two ``stat`` calls, so an idle page can ask it every ``WATCH_S`` seconds."""
    s = store()
    busy = any(r["status"] in ACTIVE for status in ACTIVE for r in s.runs(status=status, limit=50))
    parts = []
    for suffix in ("", "-wal"):
        try:
            st = Path(s.path + suffix).stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return busy, "/".join(parts)


VISITOR_POLL_S = 5.0  # a hosted visitor's refresh while a job runs: the owner's job comes first


def fast_timer(gr, seconds: float = FAST_POLL_S):
    """A tab's refresh timer. It starts off; the app's watcher (``ui.build_app``) turns on the shown tab's when a
    run is queued or running or the store changed, and each tick turns it off again once nothing is queued or
    running, so an idle page makes no request but the watcher's."""
    timer = gr.Timer(seconds, active=False)
    timer.tick(settle, None, [timer], show_progress="hidden", api_visibility="private")
    return timer


def settle():
    """A refresh timer's own tick: off once no run is queued or running (this tick's refresh was the last)."""
    import gradio as gr
    return gr.skip() if activity()[0] else gr.Timer(active=False)


def keep_upload(path: str) -> str:
    """Copy an uploaded trace file next to runs.db (Gradio's temp copy may vanish; runs must stay
    reproducible), named by content so the same upload is kept once. A file in which no trace passes
    verification (empty, binary, all wrong) is refused with ValueError and nothing is kept: as a trace
    set it could only fail a training run."""
    source = Path(path)
    if _bundled(source) or not source.is_file() or source.parent == uploads_dir():
        return path
    from .access import upload_limits
    largest, quota = upload_limits()
    size = source.stat().st_size
    if size > largest:
        raise ValueError(f"{source.name} is {size / 2**20:.1f} MB; uploads are capped at {largest / 2**20:.0f} MB")
    kept_bytes = sum(p.stat().st_size for p in uploads_dir().glob("*.jsonl")) if uploads_dir().is_dir() else 0
    if kept_bytes + size > quota:
        raise ValueError(f"the kept uploads would exceed their {quota / 2**20:.0f} MB quota "
                         f"({kept_bytes / 2**20:.1f} MB kept); delete some in the Data tab first")
    checks = verified(source)
    if not any(c.kept for c in checks):
        if not checks:
            raise ValueError(f"{source.name} has no traces (it is empty or blank); nothing was kept")
        first = next(c.reason for c in checks)
        raise ValueError(f"no trace in {source.name} passed verification (0 kept of {len(checks)} lines; the "
                         f"first: {first[:200]}); nothing was kept. Fix the file and upload it again")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    target = uploads_dir() / f"{source.stem[:40]}-{digest}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(".part")
        shutil.copyfile(source, tmp)
        tmp.replace(target)  # a half-copied file never shows up as a trace set
    return str(target)


def accept_upload(path: str) -> tuple[str | None, str]:
    """An upload from a form: (kept path, message), or (None, why it was refused). Only the owner uploads:
    a visitor's file is deleted from Gradio's temporary copy and the call refused."""
    from . import access
    if not access.is_owner():
        with contextlib.suppress(OSError, TypeError):
            Path(path).unlink()
        access.require_owner("upload files")
    try:
        kept = keep_upload(path)
    except (ValueError, OSError) as exc:
        return None, f"⚠️ Upload not kept: {exc}"
    checks = verified(kept)
    return kept, (f"Kept {Path(kept).name}: {sum(c.kept for c in checks)} of {len(checks)} traces passed "
                  "verification.")


def delete_upload(path: str | None) -> str:
    """Delete a kept upload (never the bundled set). Runs that trained on it keep their stored settings and
    adapters (the settings still name the file); a run queued or running on it must end first."""
    from . import access
    access.require_owner("delete files")
    if not path:
        raise ValueError("choose a trace set to delete")
    target = Path(trace_set(path))
    if _bundled(target):
        raise ValueError(f"the {BUNDLED_SETS[target.name][1]} is part of the app and cannot be deleted")
    users = [r for r in store().runs(kind="train") if r["settings"].get("traces") == str(target)]
    busy = [r for r in users if r["status"] in ACTIVE]
    if busy:
        raise ValueError(f"training run #{busy[0]['id']} is {busy[0]['status']} on it: wait for it or stop it first")
    target.unlink()
    names = ", ".join(f"#{r['id']}" for r in users)
    used = f" Training run(s) {names} used it; they keep their settings and adapters." if users else ""
    return f"Deleted {target.name}.{used}"


def _bundled(path: str | Path) -> bool:
    """Whether ``path`` is one of the trace sets that ship with the app (``traces.BUNDLED_SETS``)."""
    path = Path(path).resolve()
    return any(path == known.resolve() for known, _ in BUNDLED_SETS.values())


def trace_set(path: str | None) -> str:
    """The trace file a form names: empty means the bundled reference set; otherwise it must be a bundled set
    or a kept upload, by path or by file name (the hosted form's values). The app may be hosted, so it never
    opens other paths on the server (the CLI does)."""
    if not path:
        return str(BUNDLED)
    from ..traces import is_hub_id
    path = str(path).strip()
    if is_hub_id(path):
        return path  # a Hub dataset id: loaded with datasets.load_dataset, checked like a file
    if Path(path).name == path:  # a bare name: a bundled set's or a kept upload's
        target = BUNDLED_SETS[path][0].resolve() if path in BUNDLED_SETS else (uploads_dir() / path).resolve()
    else:
        target = Path(path).resolve()
    if _bundled(target) or (target.parent == uploads_dir().resolve() and target.suffix == ".jsonl"):
        if not target.is_file():
            raise ValueError(f"the trace set {target.name} is gone; upload it again")
        return str(target)
    raise ValueError("choose the bundled trace set or upload a JSONL file (the app opens no other paths; "
                     "the command line takes any file)")


def trace_value(path: str | Path) -> str:
    """A trace set's value in the forms' lists (see ``trace_sets``)."""
    from .access import hosted
    return Path(path).name if hosted() else str(path)


def trace_sets() -> list[tuple[str, str]]:
    """(label, value) of the bundled trace set, then every kept upload, newest first. The value is the path,
    or hosted the file name only, so the page names no server path."""
    kept = sorted(uploads_dir().glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if uploads_dir().is_dir() else []
    return [(f"{label} ({path.name})", trace_value(path)) for path, label in BUNDLED_SETS.values()
            if path.is_file()] + [
        (f"uploaded: {p.name} ({time.strftime('%Y-%m-%d %H:%M', time.localtime(p.stat().st_mtime))})", trace_value(p))
        for p in kept]


DOWNLOADS_KEPT_S = 3600


def download_folder(prefix: str) -> Path:
    """A fresh folder for one download (an adapter zip, samples, a bundle, a log), under one temporary
    directory whose downloads older than an hour are removed first: Gradio serves its own copy, and
    repeated downloads (a visitor's too) must not fill the disk."""
    import tempfile
    root = Path(tempfile.gettempdir()) / "algodistill-downloads"
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > DOWNLOADS_KEPT_S:
                shutil.rmtree(old)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def run_label(run: dict) -> str:
    name = run.get("name") or run.get("model") or ""
    return f"#{run['id']} {name} [{run['status']}]"


def run_choices(kind: str, status: str | None = None) -> list[tuple[str, int]]:
    return [(run_label(r), r["id"]) for r in store().runs(kind=kind, status=status)]


def waiting_note(*run_ids: int) -> str | None:
    """For a launch that waits for the machine, "queued at position N: ..." (the place of the first of its
    runs that waits, ``jobs.queue_position``); None for one that started."""
    position = next(filter(None, (jobs.queue_position(store(), run_id) for run_id in run_ids)), None)
    return f"queued at position {position}: it starts by itself when the jobs ahead of it end" if position else None


def dispatch_jobs() -> None:
    """Start the oldest waiting launch if no job holds the machine (``jobs.dispatch``). The app calls it as it
    starts and on the Train tab's status tick, so the queue moves on even after a job process was killed too
    hard to start the next one itself."""
    try:
        jobs.dispatch(store())
    except jobs.JobRefused:
        pass  # its runs are failed with the reason, which their status shows


def form_number(label: str, value, default) -> float:
    """A number field as typed. Empty is refused in words, not replaced by the default: the browser empties a
    field it cannot hold (1e999), and a silent default would run with a value the user never chose. The
    settings' ranges then judge the number itself."""
    if value is None or value == "":
        raise ValueError(f"{label} is empty or not a number (the default is {default:g})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {value!r}") from None


def form_values(cls, form: dict) -> dict:
    """A form's values (field name -> value) made ready for the settings class ``cls``: numbers as typed
    (``form_number``: an empty one is refused), text stripped, empty text left out (the field's default).
    Fields the caller turns into settings itself (lists, files, runs) are left out of ``form``."""
    from dataclasses import fields
    from ..settings import label
    defaults = cls()
    known = {f.name: f for f in fields(cls)}
    clean = {}
    for key, value in form.items():
        default = getattr(defaults, key)
        choices = known[key].metadata.get("choices")
        if isinstance(default, bool):  # a checkbox: True or False, nothing else
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{label(known[key])} must be true or false, got {value!r}")
            clean[key] = default if value is None else value
        elif is_number(default):
            clean[key] = form_number(label(known[key]), value, default)
        elif choices and value not in (None, "") and str(value).strip() not in choices:
            raise ValueError(f"{label(known[key])} must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
        elif value is not None and value != "":
            clean[key] = str(value).strip()
    return clean


def checked(settings):
    """``settings`` with whole numbers made ints (a form sends 16.0), refused in one message when a number is
    out of its range; the class's ``check`` judges the rest when the run starts."""
    from ..settings import number_problems, whole_numbers
    whole_numbers(settings)
    problems = number_problems(settings)
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def remembered(gr, form: str):
    """Where ``form`` keeps its last used values in this browser: a ``gr.BrowserState`` (field -> value, None
    until a run is started from it) under a fixed key, so a reload or a restarted app finds them. The secret
    only scrambles what localStorage holds (the page carries it anyway)."""
    key = f"algodistill-{form}-form"
    return gr.BrowserState(None, storage_key=key, secret=key)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def restorable(saved, fits: dict) -> dict:
    """The values of a form saved in a browser (``saved``: field -> value; anything else, from an older app or
    edited by hand, gives nothing) that the form may show now: those its ``fits[field]`` accepts. They come from
    the browser, so the form's own checks judge them again when it is submitted."""
    if not isinstance(saved, dict):
        return {}
    return {field: saved[field] for field, fit in fits.items() if field in saved and fit(saved[field])}


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


def time_left(run: dict) -> float | None:
    """A run's estimate of the time left, counted down since the run wrote it (a training writes it once a step,
    minutes apart on a CPU); never below a second while the run is not done."""
    eta = run.get("eta")
    if eta is None:
        return None
    since = int(time.time() - run["eta_at"]) if run.get("eta_at") and run["status"] == "running" else 0  # whole s
    return max(1.0, eta - max(0, since))


_CLI_RESUME = re.compile(r"; Resume \(`python -m algodistill [^`]*`\) continues from step \d+")


def status_markdown(run: dict | None) -> str:
    """A run's state in plain words: status, progress with ETA, what it is doing, its error."""
    if not run:
        return "No run yet."
    parts = [f"**Run #{run['id']}** ({run['kind']}, {run.get('name') or run.get('model')}): **{run['status']}**"]
    if run["status"] in ("queued", "running"):
        progress = run.get("progress") or 0.0
        bar = "█" * int(progress * 20) + "░" * (20 - int(progress * 20))
        eta = f", about {duration(time_left(run))} left" if run.get("eta") else ""
        parts.append(f"`{bar}` {progress:.0%}{eta}")
        if run["status"] == "running" and run.get("started"):  # a queued run's start time is an older attempt's
            parts.append(f"running for {duration(time.time() - run['started'])}")
    message = run.get("message") or ""
    prefixed = message.startswith(f"{run['status']}; ")  # "stopped; the adapter ...": the status is said above
    if prefixed:
        message = message[len(run["status"]) + 2:]
    # the command-line way to resume, for the CLI's log; the page has its Resume button (and says so)
    message = _CLI_RESUME.sub("", message)
    if message:
        parts.append(message[:1].upper() + message[1:] if prefixed else message)
    error = _CLI_RESUME.sub("", run.get("error") or "") or None
    said = message.split("; ", 1)[-1] if not prefixed else message
    if error and said and said in error:  # its error repeats that: keep only why it stopped, and say it once
        error = error.replace(said, "").strip(" ;")
        if run["status"] == "stopped" and error in ("", "stopped (stop requested)"):
            error = None  # the stop that was asked for is no warning
    if error and run["status"] != "completed":
        parts.append(f"⚠️ {error}")
    from .access import public
    return public("  \n".join(parts))


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
            "and short runs; Qwen2.5-Coder-0.5B trains the 84 varied traces in about 30 minutes on 2 cores (bf16).")


def warm_later(delay_s: float = 45.0) -> threading.Thread:
    """Verify every trace set Data lists in a background thread, ``delay_s`` after the app starts (after the
    first visitors' pages have loaded, on a small machine), so that a later first visit to Data reads the cached
    verdicts instead of waiting seconds for the sandbox to run every bundled trace. The thread (and the sandbox
    processes it starts) runs at a lower CPU priority than the requests it must not slow."""
    def warm():
        time.sleep(delay_s)
        with contextlib.suppress(OSError, AttributeError):
            os.nice(10)  # Linux: this thread only, and what it starts
        try:
            trace_set_rows()
        except Exception:  # noqa: BLE001 - a warm-up is an optimisation: Data verifies on its own if it failed
            pass
    thread = threading.Thread(target=warm, name="algodistill-warm", daemon=True)
    thread.start()
    return thread


def trace_set_rows() -> list[list]:
    """One row per trace set (bundled and kept uploads): how many lines were kept and rejected."""
    from ..traces import summary
    from . import access
    rows = []
    for label, path in trace_sets():
        try:
            result = summary(verified(path))
            rows.append([label, result["total"], result["kept"], result["rejected"], access.public(path)])
        except (OSError, ValueError) as exc:
            rows.append([label, "", "", access.public(f"unreadable: {exc}"), access.public(path)])
    return rows
