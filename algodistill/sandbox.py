"""Run untrusted Python in a separate, limited process. The only module that executes generated code.

(Why one file of ~580 lines, over the ~450-line guide: everything the child is allowed to see and do, and every
way a record from it is trusted, is here to be reviewed in one sitting; a split would spread the boundary over
modules. Its child and its value codec are already apart: sandbox_child.py, sandbox_values.py.)

``run_program(code, entry_point, calls)`` defines the program in a fresh child process and calls
``entry_point(*args)`` once per call, returning what each call did: the value it returned (as a plain
JSON value), the exception it raised, a timeout, or a crash. The child never receives expected outputs,
so comparing is the parent's job (``verify.py``) and a program cannot pass by forging its own verdict.

Because the verifier is also a reward (GRPO), a hole here is a reward hack. What the child gets:
- **Only the standard library and its own /tmp.** Where a mount namespace can be made (as root, or with
  unprivileged user namespaces), the program runs in a private root: a tmpfs holding read-only binds of
  the interpreter's trees with every site-/dist-packages directory (and this checkout, the app's venv,
  home and run store, should they lie inside) covered by empty mounts, /dev/null-like devices, a fresh
  /proc, and a /tmp of its own capped at ``Limits.tmp_mb`` and ``tmp_files`` (nosuid, nodev); the host's
  root is detached, so no other path exists. Where the kernel has Landlock (5.13+), the program may in
  addition read only the stdlib files and the shared libraries its extension modules load (found once by
  asking the interpreter), write only that /tmp, make no TCP connection (ABI 4+) and signal nothing or
  reach no abstract socket outside the sandbox (ABI 6+). Landlock alone (no namespaces: many containers)
  still keeps every file unreadable and unwritable, but then nothing is writable at all.
- A wall-clock deadline per call, enforced by the parent with SIGKILL on the whole process group (no
  signal the program installs can stop it); a timed-out call is recorded and the remaining calls run in
  a fresh child, so one hung call costs one test, not the program.
- Resource limits: CPU seconds, address space, processes, file size, no core dumps; no_new_privs.
- New network and PID namespaces where allowed: no network at all (not even the host's loopback); the
  program is PID 1 of its namespace and sees only its own processes, which all die with it. As root it
  runs as an unprivileged uid of its own (one per worker slot, so a fork bomb in one worker does not starve
  the others of RLIMIT_NPROC); in a user namespace it drops every capability.
- The program runs in a grandchild, so ``os.getppid()`` is a throwaway supervisor, never the evaluator.
- A scrubbed environment (``python -I -S``, a minimal PATH), stdin closed, stdout/stderr captured and
  capped at the Python level and discarded at the file-descriptor level.
- The parent judges each record alone: a value nested deeper than ``max_value_depth`` or larger than
  ``max_value_chars``, a malformed or forged record, or a flood on the result channel fails that call with a
  message and never the batch.

What it does NOT protect against: kernel exploits; CPU and memory contention with the host (limits, not
reservations); with Landlock only, probing which paths exist (stat) and UDP; with neither namespaces nor
Landlock, reading and writing whatever this user may, the network, and (when not root) signals to other
processes of the same user. ``isolation_report()`` says which of these applies on this machine; every
evaluation run stores it, and the app and the CLI warn when it is not "full".
"""

from __future__ import annotations

import glob
import json
import marshal
import os
import platform
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
from pathlib import Path
from typing import Any, Iterable

from .home import home

UID_BASE = 200_000  # as root, worker slot k runs code as uid/gid UID_BASE + k (no such user needs to exist)
MAX_SLOTS = 64
# the processes of one launch (distributed.py) verify side by side on a machine: each gets its own block of uids, so
# that one's sweep or process limit never touches another's programs
_UID_FIRST = UID_BASE + int(os.environ.get("LOCAL_RANK") or 0) % 64 * MAX_SLOTS


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0  # wall clock per call
    load_timeout_s: float = 5.0  # wall clock to start the child and define the program
    cpu_s: int = 20  # CPU seconds for one child (all its calls)
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 4  # one file
    tmp_mb: int = 16  # all files in the program's /tmp together (where it has a private root)
    tmp_files: int = 256  # files and directories in its /tmp
    max_output_chars: int = 2000  # of stdout+stderr kept per call
    max_value_chars: int = 1_000_000  # of a returned value's JSON
    max_value_depth: int = 100  # nesting of a returned value (lists and dicts)


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
    notes: list[str] = field(default_factory=list)  # what the child said about its set-up
    code_tests: list[CallResult] = field(default_factory=list)  # tests judged in a process of their own (verify)


class SandboxUnavailable(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------------
# The child: its own file, run as a script (see its docstring), never imported.
# The typed-value codec (sandbox_values.py, no imports) comes first, for calls made with ``typed_from``.
HARNESS = "\n".join((Path(__file__).resolve().parent / name).read_text()
                    for name in ("sandbox_values.py", "sandbox_child.py"))


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
            r = _python(exe, probe, UID_BASE, timeout=20, capture_output=True)
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


def _python(exe: str, code: str, uid: int | None, **kwargs) -> subprocess.CompletedProcess:
    """``exe -I -S -c code`` in the sandbox's environment, as ``uid`` (as root) or as this user (None)."""
    as_user = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
    return subprocess.run([exe, "-I", "-S", "-c", code], env=_env(), cwd="/", **as_user, **kwargs)


# What the sandbox interpreter needs to read: its standard library and the shared libraries its extension
# modules load. Found once by asking that interpreter (layouts differ: Debian, pyenv, conda, Docker images).
_PROBE = r'''
import json, os, sys, sysconfig
dynload = os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")
for name in sorted(os.listdir(dynload)) if os.path.isdir(dynload) else []:
    module = name.split(".")[0]
    if not module.startswith(("_test", "xx", "_xx", "_ctypes_test", "_tkinter")):
        try:
            __import__(module)
        except BaseException:
            pass
maps = set()
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            maps.add(parts[5].strip())
print(json.dumps({"prefix": sys.base_prefix, "exec_prefix": sys.base_exec_prefix, "executable": sys.executable,
                  "libs": sorted({sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}),
                  "dynload": dynload, "maps": sorted(maps)}))
'''
_PACKAGE_DIRS = ("site-packages", "dist-packages")
_PACKAGE_GLOBS = ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages",
                  "lib64/python3*/site-packages", "local/lib/python3*/*-packages", "local/lib/python3/dist-packages")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "loongarch64": 41, "ppc64le": 203, "s390x": 217}


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _private_paths() -> list[str]:
    """Paths that must never be visible to generated code even when they lie inside a tree it needs: this
    checkout (the problems and their reference solutions), the app's environment, home, the algodistill home
    (run store, uploads, adapters)."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    paths = [here, sys.prefix, os.path.expanduser("~"), os.getcwd(), tempfile.gettempdir(), str(home())]
    return [os.path.realpath(p) for p in paths if p]


@lru_cache(maxsize=1)
def _fs_plan() -> dict:
    """What the child may see: ``read`` (Landlock allow-list), ``trees`` bound read-only into its private
    root, with ``links`` replicated and ``hide`` covered by empty mounts; plus the pivot_root syscall."""
    try:
        r = _python(sandbox_python(), _PROBE, UID_BASE if _is_root() else None, timeout=60, capture_output=True)
        info = json.loads(r.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {"read": [], "trees": [], "links": {}, "hide": [], "devices": list(DEVICES), "pivot_root": None}
    read: list[str] = []
    for lib in info["libs"]:
        read += [os.path.join(lib, e) for e in sorted(os.listdir(lib)) if e not in _PACKAGE_DIRS]
    if not any(_under(info["dynload"], lib) for lib in info["libs"]):
        read.append(info["dynload"])
    read += [m for m in info["maps"] if os.path.isfile(m)]
    links, trees = {}, ["/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            links[name] = os.readlink(name)
        elif os.path.isdir(name):
            trees.append(name)
    for path in [info["prefix"], info["exec_prefix"]] + [os.path.dirname(m) for m in read if os.path.isfile(m)]:
        real = os.path.realpath(path)
        if os.path.isdir(real) and not any(_under(real, t) for t in trees):
            trees.append(real)
    needed = [os.path.realpath(p) for p in read]
    hide = set()
    for tree in trees:
        for pattern in _PACKAGE_GLOBS:
            hide.update(os.path.realpath(p) for p in glob.glob(os.path.join(tree, pattern)))
    hide.update(p for p in _private_paths() if any(_under(p, t) for t in trees))
    # never hide what the interpreter itself needs (a checkout in / or /usr would otherwise hide the stdlib)
    hide = sorted(h for h in hide if os.path.isdir(h) and not any(_under(n, h) for n in needed))
    return {"read": read, "trees": trees, "links": links, "hide": hide, "devices": list(DEVICES),
            "pivot_root": _PIVOT_ROOT.get(platform.machine())}


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


class _Flood(Exception):
    """The child wrote more on the result channel than any honest record needs."""


class _Child:
    """One supervisor process and the result lines it writes."""

    def __init__(self, job: dict, workdir: str, max_line: int):
        read_fd, write_fd = os.pipe()
        job = dict(job, fd=write_fd)
        try:
            self.proc = subprocess.Popen(
                [sandbox_python(), "-I", "-S", "-c", HARNESS], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(write_fd,), cwd=workdir, env=_env(), start_new_session=True)
        finally:
            os.close(write_fd)
        self.fd = read_fd
        self.max_line = max_line
        os.set_blocking(read_fd, False)
        self.buffer = b""
        self.eof = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(read_fd, selectors.EVENT_READ)
        threading.Thread(target=self._feed, args=(marshal.dumps(job, 4),), daemon=True).start()

    def _feed(self, payload: bytes) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def next_record(self, deadline: float) -> dict | None:
        """The next result line, or None at EOF; raises TimeoutError after ``deadline``, _Flood when a line
        grows past what an honest record can be (the parent's memory is not the program's to take)."""
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError, MemoryError):
                    record = None
                if isinstance(record, dict):
                    return record
                return {"event": "garbage", "line": line[:200].decode("utf-8", "replace")}
            if len(self.buffer) > self.max_line:
                raise _Flood
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


_MODES = {True: "all", False: "none", "all": "all", "none": "none", "landlock": "landlock", "namespaces": "namespaces"}


def run_program(code: str, entry_point: str, calls: list[list], limits: Limits = Limits(),
                isolate: bool | str = True, typed_from: int | None = None) -> ProgramResult:
    """Define ``code`` in a sandboxed child and call ``entry_point(*args)`` for each args list in ``calls``.

    Calls from index ``typed_from`` on pass each argument as typed data (``sandbox_values``) and return the value
    as typed data, still undecoded: its ``CallResult.value`` is what ``sandbox_values.decode`` reads.
    ``isolate``: True (every layer this machine offers), False (limits and deadlines only), or, for tests of
    the fallbacks other hosts get, "landlock" (no namespaces) or "namespaces" (no Landlock)."""
    encoded = json.loads(json.dumps(calls))  # what the child gets is plain JSON data, as before
    results: list[CallResult | None] = [None] * len(calls)
    outcome = ProgramResult(calls=[], children=0)
    mode = _MODES[isolate]
    slot = _slots.take()
    uid = _UID_FIRST + slot if _is_root() else None
    workdir = tempfile.mkdtemp(prefix="algodistill-sbx-")
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        job = {"code": code, "entry": entry_point, "calls": encoded, "limits": asdict(limits), "uid": uid,
               "nproc": _nproc_budget(limits), "isolate": mode, "fs": _fs_plan() if mode != "none" else {},
               "typed_from": typed_from}
        start = 0
        while start < len(calls):
            outcome.children += 1
            start = _run_child(dict(job, start=start), workdir, limits, results, outcome)
            if outcome.load_error is not None or outcome.missing_function:
                break
    finally:
        if uid is not None and "pid" not in outcome.isolation:
            _sweep(uid)
        _slots.give(slot)
        shutil.rmtree(workdir, ignore_errors=True)
    outcome.calls = [r or CallResult(status="crash", error="not run") for r in results]
    return outcome


def _sweep(uid: int) -> None:
    """Without a PID namespace a descendant can leave the process group (setsid) and outlive the program.
    As root every program has a uid of its own slot, so kill whatever still runs as that uid."""
    try:
        _python(sandbox_python(), "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError:\n    pass", uid, timeout=10,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass


def _run_child(job: dict, workdir: str, limits: Limits, results: list, outcome: ProgramResult) -> int:
    """Run one child from ``job['start']``; fill ``results``; return where the next child must start."""
    child = _Child(job, workdir, max_line=limits.max_value_chars + 4 * limits.max_output_chars + 4096)
    current = job["start"]
    loaded = ready = False
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
            except _Flood:
                child.kill()
                results[current] = CallResult(status="crash", error="the program flooded the result channel "
                                              f"(more than {child.max_line} bytes in one record)")
                return current + 1 if loaded else len(results)
            if record is None:  # EOF: the child died mid-call (or before loading)
                how = child.kill()
                if not loaded:
                    for i in range(current, len(results)):
                        results[i] = CallResult(status="crash", error=f"while loading the program, {how}")
                    return len(results)
                results[current] = CallResult(status="crash", error=how)
                return current + 1
            event = record.get("event")
            if event == "ready" and not ready:  # written before any of the program's code runs
                ready = True
                outcome.isolation = [str(x) for x in record.get("isolation", [])][:32]
            elif event == "note" and not ready:
                outcome.notes.append(str(record.get("note"))[:300])
            elif event == "load_error" and ready and not loaded:
                outcome.load_error = _text(record.get("error"), 2000)
                child.kill()
                return len(results)
            elif event == "missing" and ready and not loaded:
                outcome.missing_function = True
                child.kill()
                return len(results)
            elif event == "loaded" and ready and not loaded:
                loaded = True
                deadline = time.monotonic() + limits.timeout_s
            elif event == "done" and loaded:
                child.kill()
                return len(results)
            elif event is None and loaded and record.get("i") == current:
                results[current] = _call_result(record, limits)
                current += 1
                deadline = time.monotonic() + limits.timeout_s
            elif event is None and loaded and type(record.get("i")) is int and 0 <= record["i"] < current:
                # a second record for a call already judged: one of the two was forged by the program
                results[record["i"]] = CallResult(status="crash", error="the program wrote a result record of "
                                                  "its own on the result channel")
            else:  # anything else on the result channel is the program scribbling on it
                child.kill()
                results[current] = CallResult(status="crash", error="the program wrote to the result channel")
                return current + 1 if loaded else len(results)
    finally:
        if child.proc.returncode is None:
            child.kill()


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def value_problem(value: Any, max_depth: int) -> str | None:
    """Why a decoded value cannot be judged (nested too deep), or None. Iterative: deep values are the point."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > max_depth:
                return f"the returned value is nested more than {max_depth} levels deep"
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return None


def _call_result(record: dict, limits: Limits) -> CallResult:
    """Judge one call record from the child; whatever it holds (forged, deep, huge, wrong types) concerns
    this call alone."""
    status = record.get("status")
    try:
        common = {"time_s": float(record.get("time") or 0.0),
                  "output": _text(record.get("output") or "", limits.max_output_chars + 100)}
    except (TypeError, ValueError, OverflowError):
        return CallResult(status="crash", error="malformed result")
    if status == "returned":
        text = record.get("value")
        if not isinstance(text, str) or len(text) > limits.max_value_chars:
            return CallResult(status="unserializable", error="the returned value is larger than "
                              f"{limits.max_value_chars} characters as JSON", **common)
        try:
            value = json.loads(text)
        except RecursionError:
            return CallResult(status="unserializable", error=f"the returned value is nested more than "
                              f"{limits.max_value_depth} levels deep", **common)
        except (ValueError, MemoryError):
            return CallResult(status="crash", error="malformed result", **common)
        problem = value_problem(value, limits.max_value_depth)
        if problem:
            return CallResult(status="unserializable", error=problem, **common)
        return CallResult(status="returned", value=value, **common)
    if status in ("exception", "unserializable"):
        return CallResult(status=status, error=_text(record.get("error"), 2000), **common)
    return CallResult(status="crash", error="malformed result", **common)


def run_many(programs: Iterable[tuple], limits: Limits = Limits(),
             workers: int | None = None) -> list[ProgramResult]:
    """``run_program`` over many (code, entry_point, calls[, typed_from]) in parallel; results in input order.

    Children spend most of their life starting up or waiting, so twice the core count keeps the CPUs busy.
    """
    programs = list(programs)
    workers = workers or min(MAX_SLOTS, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_program(*p[:3], limits=limits, typed_from=(p[3:] or [None])[0]),
                             programs))


@lru_cache(maxsize=1)
def isolation() -> list[str]:
    """What this machine gives a sandboxed program (namespaces, private root, Landlock, uid), found by
    running a trivial one."""
    return run_program("def f():\n    return 1\n", "f", [[]]).isolation


def isolation_report(applied: Iterable[str] | None = None) -> dict:
    """The isolation actually used, in words: ``level`` is "full" (private root, no network, other processes
    out of reach), "partial" (some layers missing: ``gaps`` says which) or "none"; ``warning`` is what the
    app and the CLI show when it is not full. Stored with every evaluation run."""
    applied = list(isolation() if applied is None else applied)
    have = set(applied)
    gaps = []
    if "root" not in have:
        gaps.append("no private file system: Landlock keeps files unreadable and unwritable, but paths can be "
                    "probed for existence" if "landlock" in have else
                    "no file-system confinement: generated code can read what this user can (the checkout and "
                    "its reference solutions included) and write wherever this user can")
    if "network" not in have:
        gaps.append("no network namespace: Landlock blocks TCP, not UDP" if "landlock-net" in have else
                    "no network confinement")
    if not have & {"pid", "uid", "landlock-scope"}:
        gaps.append("other processes of this user can be signalled")
    confined = bool(have & {"root", "landlock"})
    level = "full" if not gaps else "partial" if confined else "none"
    warning = None if not gaps else (
        f"sandbox isolation is {level} on this host ({'; '.join(gaps)}). Namespaces "
        f"{'work' if 'mount' in have else 'are not available'} here, Landlock "
        f"{'works' if 'landlock' in have else 'is not available'}; see the README's Sandbox section")
    return {"level": level, "applied": applied, "gaps": gaps, "warning": warning}
