"""Self-distil a trace set: the student's own verified answers where it has one, the teacher's elsewhere.

    python scripts/self_distill.py --model qwen2.5-coder-0.5b --traces assets/traces/varied-no-terse.jsonl \\
        --out assets/traces/varied-self.jsonl [--samples 1] [--temperature 0]

Why: trained on hand-written traces (a plan, then compact code without comments), Qwen2.5-Coder-0.5B learned the
grid and lost 50 HumanEval problems: its answers took the traces' manner (a plan of its own, then terse code)
on every problem, where the base model writes step-by-step commented code. Fine-tuning on answers far from the
model's own distribution is what makes it forget (Yang et al., 2024, "Self-Distillation Bridges Distribution Gap
in Language Model Fine-Tuning"); rejection-sampling fine-tuning on the model's own correct answers (RFT, STaR)
keeps its manner. This script asks the student model each trace's own prompt (the same wording, so the set's
held-out protocol is unchanged), judges each answer against the instance's hidden tests in the sandbox, and
writes the set again with the student's first passing answer as the response; where no answer passed, the
teacher's trace stays, so the types the student cannot solve are still taught.

Each line says which it is: ``teacher`` names the student model for its own answers, and ``provenance`` says
how it was drawn and that it passed every test. The report (stdout, JSON with --json) counts both per problem
type. The written set is verified like any other (``python -m algodistill traces verify OUT``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from algodistill.traces import verify_file  # noqa: E402
from algodistill.verify import verify_many  # noqa: E402


def distil(checks: list, answers: dict[int, list[str]], model: str, how: str) -> tuple[list[dict], dict]:
    """(records, report): each kept trace's record with the student's first passing answer as its response (the
    teacher's record where none passed). ``answers`` maps a kept trace's position in ``checks`` to its samples."""
    kept = [(n, c) for n, c in enumerate(checks) if c.kept]
    jobs = [(n, k, c.instance, text) for n, c in kept for k, text in enumerate(answers.get(n, []))]
    verdicts = verify_many([(instance, text) for _, _, instance, text in jobs])
    passing: dict[int, tuple[int, str, int]] = {}
    for (n, k, _, text), verdict in zip(jobs, verdicts):
        if verdict.solved and n not in passing:
            passing[n] = (k, text, verdict.total)
    records, own, theirs = [], Counter(), Counter()
    for n, c in kept:
        record = dict(c.record)
        if n in passing:
            k, text, tests = passing[n]
            record.update(response=text.strip(), teacher=model, id=f"{record.get('id') or n}-self",
                          provenance=f"self-distillation (scripts/self_distill.py): sample {k + 1} from {model}, "
                                     f"{how}, asked the trace's own prompt; it passed all {tests} hidden tests in the "
                                     f"sandbox (replacing: {c.record.get('teacher')})")
            own[record["problem"]] += 1
        else:
            theirs[record["problem"]] += 1
        records.append(record)
    report = {"traces": len(kept), "rejected": len(checks) - len(kept), "own": sum(own.values()),
              "teacher": sum(theirs.values()), "samples": len(jobs),
              "per_type": {p: {"own": own[p], "teacher": theirs[p]} for p in dict.fromkeys(
                  c.record["problem"] for _, c in kept)}}
    return records, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the student: hub id, local dir, .gguf file or offline name")
    parser.add_argument("--traces", required=True, help="the trace set whose prompts are asked (JSONL)")
    parser.add_argument("--out", required=True, help="the self-distilled set to write (JSONL)")
    parser.add_argument("--samples", type=int, default=1, help="answers drawn per trace (default 1)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default); > 0 needs seeds")
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=0, help="prompts per batch (default 0: automatic)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.samples < 1 or (args.samples > 1 and args.temperature <= 0):
        parser.error("--samples must be >= 1, and more than 1 needs --temperature > 0")
    out = Path(args.out)
    if out.resolve() == Path(args.traces).resolve():
        parser.error("--out must not be the --traces file: the teacher's set is kept as it is")
    checks = verify_file(args.traces)
    kept = [(n, c) for n, c in enumerate(checks) if c.kept]
    if not kept:
        parser.error(f"{args.traces} holds no verified trace")
    from algodistill.generation import Generator
    generator = Generator(args.model, log=lambda line: print(line, file=sys.stderr))
    rows = [(n, k) for n, _ in kept for k in range(args.samples)]
    prompts = [(checks[n].record.get("prompt") or checks[n].instance.prompt).strip() for n, _ in rows]
    sampling = {}
    if args.temperature > 0:
        sampling = {"temperature": args.temperature, "seeds": [1000 * n + k for n, k in rows]}
    answers: dict[int, list[str]] = {}
    texts: dict[int, str] = {}
    done = 0
    for batch in generator.generate(prompts, args.max_new_tokens, args.batch_size, **sampling):
        for g in batch:
            texts[g.index] = g.text
        done += len(batch)
        print(f"{done}/{len(rows)} answers generated", file=sys.stderr)
    for i, (n, _) in enumerate(rows):
        answers.setdefault(n, []).append(texts.get(i, ""))
    how = "greedy" if args.temperature <= 0 else f"temperature {args.temperature:g}"
    records, report = distil(checks, answers, args.model, how)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    report["out"] = str(out)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['own']} of {report['traces']} traces now hold the student's own verified answer, "
              f"{report['teacher']} the teacher's; written to {out}")
        for problem, counts in report["per_type"].items():
            print(f"  {problem:18s} own {counts['own']:3d}  teacher {counts['teacher']:3d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
