"""Verification at scale: the reference solutions of many grid instances (every problem type and difficulty, many
seeds and indices) verified through the sandbox by the evaluation's own parallel runner (``verify_many``: two
sandboxed children per core), in chunks. Every verdict must pass. Prints one JSON object: samples/s, tests/s, wall
time, and the CPU utilisation reached, two ways: this process and its sandboxed children (``os.times``, of all
cores) and the whole machine (``/proc/stat``, which counts whatever else runs on it too).

    python bench/verify_scale.py                    # 10,000 samples (a few minutes on 2 idle cores)
    python bench/verify_scale.py --samples 500      # a quick check
    [--chunk 1000]    samples handed to verify_many at once (its pool drains at each chunk's end)
    [--workers N]     sandboxed children at once (default: twice the cores, verify_many's own choice)

Sample k is the instance (type, difficulty) = cell k mod 110 of the 11 x 10 grid, and seed 1000 + r // 4,
index r mod 4 with r = k // 110 its round: 10,000 samples are 91 rounds over 23 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.problems import DIFFICULTIES, PROBLEM_TYPES, make_instance  # noqa: E402
from algodistill.sandbox import MAX_SLOTS, isolation_report  # noqa: E402
from algodistill.verify import fenced, verify_many  # noqa: E402


def instances(n: int) -> list:
    cells = [(p, d) for p in PROBLEM_TYPES for d in DIFFICULTIES]
    out = []
    for k in range(n):
        problem, difficulty = cells[k % len(cells)]
        rounds = k // len(cells)
        out.append(make_instance(problem, difficulty, 1000 + rounds // 4, rounds % 4))
    return out


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat's first line; None without /proc."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    began = time.perf_counter()
    items = [(i, fenced(i.reference)) for i in instances(args.samples)]
    made_s = time.perf_counter() - began
    verify_many(items[:8], workers=args.workers)  # warm up: interpreter probe, page cache
    cores = os.cpu_count() or 1
    times0, ticks0, began = os.times(), machine_ticks(), time.perf_counter()
    verdicts = []
    for start in range(0, len(items), args.chunk):
        verdicts += verify_many(items[start:start + args.chunk], workers=args.workers)
        print(f"{len(verdicts)}/{len(items)} verified, {time.perf_counter() - began:.0f} s", file=sys.stderr,
              flush=True)
    wall = time.perf_counter() - began
    times1, ticks1 = os.times(), machine_ticks()
    cpu_s = sum(times1[:4]) - sum(times0[:4])  # user + system, of this process and its waited-for children
    tests = sum(v.total for v in verdicts)
    failed = [(i.problem, i.difficulty, i.seed, i.index, v.status) for (i, _), v in zip(items, verdicts)
              if v.status != "passed"]
    machine = None
    if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
        machine = round((ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1]), 3)
    print(json.dumps({
        "bench": "verify_scale", "cores": cores, "isolation": isolation_report()["level"],
        "samples": len(items), "tests": tests, "passed": len(verdicts) - len(failed), "failed": failed[:20],
        "seeds": len({i.seed for i, _ in items}), "chunk": args.chunk,
        "workers": args.workers or min(MAX_SLOTS, 2 * cores),
        "wall_s": round(wall, 2), "samples_per_s": round(len(items) / wall, 1), "tests_per_s": round(tests / wall, 1),
        "cpu_s": round(cpu_s, 1), "cpu_utilisation": round(cpu_s / (wall * cores), 3),
        "machine_cpu_utilisation": machine, "make_instances_s": round(made_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
