"""Run untrusted Python in a separate, limited process. The only module that executes generated code.

``run_program(code, entry_point, calls)`` defines the program in a fresh child process and calls
``entry_point(*args)`` once per call, returning what each call did: the value it returned (as a plain
JSON value), the exception it raised, a timeout, or a crash. The child never receives expected outputs,
so comparing is the parent's job (``verify.py``) and a program cannot pass by forging its own verdict.

What the child gets, from strongest to weakest:
- A wall-clock deadline per call, enforced by the parent with SIGKILL on the whole process group (no
  signal the program installs can stop it); a timed-out call is recorded and the remaining calls run in
  a fresh child, so one hung call costs one test, not the program.
- Resource limits: CPU seconds, address space, processes, file size, no core dumps.
- The program runs in a grandchild, so ``os.getppid()`` is a throwaway supervisor, never the evaluator.
  That grandchild dies with the supervisor (PR_SET_PDEATHSIG).
- A scrubbed environment (``python -I -S``, a minimal PATH), stdin closed, stdout/stderr captured and
  capped at the Python level and discarded at the file-descriptor level.
- Where the OS allows (as root, or unprivileged user namespaces for other users): new network, PID and
  mount namespaces. No network at all (not even the host's loopback); the program is PID 1 of its own
  namespace and sees only its own processes, which all die with it; /tmp, /var/tmp and /dev/shm are fresh
  private tmpfs mounts. As root the program also runs as an unprivileged uid of its own (one per worker
  slot, so a fork bomb in one worker does not starve the others of RLIMIT_NPROC).

What it does NOT protect against: kernel exploits; a program reading world-readable files; and, where no
namespace can be created (some containers), network access, writes wherever the user may write, and
(when not root) signals to or /proc snooping of other processes of the same user. ``isolation()``
reports what this machine provides; the UI shows it.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Iterable

UID_BASE = 200_000  # as root, worker slot k runs code as uid/gid UID_BASE + k (no such user needs to exist)
MAX_SLOTS = 64


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0  # wall clock per call
    load_timeout_s: float = 5.0  # wall clock to start the child and define the program
    cpu_s: int = 20  # CPU seconds for one child (all its calls)
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 4
    max_output_chars: int = 2000  # of stdout+stderr kept per call
    max_value_chars: int = 4_000_000  # of a returned value's JSON


@dataclass
class CallResult:
    status: str  # returned | unserializable | exception | timeout | crash
    value: Any = None  # the returned value (status "returned"), decoded from JSON
    error: str | None = None
    time_s: float = 0.0
    output: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProgramResult:
    calls: list[CallResult]
    load_error: str | None = None  # exception while defining the program (SyntaxError, ImportError, ...)
    missing_function: bool = False
    children: int = 1  # processes started (more than 1 when a call timed out or crashed)
    isolation: list[str] = field(default_factory=list)


class SandboxUnavailable(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------------
# The child. Runs under `python -I -S -c`, stdlib only, so it needs no file readable by the sandbox uid.
HARNESS = r'''
import ctypes, json, os, resource, signal, sys, time, traceback
_loads, _dumps, _write, _clock, _fmt = json.loads, json.dumps, os.write, time.perf_counter, traceback.format_exception
job = _loads(sys.stdin.buffer.read())
sys.stdin.close()
out = job["fd"]
def emit(**record):
    data = (_dumps(record) + "\n").encode()
    while data:
        data = data[_write(out, data):]
libc = ctypes.CDLL(None, use_errno=True)
NEWNS, NEWUSER, NEWPID, NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
applied = []
def try_unshare(flags):
    return libc.unshare(ctypes.c_int(flags)) == 0
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
root = os.geteuid() == 0
uid, gid = os.getuid(), os.getgid()
if job["isolate"]:
    if root and try_unshare(NEWNET | NEWPID | NEWNS):
        applied += ["network", "pid", "mount"]
    elif not root and try_unshare(NEWUSER | NEWNET | NEWPID | NEWNS):
        try:
            write("/proc/self/setgroups", "deny")
            write("/proc/self/uid_map", "%d %d 1" % (uid, uid))
            write("/proc/self/gid_map", "%d %d 1" % (gid, gid))
            applied += ["user", "network", "pid", "mount"]
        except OSError:
            applied += ["user", "network", "pid"]
    elif try_unshare(NEWNET):
        applied.append("network")
    if "mount" in applied:
        MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV = 16384, 1 << 18, 2, 4
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            for target in (b"/tmp", b"/var/tmp", b"/dev/shm"):
                if os.path.isdir(target) and libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16m,mode=1777") == 0:
                    applied.append("tmpfs:" + target.decode())
lim = job["limits"]
for name, value in (("RLIMIT_CPU", lim["cpu_s"]), ("RLIMIT_AS", lim["memory_mb"] << 20),
                    ("RLIMIT_FSIZE", lim["max_file_mb"] << 20), ("RLIMIT_CORE", 0),
                    ("RLIMIT_NPROC", job["nproc"])):
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError):
        pass
pid = -1
for _ in range(50):
    try:
        pid = os.fork()
        break
    except OSError:  # EAGAIN while another worker's fork bomb holds the shared process budget
        time.sleep(0.02)
if pid < 0:
    emit(event="harness_error", error="could not fork")
    os._exit(3)
if pid:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
# the grandchild: PID 1 of its namespace when there is one
libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the supervisor
if "pid" in applied and "mount" in applied:
    if libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None) == 0:  # nosuid, nodev, noexec
        applied.append("proc")
if job["uid"] is not None:
    os.setgroups([])
    os.setgid(job["uid"])
    os.setuid(job["uid"])
    applied.append("uid")
fd_keep = {out}
for fd in range(3, 256):
    if fd not in fd_keep:
        try:
            os.close(fd)
        except OSError:
            pass
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
class Capped:
    def __init__(self, cap):
        self.cap, self.parts, self.size = cap, [], 0
    def write(self, text):
        text = str(text)
        if self.size < self.cap:
            self.parts.append(text[: self.cap - self.size])
        self.size += len(text)
        return len(text)
    def flush(self):
        pass
    def take(self):
        text = "".join(self.parts)
        if self.size > self.cap:
            text += "\n... [%d more characters]" % (self.size - self.cap)
        self.parts, self.size = [], 0
        return text
capture = Capped(lim["max_output_chars"])
sys.stdout = sys.stderr = capture
sys.setrecursionlimit(3000)
def describe(exc):
    lines = _fmt(type(exc), exc, exc.__traceback__)
    keep = [l for l in lines if "<solution>" in l or not l.startswith("  File")]
    return "".join(keep[-6:]).strip()[-1500:]
emit(event="ready", isolation=applied)
namespace = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile(job["code"], "<solution>", "exec"), namespace)
except BaseException as exc:
    emit(event="load_error", error=describe(exc), output=capture.take())
    os._exit(0)
fn = namespace.get(job["entry"])
if not callable(fn):
    emit(event="missing", output=capture.take())
    os._exit(0)
emit(event="loaded")
for i in range(job["start"], len(job["calls"])):
    args = _loads(job["calls"][i])
    t0 = _clock()
    try:
        value = fn(*args)
    except BaseException as exc:
        elapsed = _clock() - t0
        emit(i=i, status="exception", error=describe(exc), time=elapsed, output=capture.take())
        continue
    elapsed = _clock() - t0
    try:
        text = _dumps(value, allow_nan=False)
        if len(text) > lim["max_value_chars"]:
            raise ValueError("returned value is too large (%d characters as JSON)" % len(text))
        emit(i=i, status="returned", value=text, time=elapsed, output=capture.take())
    except BaseException as exc:
        try:
            shown = repr(value)[:300]
        except BaseException:
            shown = "<unprintable %s>" % type(value).__name__
        emit(i=i, status="unserializable", error="%s: %s; value: %s" % (type(exc).__name__, exc, shown),
             time=elapsed, output=capture.take())
emit(event="done")
os._exit(0)
'''


# --------------------------------------------------------------------------------------------------
# The parent.

class _Slots:
    """Worker slots, so that concurrent children as root get distinct uids."""

    def __init__(self, n: int):
        self._free = list(range(n))
        self._cv = threading.Condition()

    def take(self) -> int:
        with self._cv:
            while not self._free:
                self._cv.wait()
            return self._free.pop()

    def give(self, slot: int) -> None:
        with self._cv:
            self._free.append(slot)
            self._cv.notify()


_slots = _Slots(MAX_SLOTS)


def _is_root() -> bool:
    return os.geteuid() == 0


@lru_cache(maxsize=1)
def sandbox_python() -> str:
    """An interpreter the sandboxed user can run with its stdlib (as root, /root is usually 0700)."""
    candidates = [sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3", "/usr/local/bin/python3",
                  shutil.which("python3") or ""]
    if not _is_root():
        return sys.executable
    probe = "import collections, heapq, math, itertools, functools, bisect, re, json, ctypes, resource"
    for exe in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
        try:
            r = subprocess.run([exe, "-I", "-S", "-c", probe], user=UID_BASE, group=UID_BASE, extra_groups=[],
                               env=_env(), cwd="/", capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return exe
    raise SandboxUnavailable(
        "running as root, but no Python interpreter (with its standard library) can be run by an "
        "unprivileged user; install Debian's python3 (/usr/bin/python3) or run algodistill as a normal user")


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent",
            "PYTHONHASHSEED": "0"}


_task_count = {"at": 0.0, "n": 0}


def _nproc_budget(limits: Limits) -> int:
    if _is_root():
        return limits.max_processes  # a uid of our own: the count starts at zero
    # RLIMIT_NPROC counts every task (thread) of the user, the app's own threads included, so leave room
    # for what is already running. Counted at most once a second: a scan of /proc is not free.
    now = time.monotonic()
    if now - _task_count["at"] > 1.0:
        uid, n = os.getuid(), 0
        try:
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        if os.stat(f"/proc/{d}").st_uid == uid:
                            n += len(os.listdir(f"/proc/{d}/task"))
                    except OSError:
                        continue
        except OSError:
            n = 4096
        _task_count.update(at=now, n=n)
    return _task_count["n"] + limits.max_processes + 2 * MAX_SLOTS


class _Child:
    """One supervisor process and the result lines it writes."""

    def __init__(self, job: dict, workdir: str, uid: int | None):
        read_fd, write_fd = os.pipe()
        job = dict(job, fd=write_fd)
        try:
            self.proc = subprocess.Popen(
                [sandbox_python(), "-I", "-S", "-c", HARNESS], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(write_fd,), cwd=workdir, env=_env(), start_new_session=True)
        finally:
            os.close(write_fd)
        self.fd = read_fd
        os.set_blocking(read_fd, False)
        self.buffer = b""
        self.eof = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(read_fd, selectors.EVENT_READ)
        threading.Thread(target=self._feed, args=(json.dumps(job).encode(),), daemon=True).start()

    def _feed(self, payload: bytes) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def next_record(self, deadline: float) -> dict | None:
        """The next result line, or None at EOF; raises TimeoutError after ``deadline``."""
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    return record
                return {"event": "garbage", "line": line[:200].decode("utf-8", "replace")}
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if self.selector.select(remaining):
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if chunk:
                    self.buffer += chunk
                else:
                    self.eof = True

    def kill(self) -> str:
        """Kill the whole process group, reap it, and say how the supervisor ended."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        code = self.proc.wait()
        self.selector.close()
        os.close(self.fd)
        return _describe_exit(code)


def _describe_exit(code: int) -> str:
    if code < 0 or code > 128:
        number = -code if code < 0 else code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (out of CPU time)" if name == "SIGXCPU" else ""
        return f"the process was killed by {name}{hint}"
    return f"the process exited with status {code} before returning"


def run_program(code: str, entry_point: str, calls: list[list], limits: Limits = Limits(),
                isolate: bool = True) -> ProgramResult:
    """Define ``code`` in a sandboxed child and call ``entry_point(*args)`` for each args list in ``calls``."""
    encoded = [json.dumps(args) for args in calls]
    results: list[CallResult | None] = [None] * len(calls)
    outcome = ProgramResult(calls=[], children=0)
    slot = _slots.take()
    uid = UID_BASE + slot if _is_root() else None
    workdir = tempfile.mkdtemp(prefix="algodistill-sbx-")
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        job = {"code": code, "entry": entry_point, "calls": encoded, "limits": asdict(limits), "uid": uid,
               "nproc": _nproc_budget(limits), "isolate": isolate}
        start = 0
        while start < len(calls):
            outcome.children += 1
            start = _run_child(dict(job, start=start), workdir, uid, limits, results, outcome)
            if outcome.load_error is not None or outcome.missing_function:
                break
    finally:
        _slots.give(slot)
        shutil.rmtree(workdir, ignore_errors=True)
    outcome.calls = [r or CallResult(status="crash", error="not run") for r in results]
    return outcome


def _run_child(job: dict, workdir: str, uid: int | None, limits: Limits, results: list,
               outcome: ProgramResult) -> int:
    """Run one child from ``job['start']``; fill ``results``; return where the next child must start."""
    child = _Child(job, workdir, uid)
    current = job["start"]
    loaded = False
    deadline = time.monotonic() + limits.load_timeout_s
    try:
        while True:
            try:
                record = child.next_record(deadline)
            except TimeoutError:
                child.kill()
                if not loaded:  # defining the program hangs: every remaining call would hang the same way
                    for i in range(current, len(results)):
                        results[i] = CallResult(status="timeout", error="the program did not finish loading "
                                                f"within {limits.load_timeout_s:g} s", time_s=limits.load_timeout_s)
                    return len(results)
                results[current] = CallResult(status="timeout", time_s=limits.timeout_s,
                                              error=f"no result within {limits.timeout_s:g} s")
                return current + 1
            if record is None:  # EOF: the child died mid-call (or before loading)
                how = child.kill()
                if not loaded:
                    for i in range(current, len(results)):
                        results[i] = CallResult(status="crash", error=f"while loading the program, {how}")
                    return len(results)
                results[current] = CallResult(status="crash", error=how)
                return current + 1
            event = record.get("event")
            if event == "ready":
                outcome.isolation = list(record.get("isolation", []))
            elif event == "load_error":
                outcome.load_error = str(record.get("error"))
                child.kill()
                return len(results)
            elif event == "missing":
                outcome.missing_function = True
                child.kill()
                return len(results)
            elif event == "loaded":
                loaded = True
                deadline = time.monotonic() + limits.timeout_s
            elif event == "done":
                child.kill()
                return len(results)
            elif event is None and loaded and record.get("i") == current:
                results[current] = _call_result(record)
                current += 1
                deadline = time.monotonic() + limits.timeout_s
            else:  # anything else on the result channel is the program scribbling on it
                child.kill()
                results[current] = CallResult(status="crash", error="the program wrote to the result channel")
                return current + 1
    finally:
        if child.proc.returncode is None:
            child.kill()


def _call_result(record: dict) -> CallResult:
    status = record.get("status")
    common = {"time_s": float(record.get("time") or 0.0), "output": str(record.get("output") or "")}
    if status == "returned":
        try:
            return CallResult(status="returned", value=json.loads(record["value"]), **common)
        except (ValueError, KeyError, TypeError):
            return CallResult(status="crash", error="malformed result", **common)
    if status in ("exception", "unserializable"):
        return CallResult(status=status, error=str(record.get("error")), **common)
    return CallResult(status="crash", error="malformed result", **common)


def run_many(programs: Iterable[tuple[str, str, list[list]]], limits: Limits = Limits(),
             workers: int | None = None) -> list[ProgramResult]:
    """``run_program`` over many (code, entry_point, calls) in parallel; results in input order.

    Children spend most of their life starting up or waiting, so twice the core count keeps the CPUs busy.
    """
    programs = list(programs)
    workers = workers or min(MAX_SLOTS, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_program(*p, limits=limits), programs))


@lru_cache(maxsize=1)
def isolation() -> list[str]:
    """What this machine gives a sandboxed program (namespaces, uid), found by running a trivial one."""
    return run_program("def f():\n    return 1\n", "f", [[]]).isolation
