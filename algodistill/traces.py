"""Teacher traces: the JSONL schema, loading with line-numbered errors, verification, SFT rows.

One trace per line::

    {"id": "rpn-d3-s42-i0",          # optional, any string; defaults to problem-dN-sS-iI
     "problem": "rpn",               # a problem type name
     "difficulty": 3, "seed": 42, "index": 0,   # rebuild the instance, hence its hidden tests
     "style": "terse",               # optional prompt style (contract, terse, stub, stdio; default contract):
                                     # the response is judged as that style asks (another function name, or
                                     # a stdin/stdout program), on the same hidden tests
     "prompt": "...",                # optional; the instance's own prompt (in its style) when absent
     "entry_point": "evaluate_postfix",   # optional: the function the prompt asks for, when it names another
                                     # than its style does (varied wording); the response must define it
     "wording": {...},               # optional object: which phrasing the prompt uses (build_varied_traces.py)
     "response": "...",              # the teacher's answer: reasoning, then a ```python block
     "teacher": "algodistill-authors",          # who wrote the response
     "provenance": "...",            # optional free text: how the response was produced
     "generation": {...}}            # optional object: how a sampled response was drawn (``teacher.py``:
                                     # sampling settings, time, tokens, cost)

A trace is kept only if the code in its response passes every hidden test of its instance, through the
same verifier the evaluation uses. Malformed lines are reported with their line number and the rest of
the file is still processed.

A trace set may also be a dataset (``datasets.load_dataset``): a Hub dataset id (``user/name``) or a local
directory in the Hub's layout, its ``train`` split holding the same columns (``completion``, or a ``messages``
conversation whose last assistant turn is the answer, stand for ``response``); a dataset missing a column
is refused, naming it, and each row is checked and verified like a line of a file.
"""

from __future__ import annotations

import json
import re

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from .problems import EVAL_SEED, PROBLEM_TYPES, REFERENCE_DIFFICULTIES, Instance, grid, make_instance
from .problems.styles import STYLES, styled
from .sandbox import Limits
from .verify import parse_json_line, verify_many

BUNDLED = Path(__file__).resolve().parent.parent / "assets" / "traces" / "reference.jsonl"
# the same hand-written traces asked in varied wording, never in the evaluation's own terse, stub or stdio wording,
# each set with one whole style held out (scripts/build_varied_traces.py): stdio, or terse
VARIED = BUNDLED.with_name("varied.jsonl")
VARIED_NO_TERSE = BUNDLED.with_name("varied-no-terse.jsonl")
VARIED_CODE_FIRST = BUNDLED.with_name("varied-code-first.jsonl")
VARIED_SELF = BUNDLED.with_name("varied-no-terse-self.jsonl")  # traces self-distill's output on varied-no-terse
# varied-code-first with those student answers in place of the teacher's, for the same prompts
VARIED_CODE_FIRST_SELF = BUNDLED.with_name("varied-code-first-self.jsonl")
BUNDLED_SETS = {BUNDLED.name: (BUNDLED, "bundled reference set"),
                VARIED.name: (VARIED, "bundled varied-wording set, stdio held out"),
                VARIED_NO_TERSE.name: (VARIED_NO_TERSE, "bundled varied-wording set, terse held out"),
                VARIED_CODE_FIRST.name: (VARIED_CODE_FIRST, "bundled varied-wording set, terse held out, code first"),
                VARIED_SELF.name: (VARIED_SELF, "bundled varied-wording set, terse held out, self-distilled by "
                                                "Qwen2.5-Coder-0.5B (its own verified answers where it has one)"),
                VARIED_CODE_FIRST_SELF.name: (VARIED_CODE_FIRST_SELF, "bundled varied-wording set, terse held out, "
                                              "code first, self-distilled by Qwen2.5-Coder-0.5B")}
REQUIRED = {"problem": str, "difficulty": int, "seed": int, "index": int, "response": str}
OPTIONAL = {"id": str, "style": str, "prompt": str, "teacher": str, "provenance": str, "generation": dict,
            "entry_point": str, "wording": dict}


@dataclass
class TraceCheck:
    line: int
    id: str | None
    kept: bool
    reason: str  # "verified", or why it was rejected
    record: dict | None = None
    instance: Instance | None = None
    passed: int = 0
    total: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        r = self.record or {}
        return {"line": self.line, "id": self.id, "kept": self.kept, "reason": self.reason,
                "problem": r.get("problem"), "difficulty": r.get("difficulty"), "seed": r.get("seed"),
                "index": r.get("index"), "style": r.get("style") or "contract", "teacher": r.get("teacher"),
                "passed": self.passed, "total": self.total,
                "warnings": self.warnings}


def parse_line(line: str) -> dict:
    """A validated trace record, or ValueError saying exactly what is wrong."""
    record = parse_json_line(line)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    for key, kind in REQUIRED.items():
        if key not in record:
            raise ValueError(f"missing field {key!r}")
        value = record[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    for key, kind in OPTIONAL.items():
        if record.get(key) is not None and not isinstance(record[key], kind):
            raise ValueError(f"field {key!r} must be {kind.__name__}, got {type(record[key]).__name__}")
    if record["problem"] not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem {record['problem']!r}; known: {', '.join(PROBLEM_TYPES)}")
    if not 1 <= record["difficulty"] <= 10:
        raise ValueError(f"difficulty must be 1..10, got {record['difficulty']}")
    if record["index"] < 0:
        raise ValueError(f"index must be >= 0, got {record['index']}")
    if not record["response"].strip():
        raise ValueError("empty response")
    if record.get("style") is not None and record["style"] not in STYLES:
        raise ValueError(f"unknown style {record['style']!r}; known: {', '.join(STYLES)}")
    if record.get("entry_point") is not None:
        if not record["entry_point"].isidentifier():
            raise ValueError(f"entry_point must be a Python name, got {record['entry_point']!r}")
        if record.get("style") == "stdio":
            raise ValueError("a stdio trace answers with a whole program: it has no entry_point")
        if not record.get("prompt"):
            raise ValueError("a trace with its own entry_point needs the prompt that names it")
    return record


def trace_id(record: dict) -> str:
    style = record.get("style") or "contract"
    return record.get("id") or (f"{record['problem']}-d{record['difficulty']}-s{record['seed']}-i{record['index']}"
                                + ("" if style == "contract" else f"-{style}"))


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}$")  # a Hub repository: user/name


def is_hub_id(spec: str | Path) -> bool:
    """Whether ``spec`` reads as a Hub repository id (``user/name``, no ``..``) and is no path here."""
    text = str(spec)
    return bool(HUB_ID.fullmatch(text)) and ".." not in text and not Path(text).exists()


def is_dataset(spec: str | Path) -> bool:
    """Whether a trace set names a dataset: a local directory, or a Hub id (``user/name``) that is no path here."""
    return Path(spec).is_dir() or is_hub_id(spec)


def _response(row: dict) -> str | None:
    """The answer of a dataset row: ``response``, ``completion`` (text or a message list), or the last assistant
    turn of ``messages``."""
    for key in ("response", "completion", "messages"):
        value = row.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):  # a conversation: its last assistant turn
            turns = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
            if turns and isinstance(turns[-1], str):
                return turns[-1]
    return None


def load_dataset_records(spec: str | Path, split: str = "train") -> tuple[list[tuple[int, dict]], list[TraceCheck]]:
    """(row number, record) for every valid row of a dataset's ``split``, and a rejected TraceCheck per bad row;
    ValueError naming the columns a trace needs that the dataset lacks."""
    try:
        from datasets import load_dataset
        if Path(spec).is_dir():
            # a local folder is read afresh, in a cache of its own: with a card naming its files, datasets' shared
            # cache keys on the folder's name and patterns, and gave another folder's rows and schema under the
            # same name (seen with datasets 5.2)
            import shutil
            import tempfile
            cache = tempfile.mkdtemp(prefix="algodistill-dataset-")
            try:
                rows = load_dataset(str(spec), split=split, cache_dir=cache, keep_in_memory=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        else:
            rows = load_dataset(str(spec), split=split)
    except Exception as exc:  # not found, no network, a layout it cannot read: said in words
        raise FileNotFoundError(f"could not load the dataset {spec} (split {split}): {type(exc).__name__}: "
                                f"{str(exc)[:300]}") from None
    columns = set(rows.column_names)
    missing = [key for key in REQUIRED if key != "response" and key not in columns]
    if not columns & {"response", "completion", "messages"}:
        missing.append("response (or completion, or messages)")
    if missing:
        raise ValueError(f"the dataset {spec} lacks the column(s) {', '.join(missing)} a trace needs (it has: "
                         f"{', '.join(sorted(columns)) or 'none'}); see the schema in docs/traces.md")
    records, bad = [], []
    for number, row in enumerate(rows, 1):
        record = {k: v for k, v in row.items() if (k in REQUIRED or k in OPTIONAL) and v is not None}
        answer = _response(row)
        if answer is not None:
            record["response"] = answer
        try:
            records.append((number, parse_line(json.dumps(record, default=str))))
        except ValueError as exc:
            bad.append(TraceCheck(line=number, id=None, kept=False, reason=f"row {number}: {exc}"))
    return records, bad


def load(path: str | Path) -> tuple[list[tuple[int, dict]], list[TraceCheck]]:
    """(line number, record) for every valid line, and a rejected TraceCheck for every malformed one; a
    dataset (``is_dataset``) by row."""
    if is_dataset(path):
        return load_dataset_records(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    records, bad = [], []
    with path.open("r", encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM is not part of line 1
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append((number, parse_line(line)))
            except ValueError as exc:
                bad.append(TraceCheck(line=number, id=None, kept=False, reason=f"line {number}: {exc}"))
    return records, bad


@lru_cache(maxsize=1)
def eval_fingerprints() -> frozenset[str]:
    """The evaluation grid's problems by content (``Instance.fingerprint``): no trace may teach one of them."""
    return frozenset(inst.fingerprint() for inst in grid(PROBLEM_TYPES, REFERENCE_DIFFICULTIES, EVAL_SEED))


def check(records: Iterable[tuple[int, dict]], limits: Limits = Limits()) -> list[TraceCheck]:
    """Verify each record's response against its instance's hidden tests (in parallel)."""
    checks, jobs = [], []
    for number, record in records:
        instance = styled(make_instance(record["problem"], record["difficulty"], record["seed"], record["index"]),
                          record.get("style") or "contract")
        if record.get("entry_point"):  # the prompt asks for another name: the answer must define that one
            instance = replace(instance, entry_point=record["entry_point"], stub="", prompt=record["prompt"])
        item = TraceCheck(line=number, id=trace_id(record), kept=False, reason="", record=record, instance=instance)
        if record.get("prompt") and not record.get("wording") and record["prompt"].strip() != instance.prompt.strip():
            item.warnings.append("prompt differs from the instance prompt; training uses the trace's own prompt")
        if record["seed"] == EVAL_SEED:
            item.warnings.append(f"seed {EVAL_SEED} is the evaluation seed")
        checks.append(item)
        jobs.append((instance, record["response"]))
    for item, verdict in zip(checks, verify_many(jobs, limits=limits)):
        item.passed, item.total = verdict.passed, verdict.total
        if item.instance.fingerprint() in eval_fingerprints():
            item.reason = "its problem instance is in the evaluation grid (would leak test problems)"
        elif verdict.solved:
            item.kept, item.reason = True, "verified"
        else:
            detail = f": {verdict.error}" if verdict.error else ""
            item.reason = f"{verdict.status} ({verdict.passed}/{verdict.total} tests passed){detail}"[:500]
    return checks


def verify_file(path: str | Path, limits: Limits = Limits()) -> list[TraceCheck]:
    """Every line of a trace file, in file order: kept, rejected, or malformed."""
    records, bad = load(path)
    return sorted(check(records, limits) + bad, key=lambda c: c.line)


def summary(checks: list[TraceCheck]) -> dict[str, Any]:
    kept = [c for c in checks if c.kept]
    per_cell: dict[str, dict[str, int]] = {}
    for c in kept:
        per_cell.setdefault(c.record["problem"], {}).setdefault(str(c.record["difficulty"]), 0)
        per_cell[c.record["problem"]][str(c.record["difficulty"])] += 1
    return {"total": len(checks), "kept": len(kept), "rejected": len(checks) - len(kept), "per_cell": per_cell}


WORDINGS = ("evaluation wording", "other wordings only", "held out")


def wording_coverage(checks: Iterable[TraceCheck]) -> dict[str, str]:
    """For each prompt style, what the kept traces taught of it: "evaluation wording" (some trace is asked exactly
    as the evaluation asks that style: the same template, names and example form), "other wordings only" (the
    style, but never in the evaluation's words: its score is a transfer across wording) or "held out" (no trace in
    that style: its score is a transfer across styles). Read from the traces themselves, so an uploaded set is
    judged like a bundled one."""
    seen: dict[str, str] = {}
    for c in checks:
        if not c.kept:
            continue
        style = c.record.get("style") or "contract"
        ours = styled(make_instance(c.record["problem"], c.record["difficulty"], c.record["seed"],
                                    c.record["index"]), style).prompt
        asked = (c.record.get("prompt") or ours).strip()
        if asked == ours.strip():
            seen[style] = WORDINGS[0]
        else:
            seen.setdefault(style, WORDINGS[1])
    return {style: seen.get(style, WORDINGS[2]) for style in STYLES}


def sft_rows(checks: Iterable[TraceCheck]) -> list[dict]:
    """Prompt-completion conversations (TRL computes the loss on the completion only)."""
    rows = []
    for c in checks:
        if c.kept:
            prompt = (c.record.get("prompt") or c.instance.prompt).strip()
            rows.append({"prompt": [{"role": "user", "content": prompt}],
                         "completion": [{"role": "assistant", "content": c.record["response"].strip()}]})
    return rows
