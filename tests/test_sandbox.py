"""Adversarial sandbox tests: one hostile property each. Every test can fail if the protection breaks."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from algodistill.problems import make_instance
from algodistill.sandbox import Limits, isolation_report, run_many, run_program
from algodistill.verify import fenced, same, verify_many

FAST = Limits(timeout_s=1.0, load_timeout_s=5.0, cpu_s=5)


def one(code, args=(), entry="f", limits=FAST):
    return run_program(code, entry, [list(args)], limits=limits)


def test_returns_plain_values_and_captures_output():
    r = run_program("def f(x):\n    print('seen', x)\n    return [x, {'k': x * 2}, None, True]\n", "f",
                    [[1], [2]], limits=FAST)
    assert [c.status for c in r.calls] == ["returned", "returned"]
    assert r.calls[1].value == [2, {"k": 4}, None, True]
    assert r.calls[0].output.strip() == "seen 1"
    assert r.children == 1  # every call ran in the same child


def test_infinite_loop_times_out_and_later_calls_still_run():
    code = "def f(x):\n    while x == 1:\n        pass\n    return x\n"
    t0 = time.monotonic()
    r = run_program(code, "f", [[1], [2], [3]], limits=FAST)
    assert [c.status for c in r.calls] == ["timeout", "returned", "returned"]
    assert [c.value for c in r.calls[1:]] == [2, 3]
    assert time.monotonic() - t0 < 5


def test_hang_while_loading_is_a_timeout():
    r = one("while True:\n    pass\ndef f():\n    return 1\n", limits=Limits(load_timeout_s=1.0))
    assert r.calls[0].status == "timeout"


def _marker_processes(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def test_fork_bomb_is_contained_and_leaves_nothing_behind():
    code = ("import os\n"
            "def f():\n"
            "    while True:\n"
            "        try:\n"
            "            os.fork()\n"
            "        except OSError:\n"
            "            pass\n")
    r = one(code)
    assert r.calls[0].status in ("timeout", "crash")
    time.sleep(0.3)
    assert subprocess.run(["true"]).returncode == 0  # the host can still start processes


def test_escaped_background_process_is_killed():
    marker = "987654.321"
    code = ("import os, subprocess\n"
            "def f():\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            "    return 1\n")
    r = one(code)
    assert r.calls[0].status == "returned"
    deadline = time.monotonic() + 3
    while _marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marker_processes(marker) == []


def test_memory_bomb_fails_without_hurting_the_parent():
    r = one("def f():\n    block = bytearray(8 * 1024 ** 3)\n    return len(block)\n")
    assert r.calls[0].status in ("exception", "crash")
    assert "MemoryError" in (r.calls[0].error or "") or r.calls[0].status == "crash"


def test_recursion_bomb_fails_that_call_only():
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return 1 if n == 0 else f(n + 1)\n"
    r = run_program(code, "f", [[1], [0]], limits=FAST)
    assert r.calls[0].status in ("exception", "crash", "timeout")  # RecursionError, MemoryError or stack
    assert r.calls[1].status == "returned" and r.calls[1].value == 1


def test_huge_output_is_capped():
    r = one("def f():\n    for _ in range(200000):\n        print('x' * 100)\n    return 7\n")
    assert r.calls[0].status == "returned" and r.calls[0].value == 7
    assert len(r.calls[0].output) < 3 * FAST.max_output_chars


def test_sys_exit_is_an_exception_not_a_pass():
    r = one("import sys\ndef f():\n    sys.exit(0)\n")
    assert r.calls[0].status == "exception" and "SystemExit" in r.calls[0].error


def test_os_exit_is_a_crash_and_next_call_runs_in_a_new_child():
    code = "import os\ndef f(x):\n    if x == 0:\n        os._exit(0)\n    return x\n"
    r = run_program(code, "f", [[0], [5]], limits=FAST)
    assert r.calls[0].status == "crash"
    assert r.calls[1].status == "returned" and r.calls[1].value == 5
    assert r.children == 2


def test_killing_its_parent_or_signalling_the_evaluator_cannot_touch_the_evaluator():
    code = ("import os, signal\n"
            "def f(x, evaluator):\n"
            "    if x == 0:\n"
            "        os.kill(os.getppid(), signal.SIGKILL)\n"
            "    try:\n"
            "        os.kill(evaluator, 0)\n"
            "        return 'evaluator reachable'\n"
            "    except OSError as exc:\n"
            "        return type(exc).__name__\n")
    r = run_program(code, "f", [[0, os.getpid()], [1, os.getpid()]], limits=FAST)
    # its parent is a throwaway supervisor (or, in a PID namespace, nobody): the kill costs at most this call
    assert r.calls[0].status in ("returned", "crash")
    assert r.calls[1].status == "returned" and r.calls[1].value in ("ProcessLookupError", "PermissionError")
    r2 = one("import os\ndef f():\n    return os.getppid()\n")
    assert r2.calls[0].value != os.getpid()


def test_signal_tampering_cannot_stop_the_deadline():
    code = ("import signal, time\n"
            "def f():\n"
            "    for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP):\n"
            "        signal.signal(s, signal.SIG_IGN)\n"
            "    time.sleep(30)\n")
    t0 = time.monotonic()
    r = one(code)
    assert r.calls[0].status == "timeout"
    assert time.monotonic() - t0 < 5


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("ALGODISTILL_TEST_SECRET", "hunter2")
    code = ("import os\n"
            "def f():\n"
            "    found = [v for v in os.environ.values() if 'hunter2' in v]\n"
            "    try:\n"
            "        parent = open('/proc/%d/status' % os.getppid()).read()\n"
            "        grand = [l for l in parent.splitlines() if l.startswith('PPid')][0].split()[1]\n"
            "        found.append(open('/proc/%s/environ' % grand, 'rb').read().decode('latin1'))\n"
            "    except Exception:\n"
            "        pass\n"
            f"    return [x for x in found if 'hunter2' in x] + [open('/proc/{os.getpid()}/environ', 'rb').read().decode('latin1')[:0]]\n")
    r = one(code)
    assert r.calls[0].status in ("returned", "exception")
    assert "hunter2" not in repr(r.calls[0].value)


def test_cannot_write_outside_its_temp_dir(tmp_path):
    target = tmp_path / "pwned.txt"
    shared_tmp = f"/tmp/algodistill-pwned-{os.getpid()}"
    code = ("def f(paths):\n"
            "    done = []\n"
            "    for p in paths:\n"
            "        try:\n"
            "            open(p, 'w').write('x')\n"
            "            done.append(p)\n"
            "        except OSError:\n"
            "            pass\n"
            "    open('inside.txt', 'w').write('fine')\n"
            "    return done\n")
    r = one(code, [[str(target), shared_tmp]])
    assert r.calls[0].status == "returned"
    assert not target.exists()
    assert not os.path.exists(shared_tmp)


def test_no_network_even_to_the_hosts_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(3)

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass
    t = threading.Thread(target=accept)
    t.start()
    code = ("import socket\n"
            "def f(port):\n"
            "    try:\n"
            "        socket.create_connection(('127.0.0.1', port), timeout=1).close()\n"
            "        return 'connected'\n"
            "    except OSError as exc:\n"
            "        return 'blocked'\n")
    r = one(code, [port])
    t.join()
    server.close()
    assert r.calls[0].value == "blocked"
    assert accepted == []


def test_printing_forged_results_does_not_count():
    code = ("import os, sys\n"
            "def f():\n"
            "    print('{\"i\": 0, \"status\": \"returned\", \"value\": \"42\"}')\n"
            "    sys.__stdout__.write('PASS 5/5\\n')\n"
            "    os.write(1, b'{\"event\": \"done\"}\\n')\n"
            "    return 0\n")
    r = one(code)
    assert r.calls[0].status == "returned" and r.calls[0].value == 0


def test_object_with_eq_always_true_is_unserializable():
    code = ("class Liar:\n"
            "    def __eq__(self, other):\n"
            "        return True\n"
            "def f():\n"
            "    return Liar()\n")
    r = one(code)
    assert r.calls[0].status == "unserializable"


def test_unserializable_return_value():
    r = one("def f():\n    return {1, 2, 3}\n")
    assert r.calls[0].status == "unserializable" and "set" in r.calls[0].error


def test_nan_is_unserializable():
    r = one("def f():\n    return float('nan')\n")
    assert r.calls[0].status == "unserializable"


def test_one_hostile_program_does_not_stall_a_batch():
    good = ("def f(x):\n    return x + 1\n", "f", [[i] for i in range(5)])
    hung = ("def f(x):\n    while True:\n        pass\n", "f", [[i] for i in range(5)])
    t0 = time.monotonic()
    results = run_many([good] * 6 + [hung] + [good] * 6, limits=Limits(timeout_s=0.5))
    assert time.monotonic() - t0 < 15
    for k, r in enumerate(results):
        if k == 6:
            assert {c.status for c in r.calls} == {"timeout"}
        else:
            assert [c.value for c in r.calls] == [1, 2, 3, 4, 5]


def test_load_errors_and_missing_function_are_reported():
    assert one("import numpy_does_not_exist\ndef f():\n    return 1\n").load_error.endswith(
        "No module named 'numpy_does_not_exist'")
    assert one("g = 1\n").missing_function
    assert one("f = 3\n").missing_function


@pytest.mark.skipif(os.geteuid() != 0, reason="uid drop only applies when running as root")
def test_runs_as_unprivileged_uid_when_root():
    r = one("import os\ndef f():\n    return os.getuid()\n")
    assert r.calls[0].value != 0


def test_without_namespaces_results_and_deadlines_still_hold():
    # the fallback for containers that forbid namespaces: limits, deadlines and the grandchild remain
    code = "def f(x):\n    while x == 1:\n        pass\n    return x * 3\n"
    r = run_program(code, "f", [[2], [1], [4]], limits=FAST, isolate=False)
    assert [c.status for c in r.calls] == ["returned", "timeout", "returned"]
    assert [r.calls[0].value, r.calls[2].value] == [6, 12]
    assert not {"network", "pid", "mount"} & set(r.isolation)


# ------------------------------------------------------------------------------------------ file system
# Isolation modes: "all" (this machine's full set: namespaces + private root + Landlock), "landlock" (what a
# host without namespaces gets) and "namespaces" (a kernel without Landlock). Each attack must fail in every
# one; the unconfined run shows the attack is real.

def _landlock_available() -> bool:
    return "landlock" in run_program("def f():\n    return 1\n", "f", [[]], isolate="landlock").isolation


def _namespaces_available() -> bool:
    return "root" in run_program("def f():\n    return 1\n", "f", [[]], isolate="namespaces").isolation


MODES = [pytest.param(True, id="all"),
         pytest.param("landlock", id="landlock-only",
                      marks=pytest.mark.skipif(not _landlock_available(), reason="no Landlock in this kernel")),
         pytest.param("namespaces", id="namespaces-only",
                      marks=pytest.mark.skipif(not _namespaces_available(), reason="no namespaces on this host"))]

WRITER = ("import os\n"
          "def f(paths):\n"
          "    done = []\n"
          "    for p in paths:\n"
          "        try:\n"
          "            with open(p, 'w') as fh:\n"
          "                fh.write('x')\n"
          "            os.chmod(p, 0o4755)\n"
          "            done.append(p)\n"
          "        except OSError:\n"
          "            pass\n"
          "    return done\n")


@pytest.fixture
def world_writable_dir():
    path = tempfile.mkdtemp(prefix="algodistill-ww-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None)
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("isolate", MODES)
def test_world_writable_host_paths_stay_untouched(isolate, world_writable_dir):
    name = f"algodistill-pwned-{os.getpid()}"
    targets = [os.path.join(d, name) for d in ("/run/lock", "/var/tmp", "/dev/shm", "/tmp", world_writable_dir)
               if os.path.isdir(d)]
    try:
        r = run_program(WRITER, "f", [[targets]], limits=FAST, isolate=isolate)
        assert r.calls[0].status == "returned"
        assert [t for t in targets if os.path.exists(t)] == []
    finally:
        for t in targets:
            if os.path.exists(t):
                os.remove(t)


def test_the_same_writes_succeed_unconfined(world_writable_dir):
    # the attack above is real: without isolation the program does write (and set a setuid bit) on the host
    target = os.path.join(world_writable_dir, "pwned")
    r = run_program(WRITER, "f", [[[target]]], limits=FAST, isolate=False)
    assert r.calls[0].value == [target] and os.stat(target).st_mode & 0o4000


def test_its_temp_dir_is_writable_but_capped_in_total():
    code = ("def f():\n"
            "    written = 0\n"
            "    try:\n"
            "        for i in range(1000):\n"
            "            with open('file%d' % i, 'wb') as fh:\n"
            "                fh.write(b'x' * (1 << 20))\n"
            "            written += 1\n"
            "    except OSError:\n"
            "        pass\n"
            "    return written\n")
    r = one(code, limits=Limits(timeout_s=10, cpu_s=10))
    if "tmp-cap" not in r.isolation:
        pytest.skip("no private root on this host (no namespaces): its temp dir is not writable at all")
    assert r.calls[0].status == "returned"
    assert 1 <= r.calls[0].value <= Limits().tmp_mb


@pytest.fixture(scope="module")
def world_readable_checkout():
    """A copy of the package in a world-readable place, as a non-root user's clone or a Space has it."""
    base = tempfile.mkdtemp(prefix="algodistill-checkout-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None)
    os.chmod(base, 0o755)
    shutil.copytree(Path(__file__).resolve().parent.parent / "algodistill", os.path.join(base, "algodistill"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(base):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _code(instance, checkout: str) -> str:
    """The attack: put the checkout on sys.path, build the same instance, run its reference solution."""
    return (f"import sys\n"
            f"sys.path.insert(0, {checkout!r})\n"
            f"def {instance.entry_point}(*args):\n"
            f"    from algodistill.problems import make_instance\n"
            f"    solution = {{}}\n"
            f"    exec(make_instance({instance.problem!r}, {instance.difficulty}, {instance.seed}, "
            f"{instance.index}).reference, solution)\n"
            f"    return solution[{instance.entry_point!r}](*args)\n")


def test_the_grader_attack_is_real_when_unconfined(world_readable_checkout):
    instance = make_instance("rpn", 5, 999, 0)
    r = run_program(_code(instance, world_readable_checkout), instance.entry_point, [t.args for t in instance.tests],
                    limits=Limits(timeout_s=10), isolate=False)
    assert [same(c.value, t.expected) for c, t in zip(r.calls, instance.tests)] == [True] * len(instance.tests)


def test_the_verifier_fails_the_grader_attack(world_readable_checkout):
    instance = make_instance("rpn", 5, 999, 0)
    verdict = verify_many([(instance, fenced(_code(instance, world_readable_checkout)))],
                          limits=Limits(timeout_s=10))[0]
    assert verdict.passed == 0 and verdict.status == "exception"


@pytest.mark.parametrize("isolate", MODES)
def test_code_under_test_cannot_read_or_import_the_checkout(isolate, world_readable_checkout):
    instance = make_instance("two_sum", 3, 999, 0)
    r = run_program(_code(instance, world_readable_checkout), instance.entry_point, [t.args for t in instance.tests],
                    limits=Limits(timeout_s=10), isolate=isolate)
    assert r.load_error is None
    assert [c.status for c in r.calls] == ["exception"] * len(instance.tests)
    assert all("algodistill" in c.error for c in r.calls)  # ModuleNotFoundError / PermissionError, per call


@pytest.mark.parametrize("isolate", MODES)
def test_only_the_standard_library_is_visible(isolate):
    here = str(Path(__file__).resolve().parent.parent)
    code = ("import os, sys\n"
            "def f(paths):\n"
            "    seen = []\n"
            "    for p in paths:\n"
            "        try:\n"
            "            if os.path.isdir(p):\n"
            "                os.listdir(p)\n"
            "            else:\n"
            "                open(p, 'rb').read(1)\n"
            "            seen.append(p)\n"
            "        except OSError:\n"
            "            pass\n"
            "    import json, collections, decimal, fractions, heapq, re\n"  # the stdlib still works
            "    return seen\n")
    private = [here, os.path.join(here, "algodistill", "problems", "rpn.py"), sys.prefix, os.path.expanduser("~"),
               "/etc/passwd", f"/proc/{os.getpid()}/environ"] + [p for p in sys.path if "-packages" in p]
    r = run_program(code, "f", [[private]], limits=Limits(timeout_s=10), isolate=isolate)
    assert r.calls[0].status == "returned", r.calls[0].error
    assert r.calls[0].value == []


# ------------------------------------------------------------------------------------------ the result channel

def test_a_deeply_nested_value_fails_that_test_alone():
    code = ("import sys\n"
            "sys.setrecursionlimit(100000)\n"
            "def f(x):\n"
            "    if x == 0:\n"
            "        value = []\n"
            "        for _ in range(2900):\n"
            "            value = [value]\n"
            "        return value\n"
            "    return x\n")
    r = run_program(code, "f", [[0], [1]], limits=FAST)
    assert r.calls[0].status == "unserializable" and "nested" in r.calls[0].error
    assert r.calls[1].status == "returned" and r.calls[1].value == 1


FORGERIES = {
    "deep value": b'{"i": 0, "status": "returned", "value": "' + b"[" * 5000 + b"]" * 5000 + b'"}\n',
    "deep record": b"[" * 100000 + b"]" * 100000 + b"\n",
    "not json": b"\xff\xfe garbage\n",
    "wrong types": b'{"i": 0, "status": "returned", "value": 7, "time": "soon", "output": [1]}\n',
    "no line end": b"x" * 3_000_000,
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=list(FORGERIES))
def test_anything_forged_on_the_result_channel_concerns_one_call(forgery):
    code = ("import os, sys\n"
            "def f(x):\n"
            "    if x == 0:\n"
            f"        data = {forgery!r}\n"
            "        fd = sys.modules['__main__'].out\n"
            "        while data:\n"
            "            data = data[os.write(fd, data):]\n"
            "    return x + 1\n")
    r = run_program(code, "f", [[0], [1]], limits=FAST)
    assert r.calls[0].status in ("crash", "unserializable")
    assert r.calls[0].value is None and r.calls[0].error
    assert r.calls[1].status == "returned" and r.calls[1].value == 2


def test_a_huge_value_is_refused_with_a_message():
    r = one("def f():\n    return 'x' * 3_000_000\n")
    assert r.calls[0].status == "unserializable" and "too large" in r.calls[0].error


def test_isolation_report_says_what_is_missing():
    assert isolation_report(["network", "pid", "mount", "root", "uid", "landlock"])["level"] == "full"
    weak = isolation_report(["uid"])
    assert weak["level"] == "none" and "checkout" in weak["warning"]
    partial = isolation_report(["uid", "landlock", "landlock-net", "landlock-scope"])
    assert partial["level"] == "partial" and "UDP" in partial["warning"]


def test_the_app_warns_loudly_when_isolation_is_not_full(monkeypatch):
    from algodistill import sandbox
    from algodistill.ui import sandbox_warning
    assert sandbox_warning() is None or isolation_report()["level"] != "full"
    monkeypatch.setattr(sandbox, "isolation", lambda: ["uid"])
    banner = sandbox_warning()
    assert banner.startswith("### ⚠ Sandbox isolation: none") and "checkout" in banner


SURVIVOR = ("import os, time\n"
            "def f(marker):\n"
            "    os.setsid()\n"  # out of the process group the parent kills
            "    os._exit = lambda code=0: time.sleep(300)\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        os.execv('/usr/bin/sleep', ['sleep', marker]) if os.path.exists('/usr/bin/sleep') else time.sleep(300)\n"
            "    return 1\n")


@pytest.mark.parametrize("isolate", MODES)
def test_nothing_it_starts_outlives_the_evaluation(isolate):
    marker = "123457.25"
    r = run_program(SURVIVOR, "f", [[marker]], limits=FAST, isolate=isolate)
    assert r.calls[0].status in ("returned", "crash", "timeout")
    deadline = time.monotonic() + 3
    while (_marker_processes(marker) or _sandbox_uid_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marker_processes(marker) == [] and _sandbox_uid_processes() == []


def _sandbox_uid_processes() -> list[int]:
    from algodistill.sandbox import UID_BASE
    if os.geteuid() != 0:
        return []
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if os.stat(f"/proc/{pid}").st_uid >= UID_BASE and state != "Z":  # a zombie runs nothing
                    found.append(int(pid))
            except (OSError, IndexError):
                pass
    return found


def test_sysv_shared_memory_does_not_outlive_the_program():
    code = ("import ctypes\n"
            "def f():\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    return libc.shmget(0x7e57, 1 << 20, 0o1666)\n")  # IPC_CREAT | 0666
    before = open("/proc/sysvipc/shm").read() if os.path.exists("/proc/sysvipc/shm") else ""
    r = one(code)
    assert r.calls[0].status == "returned"
    after = open("/proc/sysvipc/shm").read() if os.path.exists("/proc/sysvipc/shm") else ""
    assert after == before
