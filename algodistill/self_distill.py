"""Self-distil a trace set: the student's own verified answers where it has one, the teacher's elsewhere.

    python -m algodistill traces self-distill --model qwen2.5-coder-0.5b \\
        --traces assets/traces/varied-no-terse.jsonl --out varied-self.jsonl [--samples 1] [--temperature 0]

Why: trained on hand-written traces (a plan, then compact code without comments), Qwen2.5-Coder-0.5B learned the
grid and lost 50 HumanEval problems: its answers took the traces' manner (a plan of its own, then terse code)
on every problem, where the base model writes step-by-step commented code. Fine-tuning on answers far from the
model's own distribution is a known cause of such forgetting (Yang et al., 2024, "Self-Distillation Bridges
Distribution Gap in Language Model Fine-Tuning"); rejection-sampling fine-tuning on the model's own correct
answers (RFT, STaR) keeps its manner. This asks the student model each trace's own prompt (the same wording, so
the set's held-out protocol is unchanged), judges each answer against the instance's hidden tests in the sandbox, and
writes the set again with the student's first passing answer as the response; where no answer passed, the
teacher's trace stays, so the types the student cannot solve are still taught.

Each line says which it is: ``teacher`` names the student model for its own answers, and ``provenance`` says
how it was drawn and that it passed every test. The report (stdout, JSON with --json) counts both per problem
type. The written set is verified like any other (``python -m algodistill traces verify OUT``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable

from .traces import verify_file
from .verify import verify_many


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
                          provenance=f"self-distillation (python -m algodistill traces self-distill): sample "
                                     f"{k + 1} from {model}, {how}, asked the trace's own prompt; it passed all "
                                     f"{tests} hidden tests in the sandbox (replacing: {c.record.get('teacher')})")
            own[record["problem"]] += 1
        else:
            theirs[record["problem"]] += 1
        records.append(record)
    report = {"traces": len(kept), "rejected": len(checks) - len(kept), "own": sum(own.values()),
              "teacher": sum(theirs.values()), "samples": len(jobs),
              "per_type": {p: {"own": own[p], "teacher": theirs[p]} for p in dict.fromkeys(
                  c.record["problem"] for _, c in kept)}}
    return records, report


def self_distill(model: str, traces: str | Path, out: str | Path, *, samples: int = 1, temperature: float = 0.0,
                 max_new_tokens: int = 1024, batch_size: int = 0, device: str = "auto",
                 log: Callable[[str], None] = print) -> dict:
    """Ask ``model`` every verified trace's own prompt (``samples`` answers each), judge the answers, and write
    ``out``: the set with the student's first passing answer where it has one (``distil``). Returns the report.
    ValueError for impossible settings (nothing is written)."""
    if samples < 1 or (samples > 1 and temperature <= 0):
        raise ValueError("samples must be >= 1, and more than 1 needs a temperature > 0")
    if Path(out).resolve() == Path(traces).resolve():
        raise ValueError("the output must not be the trace file itself: the teacher's set is kept as it is")
    checks = verify_file(traces)
    kept = [(n, c) for n, c in enumerate(checks) if c.kept]
    if not kept:
        raise ValueError(f"{traces} holds no verified trace")
    from .generation import Generator
    generator = Generator(model, device=device, log=log)
    rows = [(n, k) for n, _ in kept for k in range(samples)]
    prompts = [(checks[n].record.get("prompt") or checks[n].instance.prompt).strip() for n, _ in rows]
    sampling = {"temperature": temperature, "seeds": [1000 * n + k for n, k in rows]} if temperature > 0 else {}
    texts: dict[int, str] = {}
    for batch in generator.generate(prompts, max_new_tokens, batch_size, **sampling):
        for g in batch:
            texts[g.index] = g.text
        log(f"{len(texts)}/{len(rows)} answers generated")
    answers: dict[int, list[str]] = {}
    for i, (n, _) in enumerate(rows):
        answers.setdefault(n, []).append(texts.get(i, ""))
    how = "greedy" if temperature <= 0 else f"temperature {temperature:g}"
    records, report = distil(checks, answers, model, how)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return report | {"out": str(out)}


def report_lines(report: dict) -> list[str]:
    """The report in words: how many traces hold the student's own answer, per problem type."""
    lines = [f"{report['own']} of {report['traces']} traces now hold the student's own verified answer, "
             f"{report['teacher']} the teacher's; written to {report['out']}"]
    lines += [f"  {problem:18s} own {counts['own']:3d}  teacher {counts['teacher']:3d}"
              for problem, counts in report["per_type"].items()]
    return lines
