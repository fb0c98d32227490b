"""The problem-type x difficulty grid: scoring completions, storing samples, summarizing results.

Whatever produces the completions (a model, an external file, the reference solutions), scoring goes
through ``verify_many`` and every sample is stored in runs.db as soon as its verdict exists, so an
interrupted evaluation keeps what it finished. ``summarize`` computes accuracy (all tests pass), partial
credit (mean fraction of tests passed), per type and per difficulty, with 95% Wilson intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .problems import EVAL_SEED, PROBLEM_TYPES, REFERENCE_DIFFICULTIES, Instance, grid, make_instance
from .sandbox import Limits
from .store import Store
from .verify import Verdict, fenced, verify_many


@dataclass
class EvalSettings:
    problems: list[str] = field(default_factory=lambda: list(PROBLEM_TYPES))
    difficulties: list[int] = field(default_factory=lambda: list(REFERENCE_DIFFICULTIES))
    seed: int = EVAL_SEED
    per_cell: int = 1
    timeout_s: float = Limits.timeout_s

    def instances(self) -> list[Instance]:
        return grid(self.problems, self.difficulties, self.seed, self.per_cell)

    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s)


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sensible at 0/5 and 5/5, unlike the normal one)."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _group(samples: list[dict]) -> dict:
    n = len(samples)
    solved = sum(s["status"] == "passed" for s in samples)
    partial = sum(s["passed"] / s["total"] for s in samples if s["total"]) / n if n else 0.0
    low, high = wilson(solved, n)
    return {"n": n, "solved": solved, "accuracy": solved / n if n else 0.0, "accuracy_ci": [low, high],
            "partial_credit": partial}


def summarize(samples: Iterable[dict]) -> dict:
    samples = list(samples)
    out = _group(samples)
    out["per_problem"] = {p: _group([s for s in samples if s["problem"] == p])
                          for p in dict.fromkeys(s["problem"] for s in samples)}
    out["per_difficulty"] = {str(d): _group([s for s in samples if s["difficulty"] == d])
                             for d in sorted({s["difficulty"] for s in samples})}
    failures: dict[str, int] = {}
    for s in samples:
        if s["status"] != "passed":
            failures[s["status"]] = failures.get(s["status"], 0) + 1
    out["failures"] = failures
    return out


def sample_row(instance: Instance, completion: str, verdict: Verdict, **extra) -> dict:
    return {"problem": instance.problem, "difficulty": instance.difficulty, "seed": instance.seed,
            "idx": instance.index, "prompt": instance.prompt, "completion": completion, "code": verdict.code,
            "status": verdict.status, "passed": verdict.passed, "total": verdict.total, "score": verdict.score,
            "tests": [asdict(t) for t in verdict.tests], "notes": verdict.notes, "error": verdict.error, **extra}


def score_and_store(store: Store, run_id: int, items: list[tuple[Instance, str]], limits: Limits,
                    chunk: int = 64, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Verify (instance, completion) pairs in parallel chunks, storing each sample as it is judged."""
    rows = []
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        for (instance, completion), verdict in zip(part, verify_many(part, limits=limits)):
            row = sample_row(instance, completion, verdict)
            store.add_sample(run_id, row)
            rows.append(row)
        if progress:
            progress(len(rows), len(items))
    return rows


def run_scoring(store: Store, items: list[tuple[Instance, str]], *, name: str, model: str,
                settings: dict, limits: Limits, progress: Callable[[int, int], None] | None = None) -> dict:
    """An evaluation run over given completions: create it, score and store, summarize, finish it."""
    run_id = store.create_run("eval", settings, name=name, model=model)
    store.mark_started(run_id)
    try:
        rows = score_and_store(store, run_id, items, limits, progress=progress)
    except BaseException as exc:
        store.finish_run(run_id, "failed" if isinstance(exc, Exception) else "stopped", error=repr(exc))
        raise
    result = summarize(rows)
    store.finish_run(run_id, "completed", summary=result)
    return {"run": run_id, "summary": result, "samples": rows}


def reference_items(settings: EvalSettings) -> list[tuple[Instance, str]]:
    return [(inst, fenced(inst.reference)) for inst in settings.instances()]


def load_completions(path: str | Path) -> tuple[list[tuple[Instance, str]], list[str]]:
    """Completions JSONL ``{"problem", "difficulty", "seed", "index", "completion"}``: (items, errors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"completions file not found: {path}")
    items, errors, seen = [], [], set()
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                missing = [k for k in ("problem", "difficulty", "completion") if k not in record]
                if missing:
                    raise ValueError(f"missing field(s): {', '.join(missing)}")
                if not isinstance(record["completion"], str):
                    raise ValueError("'completion' must be a string")
                instance = make_instance(record["problem"], record["difficulty"],
                                         record.get("seed", EVAL_SEED), record.get("index", 0))
            except (ValueError, TypeError) as exc:
                errors.append(f"line {number}: {exc}")
                continue
            if instance.key in seen:
                errors.append(f"line {number}: duplicate of an earlier line for {instance.key}; ignored")
                continue
            seen.add(instance.key)
            items.append((instance, record["completion"]))
    return items, errors
