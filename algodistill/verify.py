"""Completion -> extracted code -> per-test outcomes -> Verdict. The one verifier every caller uses.

Extraction copes with what models actually write: fenced blocks with or without a language tag, several
blocks (helpers in one, the function in another, a usage demo in a third), prose around the code, a
missing opening or closing fence, and trailing text after the last statement. Sanitizing follows
EvalPlus: keep imports and the definitions the entry point needs (transitively), drop top-level calls,
prints, asserts and ``if __name__ == "__main__"`` demos, so a correct function is not failed by its own
example code. Comparison happens here in the parent, on plain JSON values: a bool is never equal to an
int, an expected int is met only by that exact integer, and the child never sees an expected value.

A benchmark instance (HumanEval) may add three things: a ``stub``, so that an answer defining no entry point is
read as the stub's body (base models continue the prompt; ``extract_for``), a ``checker`` appended to the
program (the prompt's helpers), and tests written as code, which run in a test process of their own that
receives the candidate's answers as typed plain values (``code_tests.py``; see ``benchmarks/humaneval.py``). A ``stdio``-style instance (``problems/styles.py``) asks for a
whole program: extraction keeps its top-level code, a driver runs it once per test with the test's args as
JSON on stdin, and the parent reads the last line it printed as JSON before comparing.

Everything here reads untrusted text, so nothing may be slower than linear in it (regexes are written
without overlapping parts, prefix trimming is bounded) and nothing about one sample may stop the others
being judged (``_judge_safely``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

from . import code_tests
from .problems import Instance
from .problems.base import STDIO_ENTRY
from .problems.styles import printed_answer, stdin_text, stdio_program
from .sandbox import CallResult, Limits, ProgramResult, run_many

FAILURE_KINDS = ("no_code", "syntax_error", "missing_function", "exception", "wrong_answer", "timeout", "crash")
TEST_STATUSES = ("pass", "wrong_answer", "exception", "timeout", "crash", "not_run")
_SEVERITY = ("timeout", "crash", "exception", "wrong_answer")  # which failure names a mixed verdict

MAX_COMPLETION_CHARS = 100_000  # a 1024-token answer is ~5,000; longer is not an answer but an attack
MAX_LINE_CHARS = 2_000_000  # one JSONL line (a trace or a completion record)
MAX_STORED_VALUE_CHARS = 10_000  # of one test's actual value as JSON, in runs.db
_MAX_PREFIX_TRIES = 200  # cut points tried when the end of a block does not parse

# matched against stripped lines, and written so that no two parts can match the same characters: untrusted
# text must not make a regex backtrack quadratically (a fence followed by 100k spaces took 25 s)
_FENCE = re.compile(r"(```+|~~~+)\s*([\w+#.-]*)$")
_MAX_NOTES = 12
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")


@dataclass
class Extraction:
    code: str | None  # sanitized program, or None
    status: str  # ok | no_code | syntax_error | missing_function
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class TestOutcome:
    args: list
    expected: Any
    status: str
    actual: Any = None
    error: str | None = None
    time_s: float = 0.0
    output: str = ""


@dataclass
class Verdict:
    status: str  # "passed" or one of FAILURE_KINDS
    passed: int
    total: int
    code: str | None
    tests: list[TestOutcome]
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def solved(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"score": self.score}


# ---------------------------------------------------------------------------------------------- extraction

def _blocks(text: str) -> tuple[list[str], list[str]]:
    """Fenced code blocks in order, tolerating a missing opening or closing fence."""
    lines = text.splitlines()
    fences = [(i, m.group(2)) for i, line in enumerate(lines) if (m := _FENCE.match(line.strip()))]
    notes: list[str] = []
    if not fences:
        return [], notes
    blocks = []
    first, tag = fences[0]
    if not tag and any(_CODE_START.match(line) for line in lines[:first]):
        # "def f():\n ...\n```" : the model dropped the opening fence but kept the closing one
        start = next(i for i, line in enumerate(lines[:first]) if _CODE_START.match(line))
        blocks.append("\n".join(lines[start:first]))
        notes.append("no opening fence: took the code before the first fence")
        fences = fences[1:]
    inside, opened_at = False, -1
    for i, tag in fences:
        if not inside:
            inside, opened_at = True, i
        elif not tag:
            blocks.append("\n".join(lines[opened_at + 1:i]))
            inside = False
        else:  # a new tagged fence while inside: the previous block was never closed
            blocks.append("\n".join(lines[opened_at + 1:i]))
            opened_at = i
    if inside:
        blocks.append("\n".join(lines[opened_at + 1:]))
        notes.append("unclosed code block: took it to the end")
    return [b for b in blocks if b.strip()], notes


def _parse_prefix(code: str) -> tuple[str | None, str | None, bool]:
    """(longest parseable prefix that ends at a top-level line, syntax error of the whole, trimmed?)."""
    code = code.replace("\t", "    ")
    try:
        ast.parse(code)
        return code, None, False
    except SyntaxError as exc:
        error = f"SyntaxError: {exc.msg} (line {exc.lineno})"
        first_bad = exc.lineno or 0
    lines = code.splitlines()
    # cut only between top-level statements, from the failing line upwards (trailing prose is usually
    # where the error is), and a bounded number of times: parsing is not free and the text is untrusted
    last = min(len(lines) - 1, first_bad - 1) if first_bad > 0 else len(lines) - 1
    cuts = [cut for cut in range(last, 0, -1) if lines[cut] and not lines[cut][0].isspace()]
    for cut in cuts[:_MAX_PREFIX_TRIES]:
        prefix = "\n".join(lines[:cut])
        try:
            ast.parse(prefix)
            return prefix, error, True
        except SyntaxError:
            continue
    return None, error, False


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None


def extract_code(completion: str, entry_point: str, whole_program: bool = False) -> Extraction:
    """Find the program in a raw completion and sanitize it. ``whole_program`` (a ``stdio`` answer): the
    program is its top-level code, so nothing is dropped and no entry point is required."""
    if not isinstance(completion, str) or not completion.strip():
        return Extraction(None, "no_code", ["empty completion"])
    if len(completion) > MAX_COMPLETION_CHARS:
        return Extraction(None, "no_code", [f"the completion is {len(completion):,} characters; longer than "
                                            f"{MAX_COMPLETION_CHARS:,} is not judged"])
    try:
        return _extract(completion, entry_point, whole_program)
    except (RecursionError, MemoryError, ValueError) as exc:  # thousands of nested brackets, NUL bytes
        return Extraction(None, "syntax_error", [f"the code cannot be parsed ({type(exc).__name__})"],
                          f"{type(exc).__name__}: {str(exc)[:200]}")


def _extract(completion: str, entry_point: str, whole_program: bool = False) -> Extraction:
    blocks, notes = _blocks(completion)
    if not blocks:
        lines = completion.splitlines()
        start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
        if start is None:
            return Extraction(None, "no_code", ["no code block and no Python definition found"])
        blocks = ["\n".join(lines[start:])]
        notes.append("no code fences: took the text from the first definition on")
    kept, first_error = [], None
    for block in blocks:
        code, error, trimmed = _parse_prefix(block)
        if code is None or (trimmed and _defines(block, entry_point) and not _defines(code, entry_point)):
            first_error = first_error or error
            if _defines(block, entry_point):
                return Extraction(None, "syntax_error", _few(notes + ["the block defining the function does not parse"]),
                                  error)
            notes.append(f"skipped a block that does not parse ({error})")
            continue
        if trimmed:
            notes.append(f"dropped unparseable text after the code ({error})")
        kept.append(code)
    notes = _few(notes)
    if not kept:
        return Extraction(None, "syntax_error", notes, first_error)
    if whole_program:
        if len(kept) > 1:
            notes.append(f"joined {len(kept)} code blocks")
        return Extraction("\n\n".join(kept) + "\n", "ok", notes)
    if not any(_defines(code, entry_point) for code in kept):
        return Extraction("\n\n".join(kept), "missing_function",
                          notes + [f"no block defines `{entry_point}`"])
    if len(kept) > 1:
        notes.append(f"joined {len(kept)} code blocks")
    code, dropped = sanitize("\n\n".join(kept), entry_point)
    if dropped:
        notes.append("dropped top-level code: " + "; ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else ""))
    return Extraction(code, "ok", notes)


def _few(notes: list[str]) -> list[str]:
    """Notes as stored: a crafted completion can produce one per block, thousands of them."""
    if len(notes) <= _MAX_NOTES:
        return notes
    return notes[:_MAX_NOTES - 1] + [f"... and {len(notes) - _MAX_NOTES + 1} more notes like these"]


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def sanitize(code: str, entry_point: str) -> tuple[str, list[str]]:
    """Keep imports and the top-level definitions reachable from ``entry_point``; return (code, dropped)."""
    tree = ast.parse(code)
    lines = code.splitlines()
    definitions: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        for name in _defined_names(node):
            definitions.setdefault(name, []).append(node)
    needed, todo = set(), [entry_point]
    while todo:
        name = todo.pop()
        if name in needed or name not in definitions:
            continue
        needed.add(name)
        for node in definitions[name]:
            todo.extend(_names_used(node))
    kept, dropped = [], []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        segment = "\n".join(lines[start - 1:node.end_lineno])
        if isinstance(node, (ast.Import, ast.ImportFrom)) or set(_defined_names(node)) & needed:
            kept.append(segment)
        else:
            dropped.append(segment.splitlines()[0].strip()[:60])
    return "\n".join(kept) + "\n", dropped


# ---------------------------------------------------------------------------------------------- comparison

def same(actual: Any, expected: Any) -> bool:
    """Equality of plain JSON values; bools only equal bools. An expected int is met only by that exact
    integer (5.0 for 5, never 5.0000000001, nor a float approximation of a 90-digit Fibonacci number); an
    expected float by a number within 1e-9."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int):
            if isinstance(actual, float):
                # beyond 2**53 a float is an approximation whatever its value
                return math.isfinite(actual) and actual.is_integer() and abs(actual) <= 2**53 and int(actual) == expected
            return actual == expected
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], expected[k]) for k in expected)
    return type(actual) is type(expected) and actual == expected


def stored_value(value: Any) -> tuple[Any, str | None]:
    """What runs.db keeps of an actual value: the value itself, or, past MAX_STORED_VALUE_CHARS as JSON, the
    start of its JSON text and a note (the verdict was reached on the whole value)."""
    text = json.dumps(value)
    if len(text) <= MAX_STORED_VALUE_CHARS:
        return value, None
    return (text[:2000] + " ...", f"the returned value is {len(text):,} characters as JSON; only its first 2,000 "
            "are kept (the comparison used all of it)")


def scrub(value: Any) -> Any:
    """``value`` with every string valid UTF-8 (a lone surrogate becomes "?"), for storing and showing what
    a program returned or printed; the comparison itself uses the value as returned."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def _outcome(test, call: CallResult, stdio: bool = False) -> TestOutcome:
    common = {"args": test.args, "expected": test.expected, "time_s": call.time_s, "output": scrub(call.output)}
    if call.status == "returned" and stdio:  # the value is what the program printed
        value, why = printed_answer(call.value)
        if why is not None:
            return TestOutcome(status="wrong_answer", actual=stored_value(scrub(call.value))[0], error=why, **common)
        call = replace(call, value=value)
    if call.status == "returned":
        ok = same(call.value, test.expected)
        actual, note = stored_value(scrub(call.value))
        return TestOutcome(status="pass" if ok else "wrong_answer", actual=actual, error=note, **common)
    if call.status == "unserializable":
        return TestOutcome(status="wrong_answer", error=scrub(call.error), **common)
    return TestOutcome(status=call.status, error=scrub(call.error), **common)


def _not_run(instance: Instance, status: str = "not_run", error: str | None = None) -> list[TestOutcome]:
    return [TestOutcome(args=t.args, expected=t.expected, status=status, error=error) for t in instance.tests]


def _judge(instance: Instance, extraction: Extraction, run: ProgramResult | None) -> Verdict:
    total = len(instance.tests)
    if extraction.status != "ok" or run is None:
        return Verdict(extraction.status, 0, total, extraction.code, _not_run(instance), extraction.notes,
                       extraction.error)
    if run.missing_function:
        return Verdict("missing_function", 0, total, extraction.code, _not_run(instance), extraction.notes,
                       f"`{instance.entry_point}` is not a function after running the code")
    if run.load_error is not None:
        error = scrub(run.load_error)
        return Verdict("exception", 0, total, extraction.code,
                       _not_run(instance, "exception", "while defining the program: " + error),
                       extraction.notes, error)
    tests = [_outcome(t, c, instance.style == "stdio") for t, c in zip(instance.tests, _test_calls(instance, run))]
    passed = sum(t.status == "pass" for t in tests)
    failures = {t.status for t in tests} - {"pass"}
    status = next((s for s in _SEVERITY if s in failures), "passed")
    first_error = next((t.error for t in tests if t.status == status and t.error), None)
    return Verdict(status, passed, total, extraction.code, tests, extraction.notes, first_error)


def _test_calls(instance: Instance, run: ProgramResult) -> list[CallResult]:
    """One call result per test, in test order: a data test's from the candidate's run, a code test's as judged
    in its own process (``verify_many`` leaves them in ``run.code_tests``)."""
    positions = code_tests.code_positions(instance)
    if not positions:
        return run.calls
    data = iter(run.calls)
    judged = iter(run.code_tests)
    return [next(judged, CallResult(status="crash", error="not judged")) if k in positions
            else next(data, CallResult(status="crash", error="not run")) for k in range(len(instance.tests))]


def verify_many(items: Iterable[tuple[Instance, str]], limits: Limits = Limits(),
                workers: int | None = None) -> list[Verdict]:
    """Verify (instance, completion) pairs; programs run in parallel, results come back in input order."""
    items = list(items)
    extractions = [extract_for(inst, completion) for inst, completion in items]
    runnable = [k for k, e in enumerate(extractions) if e.status == "ok"]
    programs = [program(items[k][0], extractions[k].code, limits) for k in runnable]
    runs = run_many(programs, limits=limits, workers=workers)
    by_index = dict(zip(runnable, runs))
    coded = [(k, p, r) for k, p, r in zip(runnable, programs, runs)
             if code_tests.code_positions(items[k][0]) and r.load_error is None and not r.missing_function]
    if coded:
        judged = code_tests.judge([(items[k][0], p[0], r, p[2][p[3]:]) for k, p, r in coded], limits, workers)
        for (_, _, r), outcomes in zip(coded, judged):
            r.code_tests = outcomes
    return [_judge_safely(inst, extractions[k], by_index.get(k)) for k, (inst, _) in enumerate(items)]


def extract_for(instance: Instance, completion: str) -> Extraction:
    """``extract_code``, and for an instance with a stub (HumanEval) whose answer defines no entry point, the
    answer read as the stub's body: base models continue the prompt rather than repeat the function."""
    if instance.style == "stdio":
        return extract_code(completion, instance.entry_point, whole_program=True)
    first = extract_code(completion, instance.entry_point)
    if first.status == "ok" or not instance.stub or not isinstance(completion, str) or not completion.strip() \
            or len(completion) > MAX_COMPLETION_CHARS:
        return first
    blocks, _ = _blocks(completion)
    body = "\n".join(blocks) if blocks else completion
    second = extract_code(instance.stub.rstrip("\n") + "\n" + body, instance.entry_point)
    # prose after the stub leaves the docstring-only stub itself: that is no answer
    if second.status != "ok" or second.code == extract_code(instance.stub, instance.entry_point).code:
        return first
    second.notes.insert(0, f"the answer does not define `{instance.entry_point}`: read as the body of the "
                           "prompt's function")
    return second


def program(instance: Instance, code: str, limits: Limits = Limits()) -> tuple[str, str, list[list], int]:
    """(code, entry point, calls, typed_from) as the sandbox runs them. An instance with a ``checker`` has it
    appended. The data tests' calls come first; an instance with code tests adds, as typed calls from
    ``typed_from`` on, the calls its checks make (``code_tests.first_calls``)."""
    calls = [t.args for t in instance.tests if not code_tests.is_code_test(t)]
    if instance.style == "stdio":  # a whole program: the driver runs it once per test on that test's stdin
        calls = [[stdin_text(args)] for args in calls]
        return stdio_program(code), STDIO_ENTRY, calls, len(calls)
    if instance.checker:
        code = code.rstrip("\n") + "\n" + instance.checker
    return code, instance.entry_point, calls + code_tests.first_calls(instance, limits), len(calls)


def _judge_safely(instance: Instance, extraction: Extraction, run: ProgramResult | None) -> Verdict:
    """One sample's verdict; nothing about one sample may cost the others theirs."""
    try:
        return _judge(instance, extraction, run)
    except Exception as exc:  # noqa: BLE001 - e.g. a value that defeats comparison
        error = f"could not judge this sample: {type(exc).__name__}: {str(exc)[:200]}"
        return Verdict("crash", 0, len(instance.tests), extraction.code, _not_run(instance, "crash", error),
                       extraction.notes, error)


def parse_json_line(line: str) -> Any:
    """One JSONL line (trace or completion record), or ValueError saying what is wrong with it."""
    if len(line) > MAX_LINE_CHARS:
        raise ValueError(f"line is {len(line):,} characters; the limit is {MAX_LINE_CHARS:,}")
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        message = exc.msg.removesuffix(" at")  # json's "Invalid control character ... at" read "at at column"
        raise ValueError(f"not valid JSON ({message} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def verify(instance: Instance, completion: str, limits: Limits = Limits()) -> Verdict:
    return verify_many([(instance, completion)], limits=limits, workers=1)[0]


def fenced(code: str) -> str:
    """A completion that is just ``code`` in a python block (reference solutions, tests)."""
    return f"```python\n{code.rstrip()}\n```"
