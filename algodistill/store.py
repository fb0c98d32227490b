"""runs.db: the run store, through sqlite-utils. The only module that touches SQLite.

(A little over the ~450-line guide for that reason: every query and every schema change is here, in one place.)

Job processes write and the UI reads at the same time, so the database runs in WAL mode with a busy
timeout; every write is its own short transaction. Tables:

- ``runs``: one row per training or evaluation run (kind, status, settings JSON, model, adapter, pid,
  times, error, summary JSON).
- ``metrics``: (run, step, epoch, name, value, time) rows, one per logged value.
- ``meta``: (key, value) facts about the store itself, created when first needed (``demo``: the demo
  bundle was loaded into it, see ``bundle.load_demo``).
- ``samples``: one row per scored sample, keyed by (run, problem, difficulty, seed, index, sample): an
  instance may have several samples (pass@k, GRPO groups); prompt, completion, extracted code, verdict
  status, tests passed, per-test outcomes JSON, score.
- ``job_queue``: launches waiting for the machine, oldest first: their run ids and the command's arguments
  (JSON lists). Their runs are ``queued`` with no process; ``jobs.dispatch`` starts the oldest when no job
  holds the machine.

A run whose process has died is reported as ``interrupted``, never as running forever: liveness is
checked by pid plus the process start time, so a recycled pid does not count as alive.
This module imports nothing from the package but ``home`` (where runs.db lives).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Iterable

import sqlite_utils

from .home import db_path

ACTIVE = ("queued", "running")
# progress (0..1), eta (seconds left), message (what it is doing now), stop_requested (time of the request)
# eta_at: when eta was written, so a reader can count it down between updates (a CPU training step takes minutes)
RUN_PROGRESS_COLUMNS = {"progress": float, "eta": float, "eta_at": float, "message": str, "stop_requested": float}
# note: the user's own words about a run (Runs tab); leg_start: when the current working leg began (a run stopped
# and resumed works in several legs); worked: seconds of the legs already ended, so the time a run took counts its
# work and never the wait between a Stop and its Resume (``worked_s``)
RUN_LATER_COLUMNS = {"note": str, "leg_start": float, "worked": float}
# cut_off: 1 when generation hit max_new_tokens; style: the prompt style the sample answered (problems/styles.py)
SAMPLE_LATER_COLUMNS = {"cut_off": int, "style": str}
SAMPLE_KEY = ("run", "problem", "difficulty", "seed", "idx", "sample")
FINAL = ("completed", "failed", "stopped", "interrupted")
# a queued run with no process yet, not waiting in the job queue, is being launched (insert, then spawn):
# active for this long, then abandoned
QUEUED_GRACE_S = 120.0


def default_path() -> str:
    """$ALGODISTILL_DB, else runs.db in $ALGODISTILL_HOME (see ``home``), else ./runs.db."""
    return db_path()


def process_start(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"  # alive, start time unknown (no /proc)


def _locked(method):
    """One connection is shared by the threads of a process (the app's workers, the evaluation's verifier
    thread); SQLite connections are not safe for concurrent use, so every call takes the store's lock."""
    @wraps(method)
    def call(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return call


def _storable(fields: dict) -> dict:
    """Text SQLite can store: a lone surrogate (from generated code or a crafted file) becomes "?" instead
    of failing the whole write with UnicodeEncodeError."""
    out = {}
    for key, value in fields.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = value.encode("utf-8", "replace").decode("utf-8")
        out[key] = value
    return out


def worked_s(run: dict, now: float | None = None) -> float | None:
    """Seconds ``run`` has worked: its ended legs, and the current one while it runs (never the wait in the queue
    or between a Stop and its Resume); None before it ever started. Rows from before legs were recorded: finished
    (or now) minus started."""
    now = time.time() if now is None else now
    if run.get("worked") is None and not run.get("leg_start"):
        return ((run.get("finished") or now) - run["started"]) if run.get("started") else None
    open_leg = now - run["leg_start"] if run.get("leg_start") and run.get("status") == "running" else 0.0
    return (run.get("worked") or 0.0) + max(0.0, open_leg)


def _add_missing_columns(table, columns: dict) -> None:
    """Columns added after the first release: new files and old ones get them the same way."""
    for column, kind in columns.items():
        if column not in table.columns_dict:
            table.add_column(column, kind)


@contextlib.contextmanager
def _immediate(conn):
    """One write transaction that takes SQLite's write lock at once; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _add_key_column(db, name: str, column: str, pk: tuple) -> None:
    """A column added after the first release that joins the primary key (``sample`` in ``samples``): old
    rows get 0 and the table is rebuilt with the wider key, since SQLite cannot change a key in place.
    One immediate transaction, checked again inside it, so two processes opening the same old file do not
    both migrate it."""
    if column in db[name].columns_dict:
        return
    with _immediate(db.conn):
        table = db[name]
        if column not in table.columns_dict:
            table.add_column(column, int, not_null_default=0)
            table.transform(pk=pk)


# what a light read of samples leaves out (Store.samples)
_HEAVY_SAMPLE_COLUMNS = ("tests", "notes", "completion", "code")

class Store:
    def __init__(self, path: str | Path | None = None):
        self._lock = threading.RLock()
        self.path = str(path or default_path())
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        self.db = sqlite_utils.Database(conn)
        if self.path != ":memory:":
            self.db.enable_wal()
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        runs = self.db["runs"]
        if not runs.exists():
            runs.create({
                "id": int, "kind": str, "name": str, "status": str, "model": str, "adapter": str,
                "settings": str, "summary": str, "error": str, "pid": int, "pid_start": str, "host": str,
                "created": float, "started": float, "finished": float, "parent": int,
            }, pk="id", not_null={"kind", "status"})
            runs.create_index(["kind", "status"])
        _add_missing_columns(runs, RUN_PROGRESS_COLUMNS | RUN_LATER_COLUMNS)
        metrics = self.db["metrics"]
        if not metrics.exists():
            metrics.create({"run": int, "step": int, "epoch": float, "name": str, "value": float, "time": float},
                           foreign_keys=[("run", "runs", "id")])
            metrics.create_index(["run", "step"])
        samples = self.db["samples"]
        if not samples.exists():
            samples.create({
                "run": int, "problem": str, "difficulty": int, "seed": int, "idx": int, "prompt": str,
                "completion": str, "code": str, "status": str, "passed": int, "total": int, "score": float,
                "tests": str, "notes": str, "error": str, "gen_time": float, "tokens": int, "created": float,
                "sample": int,
            }, pk=SAMPLE_KEY, foreign_keys=[("run", "runs", "id")], not_null={"sample"}, defaults={"sample": 0})
        _add_key_column(self.db, "samples", "sample", SAMPLE_KEY)
        _add_missing_columns(samples, SAMPLE_LATER_COLUMNS)
        queue = self.db["job_queue"]
        if not queue.exists():
            queue.create({"id": int, "runs": str, "argv": str, "queued": float}, pk="id")

    # ------------------------------------------------------------------------------------------ runs
    @_locked
    def create_run(self, kind: str, settings: dict | None = None, *, name: str | None = None,
                   model: str | None = None, adapter: str | None = None, status: str = "queued",
                   parent: int | None = None) -> int:
        row = {"kind": kind, "name": name, "status": status, "model": model, "adapter": adapter,
               "settings": json.dumps(settings or {}), "created": time.time(), "parent": parent}
        return self.db["runs"].insert(row).last_pk

    @contextlib.contextmanager
    def transaction(self):
        """The block's reads and writes as one step: one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's
        write lock first, so no other launch or dispatch (thread or process) comes in between; rolled back on
        any error."""
        with self._lock, _immediate(self.db.conn):
            yield self

    @_locked
    def attach_process(self, run_id: int, pid: int | None = None) -> None:
        """Tie a queued run to the process that will do it (it stays queued): when that process dies the run
        reads as interrupted, like a running one."""
        pid = pid or os.getpid()
        self.update_run(run_id, pid=pid, pid_start=process_start(pid), host=socket.gethostname())

    @_locked
    def mark_started(self, run_id: int, pid: int | None = None) -> None:
        pid = pid or os.getpid()
        now = time.time()
        self.update_run(run_id, status="running", pid=pid, pid_start=process_start(pid), host=socket.gethostname(),
                        started=now, leg_start=now, error=None, finished=None)

    @_locked
    def finish_run(self, run_id: int, status: str, error: str | None = None, summary: dict | None = None,
                   message: str | None = None) -> None:
        """Record a final status; ``message`` replaces the progress line (which would otherwise go stale)."""
        if status not in FINAL:
            raise ValueError(f"final status must be one of {FINAL}, got {status!r}")
        now = time.time()
        fields: dict[str, Any] = {"status": status, "finished": now, "error": error,
                                  **self._leg_closed(self.db["runs"].get(run_id), now)}
        if summary is not None:
            fields["summary"] = json.dumps(summary)
        if message is not None:
            fields["message"] = message
        self.update_run(run_id, **fields)

    @staticmethod
    def _leg_closed(row: dict, end: float) -> dict:
        """The fields that end the working leg of the run in ``row`` at ``end``: its time added to ``worked``, no
        leg open."""
        if not row.get("leg_start"):
            return {}
        return {"worked": (row.get("worked") or 0.0) + max(0.0, end - row["leg_start"]), "leg_start": None}

    @_locked
    def update_run(self, run_id: int, **fields: Any) -> None:
        if "eta" in fields and "eta_at" not in fields:
            fields["eta_at"] = time.time()
        for key in ("settings", "summary"):
            if key in fields and not isinstance(fields[key], (str, type(None))):
                fields[key] = json.dumps(fields[key])
        self.db["runs"].update(run_id, _storable(fields))

    @_locked
    def get_run(self, run_id: int) -> dict:
        try:
            row = self.db["runs"].get(run_id)
        except sqlite_utils.db.NotFoundError:
            raise KeyError(f"no run with id {run_id} in {self.path}") from None
        return self._with_liveness(row)

    @_locked
    def runs(self, kind: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if status:
            where.append("status = ?")
            args.append(status)
        rows = self.db["runs"].rows_where(" and ".join(where) or None, args, order_by="id desc", limit=limit)
        return [self._with_liveness(r) for r in rows]

    @_locked
    def children(self, run_id: int) -> list[dict]:
        """Runs started together with this one (e.g. the base-model evaluation next to an adapter's)."""
        return [self._with_liveness(r) for r in self.db["runs"].rows_where("parent = ?", [run_id], order_by="id")]

    def _with_liveness(self, row: dict) -> dict:
        """Decode JSON columns; a running run whose process is gone becomes (and is saved as) interrupted, and
        so does a queued one that no process took within ``QUEUED_GRACE_S`` (its launcher died), unless it
        is waiting in the job queue, which takes as long as it takes."""
        error = None
        if row["status"] in ACTIVE and row.get("pid") and not self._alive(row):
            error = row.get("error") or "the process running it ended without recording a result"
        elif (row["status"] == "queued" and not row.get("pid")
              and time.time() - (row.get("created") or 0) > QUEUED_GRACE_S and not self._waiting(row["id"])):
            error = row.get("error") or "no process took it: the app or command that queued it ended first"
        if error:
            message = f"interrupted; last progress: {row['message']}" if row.get("message") else None
            # its leg ends at its last progress report (when the process died is not known), else at its start
            leg = self._leg_closed(row, max(row.get("eta_at") or 0.0, row.get("leg_start") or 0.0))
            fields = {"status": "interrupted", "error": error, "finished": time.time(), "message": message, **leg}
            self.db["runs"].update(row["id"], fields)
            row = dict(row, **fields)
        row = dict(row)
        for key in ("settings", "summary"):
            row[key] = json.loads(row[key]) if row.get(key) else {}
        return row

    @staticmethod
    def _alive(row: dict) -> bool:
        if not row.get("pid"):
            return False
        if row.get("host") and row["host"] != socket.gethostname():
            return True  # another machine's process: we cannot tell, so trust the row
        start = process_start(row["pid"])
        return start is not None and (start == "?" or row.get("pid_start") in (None, "?", start))

    @_locked
    def delete_run(self, run_id: int) -> dict:
        """Remove a finished run with its metrics and samples, in one transaction; runs started with it (a
        base-model twin) are kept and lose the link. Returns the deleted row. Files are the caller's."""
        run = self.get_run(run_id)
        if run["status"] in ACTIVE:
            raise ValueError(f"run {run_id} is {run['status']}: stop it before deleting it")
        with _immediate(self.db.conn):
            for table in ("samples", "metrics"):
                self.db.execute(f"delete from {table} where run = ?", [run_id])
            self.db.execute("update runs set parent = null where parent = ?", [run_id])
            self.db.execute("delete from runs where id = ?", [run_id])
        return run

    # ------------------------------------------------------------------------------------------ job queue
    @_locked
    def enqueue(self, run_ids: list[int], argv: list[str]) -> None:
        """Record a launch that waits for the machine: ``argv`` (e.g. ``["train", "--resume", "7"]``) is to run
        with ``--run`` the first of ``run_ids``; those of them that are queued wait with no process for as long
        as it takes (a resumed evaluation names its completed runs too). Call it in the ``transaction`` that
        queues the runs, so that no dispatch sees one without the other."""
        self.db["job_queue"].insert({"runs": json.dumps(run_ids), "argv": json.dumps(argv), "queued": time.time()})
        self._renumber()

    @_locked
    def job_queue(self) -> list[dict]:
        """The launches waiting for the machine, oldest first: id, runs (ids), argv, queued (time)."""
        return [dict(row, runs=json.loads(row["runs"]), argv=json.loads(row["argv"]))
                for row in self.db["job_queue"].rows_where(order_by="id")]

    @_locked
    def queue_positions(self) -> dict[int, tuple[int, int | None]]:
        """Each waiting run's place as (position, the run just ahead, None if none): the job holding the
        machine comes first, so the oldest launch behind it is at position 2; with the machine free, at 1.
        The queued runs of one launch share its place."""
        holder = self._holder()
        queued = {row["id"] for row in self.db["runs"].rows_where("status = 'queued'", select="id")}
        ahead, position, places = (holder["id"] if holder else None), (1 if holder else 0), {}
        for entry in self.job_queue():
            position += 1
            places.update({run_id: (position, ahead) for run_id in entry["runs"] if run_id in queued})
            ahead = entry["runs"][0]
        return places

    @_locked
    def claim_next(self) -> dict | None:
        """Take the oldest waiting launch off the queue if no job holds the machine, and tie its runs to this
        process, which starts its job (``attach_process``: they hold the machine from now on, and read as
        interrupted should it die first). One transaction, so two dispatchers never both take it, nor take
        one each. Launches with no queued run left (stopped meanwhile), or whose first run was deleted, are
        dropped. Returns the launch (``job_queue``'s fields), or None."""
        with self.transaction():
            if self._holder() is not None:
                return None
            for entry in self.job_queue():
                self.db["job_queue"].delete(entry["id"])
                status = {row["id"]: row["status"] for row in self.db["runs"].rows_where(
                    f"id in ({', '.join('?' * len(entry['runs']))})", entry["runs"], select="id, status")}
                waiting = [run_id for run_id, state in status.items() if state == "queued"]
                if entry["runs"][0] in status and waiting:
                    for run_id in waiting:
                        self.attach_process(run_id)
                    self._renumber()
                    return entry
        return None

    @_locked
    def unqueue(self, run_id: int) -> list[int]:
        """Take the waiting launch with ``run_id`` off the queue and mark its queued runs stopped (they never
        started), in one transaction; the launches behind it move up. Returns the runs stopped: [] when the
        run is not waiting (its job has started, or it never queued)."""
        with self.transaction():
            entry = next((e for e in self.job_queue() if run_id in e["runs"]), None)
            if entry is None:
                return []
            self.db["job_queue"].delete(entry["id"])
            stopped = [row["id"] for row in self.db["runs"].rows_where(
                f"status = 'queued' and id in ({', '.join('?' * len(entry['runs']))})", entry["runs"], select="id")]
            for each in stopped:
                self.finish_run(each, "stopped", error="stopped while waiting in the queue: it never started",
                                message="stopped before it started")
            self._renumber()
        return stopped

    def _holder(self) -> dict | None:
        """The run whose job holds the machine: the oldest active one not waiting in the queue (a running one,
        or one being launched). Runs whose process died are marked interrupted on the way and hold nothing."""
        waiting = {run_id for entry in self.job_queue() for run_id in entry["runs"]}
        rows = self.db["runs"].rows_where("status in (?, ?)", ACTIVE, order_by="id")
        return next((r for r in map(self._with_liveness, list(rows))
                     if r["status"] in ACTIVE and r["id"] not in waiting), None)

    def _renumber(self) -> None:
        """Write each waiting run's place in its progress line, after every change to the queue."""
        for run_id, (position, ahead) in self.queue_positions().items():
            after = f" (after run {ahead})" if ahead else ""
            self.update_run(run_id, message=f"waiting: position {position} in the queue{after}")

    def _waiting(self, run_id: int) -> bool:
        return self.db.execute("select 1 from job_queue, json_each(job_queue.runs) where json_each.value = ?",
                               [run_id]).fetchone() is not None

    @_locked
    def request_stop(self, run_id: int) -> None:
        """Ask a running job to stop at its next step; it saves what it has and ends as ``stopped``."""
        self.update_run(run_id, stop_requested=time.time())

    @_locked
    def stop_requested(self, run_id: int) -> bool:
        row = self.db.execute("select stop_requested from runs where id = ?", [run_id]).fetchone()
        return bool(row and row[0])

    # ------------------------------------------------------------------------------------------ metrics
    @_locked
    def log_metrics(self, run_id: int, step: int, values: dict[str, float], epoch: float | None = None) -> None:
        now = time.time()
        rows = [{"run": run_id, "step": int(step), "epoch": epoch, "name": k, "value": float(v), "time": now}
                for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if rows:
            self.db["metrics"].insert_all(rows)

    @_locked
    def last_step(self, run_id: int) -> int | None:
        """Cheap check for "has anything new been logged" (gates the expensive redraw)."""
        row = self.db.execute("select max(step) from metrics where run = ?", [run_id]).fetchone()
        return row[0]

    @_locked
    def metrics(self, run_id: int, names: Iterable[str] | None = None, after_step: int = -1) -> list[dict]:
        where, args = "run = ? and step > ?", [run_id, after_step]
        if names is not None:
            names = list(names)
            where += f" and name in ({','.join('?' * len(names))})"
            args += names
        return list(self.db["metrics"].rows_where(where, args, order_by="step, rowid"))

    # ------------------------------------------------------------------------------------------ samples
    @_locked
    def add_sample(self, run_id: int, sample: dict) -> None:
        row = {"sample": 0, **sample, "run": run_id, "created": time.time()}  # one sample per instance: 0
        for key in ("tests", "notes"):
            if key in row and not isinstance(row[key], (str, type(None))):
                row[key] = json.dumps(row[key])
        self.db["samples"].upsert(_storable(row), pk=SAMPLE_KEY)

    @_locked
    def samples(self, run_id: int, problem: str | None = None, difficulty: int | None = None,
                status: str | None = None, light: bool = False) -> list[dict]:
        """A run's samples in grid order. ``light``: without their tests, notes, completion and code (the
        verdicts and prompts only), for views that count outcomes: decoding every test is most of the time a
        full read takes."""
        where, args = ["run = ?"], [run_id]
        for column, value in (("problem", problem), ("difficulty", difficulty), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        select = "*"
        if light:
            select = ", ".join(c for c in self.db["samples"].columns_dict if c not in _HEAVY_SAMPLE_COLUMNS)
        rows = self.db["samples"].rows_where(" and ".join(where), args, select=select,
                                             order_by="problem, difficulty, seed, idx, sample")
        return [dict(r) for r in rows] if light else [self._decode_sample(r) for r in rows]

    @_locked
    def done_keys(self, run_id: int) -> set[tuple[str, int, int, int, int]]:
        """(problem, difficulty, seed, idx, sample) of samples already stored for a run (what a resumed
        evaluation skips)."""
        rows = self.db.execute("select problem, difficulty, seed, idx, sample from samples where run = ?", [run_id])
        return {tuple(r) for r in rows}

    @staticmethod
    def _decode_sample(row: dict) -> dict:
        row = dict(row)
        for key in ("tests", "notes"):
            row[key] = json.loads(row[key]) if row.get(key) else []
        return row

    # ------------------------------------------------------------------------------------------ bundles
    @_locked
    def add_runs(self, runs: list[dict], samples: Iterable[dict], metrics: Iterable[dict],
                 relink: Callable[[dict, dict[int, int]], dict], *, mark: str | None = None) -> dict[int, int] | None:
        """Add whole runs with their samples and metrics (an imported bundle) in one transaction: all of them
        or, on any error, nothing. The runs get fresh ids after the newest, in the order given; ``relink(run,
        ids)`` returns the row to store for ``run``, with every reference to another run rewritten through
        ``ids`` (bundle id -> new id); each sample's and metric's ``run`` is rewritten here. With ``mark`` (the
        demo), runs are added only by the first call naming it and only into a store with no runs; the mark
        is recorded in ``meta`` in the same transaction. Returns ``ids``, or None when nothing was added."""
        with _immediate(self.db.conn):
            if mark is not None:
                self.db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
                if self.meta(mark) is not None or self.db.execute("select 1 from runs limit 1").fetchone():
                    return None
            first = (self.db.execute("select max(id) from runs").fetchone()[0] or 0) + 1
            ids = {run["id"]: first + k for k, run in enumerate(runs)}
            for run in runs:
                row = dict(relink(run, ids), id=ids[run["id"]])
                row.update({key: json.dumps(row.get(key) or {}) for key in ("settings", "summary")})
                self.db["runs"].insert(_storable(row))
            self.db["samples"].insert_all(_storable(dict(s, run=ids[s["run"]], tests=json.dumps(s.get("tests") or []),
                                                         notes=json.dumps(s.get("notes") or []))) for s in samples)
            self.db["metrics"].insert_all(dict(m, run=ids[m["run"]]) for m in metrics)
            if mark is not None:
                added = {"time": time.time(), "runs": list(ids.values())}
                self.db["meta"].insert({"key": mark, "value": json.dumps(added)})
        return ids

    @_locked
    def meta(self, key: str) -> str | None:
        """A value recorded in the ``meta`` table (``add_runs``'s mark), or None."""
        if not self.db["meta"].exists():
            return None
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return row[0] if row else None

    @_locked
    def close(self) -> None:
        self.db.conn.close()
