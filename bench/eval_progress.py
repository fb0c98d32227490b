"""What an evaluation's status says while it runs, timed on a real model: seconds from the start to the first line
that moves (answers in flight, tokens written), to the first verdict, and to the end; and the time left the status
gave along the way against the true time left (ratio estimate / truth, at a tenth, a quarter, half and three
quarters of the answers generated). Prints one JSON object.

    python bench/eval_progress.py                                  # the offline SmolLM2-135M, the whole 55-grid
    [--model SPEC] [--problems TYPE ...] [--difficulties D ...] [--max-new-tokens 1024] [--device cpu]

The start is the call of ``evaluate_model``, as a job process makes it (model loading included; the process's own
start and imports are not: about 5-10 s more on 2 cores). Name the CPU next to the figures (``lscpu``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.evaluate import EvalSettings  # noqa: E402
from algodistill.model_eval import evaluate_model  # noqa: E402
from algodistill.problems import PROBLEM_TYPES  # noqa: E402
from algodistill.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--problems", nargs="+", default=list(PROBLEM_TYPES))
    parser.add_argument("--difficulties", nargs="+", type=int, default=[1, 3, 5, 7, 10])
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "runs.db")
        settings = EvalSettings(model=args.model, problems=args.problems, difficulties=args.difficulties,
                                max_new_tokens=args.max_new_tokens, device=args.device)
        run = store.create_run("eval", vars(settings), model=args.model)
        lines, update, began = [], store.update_run, time.time()

        def spy(rid, **fields):
            if fields.get("message"):
                lines.append((time.time() - began, fields["message"], fields.get("eta"), fields.get("progress")))
            update(rid, **fields)

        store.update_run = spy
        summary = evaluate_model(store, run, settings, log=lambda m: print(m, file=sys.stderr))[run]
        total = time.time() - began
        n = summary["n"]
        moving = next((t for t, m, _, _ in lines if "tokens written" in m), None)
        verdict = next((t for t, _, _, p in lines if p and p > 0), None)

        def generated(message: str) -> int:
            head = message.split()[0]
            return int(head.split("/")[0]) if "/" in head and head.split("/")[0].isdigit() else -1

        ends = {}  # the time the last answer was generated: the ETA counts to it
        last_generated = max((t for t, m, _, _ in lines if generated(m) == n), default=total)
        for share in (0.1, 0.25, 0.5, 0.75):
            at = next(((t, eta) for t, m, eta, _ in lines if eta and generated(m) >= share * n), None)
            if at and last_generated > at[0]:
                ends[f"{share:.0%}"] = {"at_s": round(at[0], 1), "eta_s": round(at[1], 1),
                                        "true_left_s": round(last_generated - at[0], 1),
                                        "ratio": round(at[1] / (last_generated - at[0]), 2)}
        print(json.dumps({
            "model": args.model, "answers": n, "solved": summary["solved"], "max_new_tokens": args.max_new_tokens,
            "machine": {"platform": platform.platform(), "cpu": platform.processor() or platform.machine()},
            "first_moving_line_s": round(moving, 1) if moving is not None else None,
            "first_verdict_s": round(verdict, 1) if verdict is not None else None,
            "last_answer_s": round(last_generated, 1), "total_s": round(total, 1),
            "eta_vs_truth": ends,
        }, indent=2))


if __name__ == "__main__":
    main()
