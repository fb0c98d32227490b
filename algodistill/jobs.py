"""Background runs: start, stop and follow training and evaluation jobs. The only Popen of runs.

Both ends of a job live here: the app's side (``start_*``, ``resume_*``, ``stop``, ``dispatch``) and the job
process's (``training_run`` / ``grpo_run``: which run a ``train``/``grpo`` command trains, queued by the app,
resumed from its checkpoint or new; ``stop_check``: the stop request or SIGTERM it obeys); the CLI parses
flags into settings and prints.

A job is ``python -m algodistill train|grpo|eval --run ID`` in its own process (and session): the UI stays
responsive, a crash cannot take the app down, and GPU memory is freed when the process ends. The run row
is created first (``queued``, settings as JSON); the child rebuilds its settings from that row, marks it
running and writes its progress, metrics and samples to the store, which the UI polls. Output goes to
``logs/run-ID.log`` next to runs.db.

One job at a time per machine: two trainings on one GPU would fight for memory, and on a CPU they would each
run at half speed. A launch therefore goes to the store's job queue with its run rows (``queued``, no
process, "waiting: position N in the queue"), and ``dispatch`` starts the oldest launch when no job holds
the machine: at once when it is free, else when the running job's process ends (it dispatches as it exits),
and on the app's start and status ticks (for a job killed too hard to dispatch). Taking a launch off the
queue and the check that the machine is free are one transaction (``Store.claim_next``), so two launches
or dispatchers at the same instant start one job, and the other waits its turn. Stopping a waiting run
takes its launch off the queue; the ones behind it move up.
Stopping writes a stop request to the run; a training job interrupts its step in progress within seconds
and saves the adapter as of its last completed step (``stopping``), an evaluation abandons the batch it
is generating, equally fast, and keeps every sample judged so far. If
the process is still there after a grace period: SIGTERM (the same stop), and much later SIGKILL, after
which the run says it was killed and what was kept (the last checkpoint, or nothing). ``resume_train``
continues a training from its last checkpoint on the same run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .evaluate import create_eval_runs
from .grpo import create_grpo_run
from .store import ACTIVE, Store, process_start
from .teacher import create_run as create_traces_run
from .train_sft import create_train_run, latest_checkpoint, resume_point, run_dir

ROOT = Path(__file__).resolve().parent.parent


class JobRefused(Exception):
    """A job's process could not be started; the message says why (its runs are marked failed)."""


# ------------------------------------------------------------------------------------------ the job's end

def stop_check(store: Store, run_id: int):
    """A job's stop check: a stop request in the store (the app's Stop button) or SIGTERM (``kill``, the
    escalation of ``stop``)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return lambda: stop.is_set() or store.stop_requested(run_id)


def training_run(store: Store, *, queued: int | None = None, resume: int | None = None, settings=None, log=print):
    """The run an SFT job trains and its settings: one the app queued (``queued``: its stored settings), one to
    resume from its newest checkpoint (same run, same settings, the stop that ended it cleared), or a new one
    from ``settings``, checked before its row exists."""
    from .train_sft import SFTSettings
    if queued:
        return queued, SFTSettings.from_dict(store.get_run(queued)["settings"])
    if resume:
        settings, (step, _) = resume_point(store.get_run(resume))
        store.update_run(resume, stop_requested=None)  # the stop that ended it must not end the resumed run
        log(f"run {resume}: resuming from the checkpoint at step {step}")
        return resume, settings
    settings.check()  # NaN, inf, ranges, the model spec and the trace file: before a run row exists
    return create_train_run(store, settings), settings


def grpo_run(store: Store, *, queued: int | None = None, settings=None):
    """The run a GRPO job trains and its settings: one the app queued, or a new one from ``settings``, checked
    before its row exists (GRPO runs do not resume)."""
    from .grpo import GRPOSettings
    if queued:
        return queued, GRPOSettings.from_dict(store.get_run(queued)["settings"])
    settings.check()  # numbers, the batch split, the model spec and the adapter: before a run row exists
    return create_grpo_run(store, settings), settings


# ------------------------------------------------------------------------------------------ the app's end

def log_path(store: Store, run_id: int) -> Path:
    base = Path(store.path).resolve().parent if store.path != ":memory:" else Path.cwd()
    return base / "logs" / f"run-{run_id}.log"


def active(store: Store) -> list[dict]:
    """Runs that are queued or running with a live process (dead ones become interrupted on read)."""
    kinds = ("train", "eval", "traces")
    return [r for kind in kinds for status in ACTIVE for r in store.runs(kind=kind, status=status)]


def queue_position(store: Store, run_id: int) -> int | None:
    """Where a waiting run stands: 1 starts next, and the job holding the machine comes first, so a launch
    behind a running job is at 2. None when the run is not waiting (its job has started, or it ended)."""
    place = store.queue_positions().get(run_id)
    return place[0] if place else None


def dispatch(store: Store) -> list[int]:
    """Start the oldest waiting launch if no job holds the machine. Returns its run ids, [] when nothing
    started; JobRefused when its process cannot be started (its runs are then failed). Any process may call
    it at any time: the check and the claim are one transaction."""
    if not store.job_queue():  # the usual case, read without taking the write lock
        return []
    entry = store.claim_next()
    if entry is None:
        return []
    _launch(store, entry["runs"], entry["argv"])
    return entry["runs"]


JOB_NICE = 10  # default niceness of a job's process (ALGODISTILL_JOB_NICE; 0 leaves it as the app's)


def lower_priority(pid: int) -> int | None:
    """Give a job's process a lower CPU priority than the app's (``ALGODISTILL_JOB_NICE``, default 10), so that on
    a machine whose every core a training holds, the app serving the page comes first; alone, the job still has
    every core (on the 2-core bench machine no change in click latency was measurable: docs/processes.md). Set before the child starts its compute threads, which inherit it. Returns the niceness set,
    None where it cannot be (not POSIX, or a bad value)."""
    try:
        nice = int(os.environ.get("ALGODISTILL_JOB_NICE", JOB_NICE))
        if nice <= 0:
            return None
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
        return os.getpriority(os.PRIO_PROCESS, pid)
    except (AttributeError, OSError, ValueError):
        return None


def _spawn(store: Store, run_id: int, argv: list[str]) -> subprocess.Popen:
    log = log_path(store, run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ALGODISTILL_DB=str(Path(store.path).resolve()), PYTHONUNBUFFERED="1")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "algodistill", *argv, "--run", str(run_id)],
                                cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    lower_priority(proc.pid)
    # the row knows its process from the start, so a child that dies before it reports is seen as dead
    store.update_run(run_id, pid=proc.pid, pid_start=process_start(proc.pid), message="starting")
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it: a zombie would look alive
    return proc


def start_train(store: Store, settings) -> int:
    """Queue a LoRA SFT run (``settings``: a checked ``SFTSettings``) and start it if the machine is free.
    Returns the run id (``queue_position`` says whether it waits)."""
    settings.check()  # numbers, paths and the model spec, before any run row
    with store.transaction():
        run_id = create_train_run(store, settings)
        store.enqueue([run_id], ["train"])
    dispatch(store)
    return run_id


def start_grpo(store: Store, settings) -> int:
    """Queue a GRPO run (``settings``: ``grpo.GRPOSettings``) in the same queue as training and start it if the
    machine is free. Returns the run id (``queue_position`` says whether it waits)."""
    settings.check()  # numbers, the batch split, the model spec and the adapter, before any run row
    with store.transaction():
        run_id = create_grpo_run(store, settings)
        store.enqueue([run_id], ["grpo"])
    dispatch(store)
    return run_id


def start_eval(store: Store, settings, *, compare_base: bool = False, name: str | None = None) -> list[int]:
    """Queue a model evaluation (``settings``: ``EvalSettings``) and start it if the machine is free; with
    ``compare_base`` the base model is evaluated on the same instances as a second run. Returns the run ids
    (adapter run first; ``queue_position`` says whether they wait)."""
    settings.check()  # numbers, the model spec and the adapter directory, before any run row
    if not settings.model:
        raise ValueError("choose a model to evaluate")
    with store.transaction():
        ids = create_eval_runs(store, settings, compare_base=compare_base, name=name)
        store.enqueue(ids, ["eval"])
    dispatch(store)
    return ids


def start_traces(store: Store, settings) -> int:
    """Queue a trace generation (``settings``: ``teacher.TeacherSettings``), done by ``python -m algodistill traces
    generate --run ID``, and start it if the machine is free: a local teacher generates here, and every teacher's
    answers are judged in this machine's sandbox. Returns the run id (``queue_position`` says whether it waits)."""
    settings.check()  # numbers, the seed, the teacher spec, before any run row
    with store.transaction():
        run_id = create_traces_run(store, settings)
        store.enqueue([run_id], ["traces", "generate"])
    dispatch(store)
    return run_id


def _launch(store: Store, ids: list[int], argv: list[str]) -> None:
    try:
        _spawn(store, ids[0], argv)
    except OSError as exc:
        for run_id in ids:
            store.finish_run(run_id, "failed", error=f"could not start the job process: {exc}")
        raise JobRefused(f"could not start the job process: {exc}") from None
    run = store.get_run(ids[0])
    for extra in ids[1:]:  # runs done by the same process share its pid
        store.update_run(extra, pid=run["pid"], pid_start=run["pid_start"])


def resume_train(store: Store, run_id: int) -> int:
    """Continue an interrupted, stopped or failed training from its newest checkpoint, as a job (queued
    like a new one): the same run, its stored settings, its loss curve continued. ValueError says why a run
    cannot resume."""
    resume_point(store.get_run(run_id))
    with store.transaction():
        store.update_run(run_id, status="queued", stop_requested=None, finished=None, pid=None, pid_start=None)
        store.enqueue([run_id], ["train", "--resume", str(run_id)])
    dispatch(store)
    return run_id


def eval_to_resume(store: Store, run_id: int) -> tuple[dict, list[dict], list[dict]]:
    """(head, its group, the group's runs not completed) of the model evaluation ``run_id`` belongs to, when it
    can be resumed as it stands in the store; ValueError says why not (KeyError: no such run). What it does not
    look at: whether the model and adapter are still there (``resume_eval`` checks that)."""
    run = store.get_run(run_id)
    head = store.get_run(run["parent"]) if run["kind"] == "eval" and run.get("parent") else run
    if head["kind"] != "eval" or not head["settings"].get("model"):
        raise ValueError(f"run {run_id} is not a model evaluation (scored completions have nothing to resume)")
    group = [head] + [r for r in store.children(head["id"]) if r["kind"] == "eval"]
    if any(r["status"] in ACTIVE for r in group):
        raise ValueError(f"evaluation #{head['id']} is still running")
    todo = [r for r in group if r["status"] != "completed"]
    if not todo:
        raise ValueError(f"evaluation #{head['id']} is complete: nothing to resume")
    return head, group, todo


def resume_eval(store: Store, run_id: int) -> list[int]:
    """Finish a stopped, interrupted or failed model evaluation (and its base-model twin) as a job (queued
    like a new one): what is judged is kept, the rest is generated. Either run of a comparison may be given.
    ValueError says why not."""
    from .evaluate import EvalSettings
    head, group, todo = eval_to_resume(store, run_id)
    EvalSettings.from_dict(head["settings"]).check()  # the model and adapter must still be there
    with store.transaction():
        for r in todo:
            store.update_run(r["id"], status="queued", stop_requested=None, finished=None, error=None, pid=None,
                             pid_start=None)
        store.enqueue([r["id"] for r in group], ["eval"])
    dispatch(store)
    return [r["id"] for r in group]


def stop(store: Store, run_id: int, grace_s: float = 30.0, kill_after_s: float = 90.0, wait: bool = False) -> str:
    """Ask a run to stop. Returns a message. A run waiting in the queue is stopped at once, with the runs
    launched with it, and leaves the queue; the running job is not touched. A training ends within seconds,
    whatever its step time, and keeps the adapter as of its last completed optimizer step; an evaluation
    abandons the batch it is generating and keeps every sample judged so far. Still running after ``grace_s``:
    SIGTERM (the same stop); after ``kill_after_s`` more: SIGKILL, and the run records that it was killed and
    what was kept."""
    run = store.get_run(run_id)
    if run["status"] not in ACTIVE:
        return f"run {run_id} is already {run['status']}"
    waited = store.unqueue(run_id)
    if waited:
        also = ", ".join(f"#{each}" for each in waited if each != run_id)
        return f"run {run_id} stopped while waiting in the queue; it never started" + (
            f" (nor did {also}, launched with it)" if also else "")
    store.request_stop(run_id)
    if not run.get("pid"):
        store.finish_run(run_id, "stopped", error="stopped before it started")
        return f"run {run_id} stopped before it started"

    caller = store
    store = Store(caller.path) if caller.path != ":memory:" else caller  # the caller may close theirs first

    def escalate() -> None:
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, kill_after_s)):
            if _ends_within(store, run_id, wait_s):
                return
            pid = store.get_run(run_id).get("pid")
            if not pid or pid == os.getpid():  # a resumed run not yet handed to its process: never the app
                return
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                return
        _ends_within(store, run_id, 10)
        run = store.get_run(run_id)
        if run["status"] in ACTIVE + ("interrupted",):
            waited = grace_s + kill_after_s
            for rid in [run_id] + [r["id"] for r in store.children(run_id) if r["status"] in ACTIVE + ("interrupted",)]:
                store.finish_run(rid, "interrupted", error=f"killed: it had not ended {waited:.0f} s after the stop "
                                 f"request; kept: {_kept(store, store.get_run(rid))}")

    def escalate_and_close() -> None:
        try:
            escalate()
        finally:
            if store is not caller:
                store.close()

    thread = threading.Thread(target=escalate_and_close, daemon=True)
    thread.start()
    if wait:
        thread.join()
    if run["kind"] == "train":
        return (f"stop requested for run {run_id}: it ends within seconds and keeps the adapter as of its last "
                "completed step")
    if run["kind"] == "traces":
        return f"stop requested for run {run_id}: it ends within seconds and keeps the traces verified so far"
    return f"stop requested for run {run_id}: it ends within seconds and keeps every judged sample"


def _ends_within(store: Store, run_id: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if store.get_run(run_id)["status"] not in ACTIVE:
            return True
        time.sleep(0.5)
    return False


def _kept(store: Store, run: dict) -> str:
    """What a killed run left behind, in words, with how to continue it."""
    if run["kind"] == "eval":
        return (f"{len(store.done_keys(run['id']))} judged sample(s); `python -m algodistill eval --resume "
                f"{run['parent'] or run['id']}` finishes it")
    if run["kind"] == "traces":
        return f"the traces verified until then, in {Path(run['settings'].get('out') or 'OUT').name}.part"
    checkpoint = latest_checkpoint(run_dir(run))
    if checkpoint is None:
        return "nothing (no checkpoint had been saved yet)"
    return (f"the checkpoint at step {checkpoint[0]} in {checkpoint[1]}; `python -m algodistill train --resume "
            f"{run['id']}` (or Resume in the Train tab) continues from it")


def log_tail(store: Store, run_id: int, chars: int = 4000) -> str:
    """The end of a job's log as written (progress bars' redraws included)."""
    path = log_path(store, run_id)
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        start = max(0, path.stat().st_size - chars)
        f.seek(start)
        data = f.read()
    if start:  # the cut may fall inside a multi-byte character: start at the next whole one
        data = data.lstrip(bytes(range(0x80, 0xC0)))
    return data.decode("utf-8", "replace")


_NOISE = ("FutureWarning:", "DeprecationWarning:", "UserWarning:", "warnings.warn(")
# a tqdm progress bar (the datasets library's "Tokenizing ...", "Truncating ...", the trainer's steps, conversions)
_BAR = re.compile(r"\d+%\|[^|]*\|\s*[\d.]+[kMG]?/[\d.]+[kMG]?|\|\s*[\d.]+[kMG]?/[\d.]+[kMG]? \[")
# what the Trainer prints after each logged step: a dict of strings
_STEP = re.compile(r"^\{'(loss|train_runtime|reward)'.*\}$")  # GRPO's steps, older runs' logs
_STEP_NAMES = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad norm", "mean_token_accuracy": "token acc",
               "reward": "reward", "epoch": "epoch", "train_runtime": "runtime (s)", "train_loss": "mean loss"}


def _step_line(line: str) -> str:
    """The Trainer's ``{'loss': '1.758', 'grad_norm': ...}`` as a line a person reads: 'loss 1.758 · lr 2e-4 ...'."""
    import ast
    try:
        values = ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return line
    if not isinstance(values, dict):
        return line
    return " · ".join(f"{_STEP_NAMES[k]} {values[k]}" for k in _STEP_NAMES if k in values) or line


def clean_log(text: str, partial_start: bool = True) -> str:
    """A log as a person reads it: the run's own lines (what it trains on, steps with their loss, saves, errors)
    and, while one is moving, the one live progress bar as the last line; no finished progress bars (the
    datasets library's tokenizing and truncating, conversions), no library deprecation warnings, and, for a
    tail, starting at a whole line. The full log (``log_path``) keeps everything."""
    lines = text.split("\n")
    if partial_start and len(lines) > 1:
        lines = lines[1:]
    kept, live = [], None
    for line in lines:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        if any(mark in line for mark in _NOISE):
            continue
        if _BAR.search(line):
            live = line  # only the newest bar can still be moving
            continue
        if line.strip():
            live = None  # a line came after the bar: it has finished
        kept.append(_step_line(line) if _STEP.match(line.strip()) else line)
    if live is not None:
        kept.append(live.strip())
    return "\n".join(kept).strip("\n")
