"""Sharded evaluation speed-up: the same ``eval --model`` command as one process and as N processes of an
``accelerate launch`` (distributed.py: each process generates and verifies its shard, the main one stores them all
in one run), wall time of each from the command's start to its exit (imports, model load, generation, sandboxed
verification, store), on a tiny random model built in a temporary folder. With ``--rounds R`` the two alternate R
times and the medians are compared, so that a load that changes meanwhile weighs on both. Every run must hold the
samples of the first (asserted). Prints one JSON object.

    python bench/eval_shards.py                     # 2 processes, the 55-instance grid, 64 new tokens
    [--processes N] [--rounds 1] [--max-new-tokens 64] [--problems TYPE ...] [--difficulties D ...] [--hidden 64]

On a machine without a GPU the processes run on CPU cores (``--multi_gpu`` is how ``accelerate launch`` starts
several processes there too, through torchrun, each joining with gloo; it gives each 1 thread, where the single
process uses all cores). A random model never stops early, so every answer runs to the cap: the figures compare
equal work.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from algodistill.models import tiny_model  # noqa: E402
from algodistill.store import Store  # noqa: E402


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds


def samples(db: Path) -> tuple[dict, str]:
    store = Store(db)
    (run,) = store.runs()
    return {(s["problem"], s["difficulty"], s["seed"], s["idx"], s["sample"]): (s["completion"], s["status"])
            for s in store.samples(run["id"])}, run["message"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="one process, then N, this many times")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--problems", nargs="+")
    parser.add_argument("--difficulties", nargs="+")
    parser.add_argument("--hidden", type=int, default=64, help="the tiny model's width (default %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp) / "model", hidden=args.hidden)
        flags = ["-m", "algodistill", "eval", "--model", model, "--max-new-tokens", str(args.max_new_tokens), "--json"]
        flags += ["--problems", *args.problems] if args.problems else []
        flags += ["--difficulties", *args.difficulties] if args.difficulties else []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                  str(args.processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", str(port)]
        ones, shards, found = [], [], []
        for r in range(args.rounds):
            ones.append(timed([sys.executable, *flags, "--db", str(Path(tmp) / f"one-{r}.db")]))
            shards.append(timed([*launch, *flags, "--db", str(Path(tmp) / f"several-{r}.db")]))
            print(f"round {r + 1}: 1 process {ones[-1]:.1f} s, {args.processes} processes {shards[-1]:.1f} s",
                  file=sys.stderr, flush=True)
            found += [samples(Path(tmp) / f"one-{r}.db"), samples(Path(tmp) / f"several-{r}.db")]
    assert all(each[0] == found[0][0] for each in found), "the runs' samples differ"
    one, several = statistics.median(ones), statistics.median(shards)
    print(json.dumps({
        "bench": "eval_shards", "cores": os.cpu_count(), "model": f"random tiny (hidden {args.hidden})",
        "samples": len(found[0][0]), "max_new_tokens": args.max_new_tokens, "processes": args.processes,
        "rounds": args.rounds, "one_process_s": [round(t, 1) for t in ones], "sharded_s": [round(t, 1) for t in shards],
        "speedup": round(one / several, 2), "identical_samples": True, "sharded_run_message": found[-1][1],
    }, indent=2))


if __name__ == "__main__":
    main()
