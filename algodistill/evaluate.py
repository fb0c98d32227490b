"""The problem-type x difficulty grid: scoring completions, storing samples, summarizing results.

Whatever produces the completions (a model, an external file, the reference solutions), scoring goes
through ``verify_many`` and every sample is stored in runs.db as soon as its verdict exists, so an
interrupted evaluation keeps what it finished. ``summarize`` computes accuracy (all tests pass), partial
credit (mean fraction of tests passed), per type and per difficulty, with 95% Wilson intervals; when an
instance has several samples (key: problem, difficulty, seed, index, sample), also pass@k.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from .benchmarks import humaneval
from .models import DTYPES, usable_problems
from .problems import (EVAL_SEED, PROBLEM_TYPES, REFERENCE_DIFFICULTIES, Instance, choice_problem, grid,
                       make_instance)
from .problems.styles import ALL as ALL_STYLES, STYLES, choose as choose_styles, styled
from .sandbox import Limits, isolation_report
from .settings import bounded, number_problems, stored
from .store import Store
from .verify import MAX_COMPLETION_CHARS, Verdict, fenced, parse_json_line, verify_many


BENCHMARKS = ("grid", "humaneval")


@dataclass
class EvalSettings:
    # "grid": the problem-type x difficulty grid below; "humaneval": HumanEval's 164 problems (problems,
    # difficulties, seed and per_cell do not apply)
    benchmark: str = "grid"
    problems: list[str] = field(default_factory=lambda: list(PROBLEM_TYPES))
    difficulties: list[int] = bounded(lo=1, hi=10, each=True, default_factory=lambda: list(REFERENCE_DIFFICULTIES))
    seed: int = bounded(EVAL_SEED, 0, 2**32 - 1)
    per_cell: int = bounded(1, 1, 10_000, label="instances per cell")
    # how the prompts ask (problems/styles.py): "contract" (the grid's own prompt), "terse", "stub", "stdio", or
    # "all", which becomes one run per style (``per_style``), so a sample's key stays (problem, ..., sample)
    prompt_style: str = "contract"
    timeout_s: float = bounded(Limits.timeout_s, 0, 3600, above=True, label="timeout (seconds per test)")
    # what generates the completions (model evaluations only)
    model: str | None = None
    adapter: str | None = None
    # the training max length: long answers (arithmetic, ~640 tokens) fit
    max_new_tokens: int = bounded(1024, 1, 1 << 20, label="max new tokens")
    batch_size: int = bounded(0, 0, 65536, label="batch size (0: automatic)")  # 0: as few batches as memory allows
    # samples per instance (pass@k); temperature 0 is greedy, the default: one answer per instance. Sampling is
    # seeded per (instance, sample) from ``seed``, so a run (and a resumed one) draws the same answers again
    samples: int = bounded(1, 1, 1000, label="samples per instance")
    temperature: float = bounded(0.0, 0, 100, label="temperature")
    top_p: float = bounded(1.0, 0, 1, above=True, label="top-p")
    backend: str = "auto"        # "auto" (vLLM when installed and on a GPU), "hf" or "vllm"
    device: str = "auto"
    # "auto": bf16 on a GPU, and on a CPU that computes in bf16 natively (~2.7x faster there), else fp32; the
    # dtype used is stored with each run (``settings.dtype_used``)
    dtype: str = "auto"

    @classmethod
    def from_dict(cls, data: dict) -> "EvalSettings":
        return stored(cls, data)

    def check(self) -> None:
        """Refuse, in one message, what would only fail later: numbers (NaN, infinities, fractions, ranges),
        unknown problem types, and for a model evaluation a model spec that does not resolve or an adapter
        directory without adapter_config.json. Cheap: callers run it before a run row exists."""
        numbers = number_problems(self)
        problems = list(numbers)
        if self.benchmark not in BENCHMARKS:
            problems.append(f"unknown benchmark {self.benchmark!r}; choose from {', '.join(BENCHMARKS)}")
        elif wrong := choice_problem(self.problems, PROBLEM_TYPES if self.benchmark == "grid" else None):
            problems.append(wrong)
        if not self.difficulties:
            problems.append("choose at least one difficulty (1 to 10)")
        if self.prompt_style not in STYLES + (ALL_STYLES,):
            problems.append(f"unknown prompt style {self.prompt_style!r}; choose from {', '.join(STYLES)} or "
                            f"{ALL_STYLES}")
        elif self.benchmark == "humaneval" and self.prompt_style != "contract":
            problems.append("HumanEval has only its own prompts (prompt style contract)")
        if self.samples != 1 and self.temperature == 0 and not numbers:
            problems.append(f"{self.samples} samples per instance need a temperature > 0 (at 0, greedy decoding "
                            "gives the same answer every time)")
        if self.backend not in ("auto", "hf", "vllm"):
            problems.append("backend must be auto, hf or vllm")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}")
        problems += usable_problems(self.model, self.adapter, required=False)  # scored completions name no model
        if problems:
            raise ValueError("; ".join(problems))

    def instances(self) -> list[Instance]:
        if self.benchmark == "humaneval":
            return list(humaneval.instances())
        if self.prompt_style == ALL_STYLES:
            raise ValueError("prompt style 'all' is one run per style: use per_style()")
        return [styled(i, self.prompt_style) for i in grid(self.problems, self.difficulties, self.seed, self.per_cell)]

    def per_style(self) -> list["EvalSettings"]:
        """These settings once per style they name (one for a single style, every style for 'all')."""
        return [replace(self, prompt_style=style) for style in choose_styles(self.prompt_style)]

    def describe(self) -> str:
        """The grid in words, for model cards and reports."""
        if self.benchmark == "humaneval":
            return f"HumanEval (164 problems), at most {self.max_new_tokens} new tokens" + self.sampling()
        return (f"{len(self.problems)} problem type(s) x difficulties {', '.join(map(str, self.difficulties))}, "
                f"{self.per_cell} instance(s) per cell, seed {self.seed}, at most {self.max_new_tokens} new tokens"
                + self.sampling())

    def sampling(self) -> str:
        """How answers are drawn, in words ('' for greedy)."""
        if not self.temperature:
            return ""
        count = f"{self.samples} samples" if self.samples != 1 else "1 sample"
        return f", {count} per instance at temperature {self.temperature:g}, top-p {self.top_p:g}"

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
    out["cut_off"] = sum(bool(s.get("cut_off")) for s in samples)
    per_instance: dict[tuple, list[int]] = {}
    for s in samples:
        counts = per_instance.setdefault((s["problem"], s["difficulty"], s["seed"], s["idx"]), [0, 0])
        counts[0] += 1
        counts[1] += s["status"] == "passed"
    if per_instance:  # with one sample per instance, pass@1 is the accuracy (and its interval the same)
        out["pass_at_k"] = overall = pass_at_k(list(per_instance.values()))
        ks = tuple(int(m[5:]) for m in overall if m.startswith("pass@"))
        overall["per_problem"] = {p: pass_at_k([c for key, c in per_instance.items() if key[0] == p], ks)
                                  for p in out["per_problem"]}
    return out


PASS_AT = (1, 5, 10)


def pass_at_k(counts: list[tuple[int, int]] | list[list[int]], ks: tuple[int, ...] | None = None) -> dict:
    """Per instance (samples n, correct c): how many instances and samples each, and the unbiased pass@k
    estimate 1 - C(n-c, k) / C(n, k) (Chen et al. 2021) averaged over instances, for k in 1, 5, 10 and K (the
    fewest samples any instance has; ``ks`` overrides), each k that every instance has enough samples for
    (pass@1 is then the mean of c/n).

    ``ci["pass@k"]`` is a 95% interval over instances: the Wilson score interval with the summed per-instance
    estimates as successes and the instances as trials. Each estimate lies in [0, 1], so its variance is at
    most m(1 - m) for mean m, the binomial variance Wilson assumes: the interval is conservative, needs no
    random resampling, and unlike a percentile bootstrap it does not shrink to a point when all of a type's
    5 instances agree. With one sample per instance it is exactly the accuracy's interval."""
    fewest = min(n for n, _ in counts)
    out: dict = {"instances": len(counts),
                 "samples_per_instance": {"min": fewest, "max": max(n for n, _ in counts)}}
    intervals = {}
    for k in sorted(set(PASS_AT + (fewest,) if ks is None else ks)):
        if k <= fewest:
            total = sum(1.0 - math.comb(n - c, k) / math.comb(n, k) for n, c in counts)
            out[f"pass@{k}"] = total / len(counts)
            intervals[f"pass@{k}"] = list(wilson(total, len(counts)))
    out["ci"] = intervals
    return out


CUT_OFF_NOTE = "cut off by the max-new-tokens cap before the model finished: the answer may be incomplete"


def _capped(completion: str) -> str:
    """A completion too long to judge is kept only in part: one sample must not bloat runs.db."""
    if len(completion) <= MAX_COMPLETION_CHARS:
        return completion
    return completion[:MAX_COMPLETION_CHARS] + f"\n... [{len(completion) - MAX_COMPLETION_CHARS:,} more characters not kept]"


def sample_row(instance: Instance, completion: str, verdict: Verdict, sample: int = 0, **extra) -> dict:
    notes = verdict.notes + ([CUT_OFF_NOTE] if extra.get("cut_off") else [])
    return {"problem": instance.problem, "difficulty": instance.difficulty, "seed": instance.seed,
            "idx": instance.index, "sample": sample, "style": instance.style, "prompt": instance.prompt,
            "completion": _capped(completion),
            "code": verdict.code,
            "status": verdict.status, "passed": verdict.passed, "total": verdict.total, "score": verdict.score,
            "tests": [asdict(t) for t in verdict.tests], "notes": notes, "error": verdict.error, **extra}


def score_and_store(store: Store, run_id: int, items: list[tuple[Instance, str]], limits: Limits,
                    chunk: int = 64, progress: Callable[[int, int], None] | None = None,
                    extras: list[dict] | None = None) -> list[dict]:
    """Verify (instance, completion) pairs in parallel chunks, storing each sample as it is judged;
    ``extras[i]`` adds columns to item i's row (sample number, generation time and tokens)."""
    rows = []
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        for k, ((instance, completion), verdict) in enumerate(zip(part, verify_many(part, limits=limits))):
            row = sample_row(instance, completion, verdict, **(extras[start + k] if extras else {}))
            store.add_sample(run_id, row)
            rows.append(row)
        if progress:
            progress(len(rows), len(items))
    return rows


def record_isolation(store: Store, run_id: int) -> dict:
    """Keep with the run how isolated its programs were (the sandbox's own report, from this machine):
    a result from an unconfined sandbox is a result one may not trust, and that must stay visible."""
    report = isolation_report()
    store.update_run(run_id, settings=store.get_run(run_id)["settings"] | {"sandbox": report})
    return report


def run_scoring(store: Store, items: list[tuple[Instance, str]], *, name: str, model: str,
                settings: dict, limits: Limits, progress: Callable[[int, int], None] | None = None,
                extras: list[dict] | None = None) -> dict:
    """An evaluation run over given completions: create it, score and store, summarize, finish it."""
    run_id = store.create_run("eval", settings, name=name, model=model)
    store.mark_started(run_id)
    record_isolation(store, run_id)
    try:
        rows = score_and_store(store, run_id, items, limits, progress=progress, extras=extras)
    except BaseException as exc:
        store.finish_run(run_id, "failed" if isinstance(exc, Exception) else "stopped", error=repr(exc))
        raise
    result = summarize(rows)
    store.finish_run(run_id, "completed", summary=result)
    return {"run": run_id, "summary": result, "samples": rows}


def reference_items(settings: EvalSettings) -> list[tuple[Instance, str]]:
    return [(inst, fenced(inst.reference)) for inst in settings.instances()]


def load_completions(path: str | Path, benchmark: str = "grid",
                     style: str = "contract") -> tuple[list[tuple[Instance, str]], list[dict], list[dict]]:
    """Completions JSONL ``{"problem", "difficulty", "seed", "index", "sample", "completion"}`` (for HumanEval
    ``{"task_id": "HumanEval/N", "sample", "completion"}``): every line is one sample. Returns (items, extras,
    skipped): ``extras[i]`` is item i's ``{"sample": n}``; a line without
    ``sample`` gets its instance's next free number (0, 1, 2 ... in file order). ``skipped`` lists each line
    not scored as ``{"line", "reason"}``: malformed, or an explicit sample number an earlier line already has.
    A grid line may carry ``"style"`` (the prompt style it answers; ``style`` when absent): its instance is
    then that style's, and the same instance in two styles is two samples' worth of keys, not a repeat."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"completions file not found: {path}")
    lines, skipped, taken = [], [], {}  # taken: (instance key, sample) -> line number
    with path.open(encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM is not part of line 1
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = parse_json_line(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                required = ("task_id",) if benchmark == "humaneval" else ("problem", "difficulty")
                missing = [k for k in required + ("completion",) if k not in record]
                if missing:
                    raise ValueError(f"missing field(s): {', '.join(missing)}")
                if not isinstance(record["completion"], str):
                    raise ValueError("'completion' must be a string")
                sample = record.get("sample")
                if sample is not None and (type(sample) is not int or not 0 <= sample < 2**31):
                    raise ValueError(f"'sample' must be a whole number from 0 to 2**31-1, got {sample!r}")
                line_style = record.get("style", style)
                if line_style not in STYLES or (benchmark == "humaneval" and line_style != "contract"):
                    raise ValueError(f"unknown prompt style {line_style!r}; choose from "
                                     f"{', '.join(STYLES) if benchmark == 'grid' else 'contract'}")
                instance = (humaneval.instance(record["task_id"]) if benchmark == "humaneval" else
                            styled(make_instance(record["problem"], record["difficulty"], record.get("seed", EVAL_SEED),
                                                 record.get("index", 0)), line_style))
                if sample is not None and (_styled_key(instance), sample) in taken:
                    raise ValueError(f"sample {sample} of {instance.key} is already given by line "
                                     f"{taken[_styled_key(instance), sample]}")
            except (ValueError, TypeError) as exc:
                skipped.append({"line": number, "reason": str(exc)})
                continue
            if sample is not None:
                taken[_styled_key(instance), sample] = number
            lines.append((instance, record["completion"], sample))
    # explicit numbers are known only once the whole file is read; lines without one fill the gaps in order
    items, extras, following = [], [], {}
    for instance, completion, sample in lines:
        if sample is None:
            key = _styled_key(instance)
            sample = following.get(key, 0)
            while (key, sample) in taken:
                sample += 1
            taken[key, sample] = 0
            following[key] = sample + 1
        items.append((instance, completion))
        extras.append({"sample": sample})
    return items, extras, skipped


def _styled_key(instance: Instance) -> tuple:
    return (instance.style, *instance.key)


def by_style(items: list[tuple[Instance, str]], extras: list[dict] | None = None) -> dict[str, tuple]:
    """(items, extras) split per prompt style, in ``STYLES`` order: each style is scored as its own run."""
    out: dict[str, tuple[list, list | None]] = {}
    for style in STYLES:
        picked = [k for k, (inst, _) in enumerate(items) if inst.style == style]
        if picked:
            out[style] = ([items[k] for k in picked], [extras[k] for k in picked] if extras is not None else None)
    return out


def style_table(summaries: dict[str, dict]) -> dict:
    """Prompt style x problem type from one summary per style: {"styles", "problems", "solved": {style:
    {problem: [solved, n]}}, "accuracy": {style: overall}}: how much of the skill survives other wording."""
    problems = list(dict.fromkeys(p for s in summaries.values() for p in s["per_problem"]))
    return {"styles": list(summaries), "problems": problems,
            "solved": {style: {p: [g["solved"], g["n"]] for p, g in s["per_problem"].items()}
                       for style, s in summaries.items()},
            "accuracy": {style: s["accuracy"] for style, s in summaries.items()}}


# ------------------------------------------------------------------------------------------ runs

def sample_seed(seed: int, key: tuple, sample: int) -> int:
    """The sampling seed of one (instance, sample number) of a run with evaluation seed ``seed``: the same in
    every process and batch (unlike ``hash``), so a run, or the missing samples of a resumed one, draw the same
    answers again, and the base-model twin draws with the same random numbers as the adapter run."""
    digest = hashlib.sha256(repr((seed, tuple(key), sample)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: vLLM and torch take it


def create_eval_runs(store: Store, settings: EvalSettings, *, compare_base: bool = False,
                     name: str | None = None) -> list[int]:
    """Queue a model evaluation run; with ``compare_base`` also its base-model twin (same settings without
    the adapter, ``parent`` = the adapter run) that ``model_eval.evaluate_model`` does on the same instances.
    With prompt style 'all', those runs once per style, named "... [style]" and tied by ``style_group`` (the
    first run's id) in their settings. Returns the run ids, adapter run first (then its twin, then the next
    style's)."""
    if compare_base and not settings.adapter:
        raise ValueError("comparing with the base model (--compare-base) needs an adapter (--adapter)")
    label = f"{settings.model} + {Path(settings.adapter).name}" if settings.adapter else settings.model
    ids = []
    for each in settings.per_style():
        tag = style_tag(each.prompt_style, settings.prompt_style == ALL_STYLES)
        ids.append(store.create_run("eval", asdict(each), name=(name or label) + tag, model=settings.model,
                                    adapter=settings.adapter))
        if compare_base:
            ids.append(store.create_run("eval", asdict(each) | {"adapter": None}, name=f"{settings.model} (base){tag}",
                                        model=settings.model, parent=ids[-1]))
    if settings.prompt_style == ALL_STYLES:
        for rid in ids:
            store.update_run(rid, settings=store.get_run(rid)["settings"] | {"style_group": ids[0]})
    return ids


def style_tag(style: str, several: bool = False) -> str:
    """What a run's name says of its prompt style: nothing for the grid's own prompts alone."""
    return f" [{style}]" if several or style != "contract" else ""


def style_runs(store: Store, run_id: int) -> list[dict]:
    """The runs of ``run_id``'s evaluation, one per prompt style (adapter runs, not base twins), in style
    order; just that run when it was not part of an evaluation in several styles."""
    run = store.get_run(run_id)
    if run.get("parent"):
        run = store.get_run(run["parent"])
    group = run["settings"].get("style_group")
    if group is None:
        return [run]
    found = [r for r in store.runs(kind="eval", limit=10_000)
             if r["settings"].get("style_group") == group and not r.get("parent")]
    order = {style: k for k, style in enumerate(STYLES)}
    return sorted(found, key=lambda r: (order.get(r["settings"].get("prompt_style"), len(STYLES)), r["id"]))


def compare(a: list[dict], b: list[dict]) -> dict:
    """Two evaluations on their common samples (same instance and sample number): per cell and overall,
    solved in each and the change."""
    key = lambda s: (s["problem"], s["difficulty"], s["seed"], s["idx"], s.get("sample", 0))  # noqa: E731
    left, right = {key(s): s for s in a}, {key(s): s for s in b}
    common = [k for k in left if k in right]
    cells: dict[str, dict] = {}
    for k in common:
        cell = cells.setdefault(f"{k[0]}|{k[1]}", {"problem": k[0], "difficulty": k[1], "n": 0, "a": 0, "b": 0})
        cell["n"] += 1
        cell["a"] += left[k]["status"] == "passed"
        cell["b"] += right[k]["status"] == "passed"
    solved_a = sum(c["a"] for c in cells.values())
    solved_b = sum(c["b"] for c in cells.values())
    return {"n": len(common), "solved_a": solved_a, "solved_b": solved_b, "delta": solved_b - solved_a,
            "fixed": [k for k in common if left[k]["status"] != "passed" and right[k]["status"] == "passed"],
            "broken": [k for k in common if left[k]["status"] == "passed" and right[k]["status"] != "passed"],
            "cells": list(cells.values())}
