"""Sandbox throughput: test executions per second, against a naive one-process-per-test runner.

Both runners execute the same programs (the reference solutions of the evaluation grid, repeated) and
the same tests. The naive runner starts one plain Python process per test, one at a time, with no
isolation (same interpreter and flags as the sandbox, so only the process design differs). Prints one JSON object.

    python bench/sandbox.py [--programs 220] [--naive-programs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.problems import grid  # noqa: E402
from algodistill.sandbox import isolation, isolation_report, run_many, sandbox_python  # noqa: E402
from algodistill.verify import same  # noqa: E402


def naive(programs) -> tuple[int, int, float]:
    executed = passed = 0
    t0 = time.perf_counter()
    for code, entry, tests in programs:
        for args, expected in tests:
            script = f"{code}\nimport json, sys\nsys.stdout.write(json.dumps({entry}(*json.loads(sys.argv[1]))))"
            r = subprocess.run([sandbox_python(), "-I", "-S", "-c", script, json.dumps(args)], capture_output=True, text=True,
                               timeout=10)
            executed += 1
            passed += r.returncode == 0 and same(json.loads(r.stdout), expected)
    return executed, passed, time.perf_counter() - t0


def sandboxed(programs) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    results = run_many([(code, entry, [a for a, _ in tests]) for code, entry, tests in programs])
    elapsed = time.perf_counter() - t0
    executed = sum(len(r.calls) for r in results)
    passed = sum(c.status == "returned" and same(c.value, e) for r, (_, _, tests) in zip(results, programs)
                 for c, (_, e) in zip(r.calls, tests))
    return executed, passed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=220)
    parser.add_argument("--naive-programs", type=int, default=40)
    args = parser.parse_args()
    cells = grid()
    programs = [(i.reference, i.entry_point, [(t.args, t.expected) for t in i.tests]) for i in cells]
    programs = (programs * (args.programs // len(programs) + 1))[:args.programs]
    sandboxed(programs[:10])  # warm up: interpreter probe, page cache
    s_exec, s_pass, s_time = sandboxed(programs)
    n_exec, n_pass, n_time = naive(programs[:args.naive_programs])
    s_rate, n_rate = s_exec / s_time, n_exec / n_time
    print(json.dumps({
        "benchmark": "sandbox", "cpus": os.cpu_count(), "isolation": isolation_report()["level"],
        "layers": isolation(), "sandbox_python": sandbox_python(),
        "sandboxed": {"tests": s_exec, "passed": s_pass, "seconds": round(s_time, 3),
                      "tests_per_s": round(s_rate, 1)},
        "naive_one_process_per_test": {"tests": n_exec, "passed": n_pass, "seconds": round(n_time, 3),
                                       "tests_per_s": round(n_rate, 1)},
        "speedup": round(s_rate / n_rate, 2),
        "targets": {"tests_per_s": 350, "speedup": 5},
    }, indent=2))


if __name__ == "__main__":
    main()
