"""Tests written as code (HumanEval's ``check`` asserts), run where the candidate's code never ran.

A code test is ``TestCase([CODE_TEST, source], True)``: ``source`` defines ``check(candidate)``. Running it
next to the candidate's code, as HumanEval's own harness does, lets the candidate decide what its values do
(a ``float`` whose comparisons are always true) and what the test's tools do (``builtins.abs`` replaced).
So each code test runs in a *test process* of its own, a sandboxed child that holds the trusted test code
(the prompt's helpers, the test module, the check) and no line of the candidate's. There ``candidate`` is a
stand-in that answers from a table of the calls the candidate's own process made, each value crossing as
typed plain data (``sandbox_values``): a tuple stays a tuple, a subclass arrives as its plain base value,
anything else does not arrive at all.

Which calls to make is found by running the check first:
1. **discover** (once per instance, cached): the check runs with an empty table and soft asserts; every
   call it makes is recorded (``random`` is seeded the same way in every run, so a check with random inputs
   asks for the same inputs each time) and answered with a placeholder;
2. the candidate's process answers those calls (they ride along with the data tests' calls);
3. **judge**: the check runs for real on the table. A check whose later inputs depend on earlier answers
   asks for calls the table lacks; they are discovered with the answers known so far, answered by a fresh
   candidate process and judged again, up to ``MAX_ROUNDS`` times.

A failed assert is a wrong answer; an exception the candidate raised, its timeout or crash, is that call's
outcome; an exception the test raised on the candidate's values (comparing a tuple with None) is an
exception. The canonical HumanEval solutions score 164/164 this way.
"""

from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path

from .problems.base import CODE_TEST, Instance
from .sandbox import CallResult, Limits, ProgramResult, run_many

MAX_ROUNDS = 4  # judge rounds for a check whose inputs depend on the candidate's answers
MAX_CALLS = 2000  # candidate calls one check may make
TEST_ENTRY = "__algodistill_test__"
_CODEC = (Path(__file__).resolve().parent / "sandbox_values.py").read_text()

_HARNESS = '''
# ---- algodistill's code-test runner: trusted code only, the candidate's answers arrive as typed data
import json as __json
import random as __random


class __AlgodistillStop(BaseException):
    pass


class __AlgodistillFailed(BaseException):
    pass


def {entry}(mode, source, table, entry_point):
    found = {{}}
    needed = []
    spent = [0.0]

    def candidate(*args, **kwargs):
        if kwargs:
            raise TypeError("keyword arguments cannot be passed to the candidate here")
        encoded = [_typed_encode(a) for a in args]
        key = __json.dumps(encoded)
        if key in table:
            status, payload, seconds = table[key]
            spent[0] += seconds
            if status == "returned":
                return _typed_decode(payload)
            raise __AlgodistillFailed(status, payload)
        if key not in found:
            if len(found) >= {max_calls}:
                raise __AlgodistillStop()
            found[key] = encoded
            needed.append(encoded)
        if mode == "judge":
            raise __AlgodistillStop()
        return object()

    scope = {{"__name__": "__check__", "__AlgodistillStop": __AlgodistillStop}}  # the soft asserts name it
    exec(__CONTEXT, scope)
    scope[entry_point] = candidate  # HumanEval/33's check calls the function by its own name too
    exec(source, scope)
    __random.seed(0)
    try:
        scope["check"](candidate)
    except __AlgodistillStop:
        return ["need", needed]
    except __AlgodistillFailed as exc:
        return ["candidate", exc.args[0], exc.args[1], spent[0]] if mode == "judge" else ["need", needed]
    except AssertionError as exc:
        if mode != "judge":
            return ["need", needed]
        return ["fail", ("AssertionError: " + str(exc)) if str(exc) else "AssertionError", spent[0]]
    except BaseException as exc:
        if mode != "judge":
            return ["need", needed]
        return ["error", "%s: %s" % (type(exc).__name__, str(exc)[:500]), spent[0]]
    return ["need", needed] if mode != "judge" else ["pass", spent[0]]
'''


def is_code_test(test) -> bool:
    return test.args[:1] == [CODE_TEST] and len(test.args) == 2


def code_positions(instance: Instance) -> list[int]:
    return [k for k, t in enumerate(instance.tests) if is_code_test(t)]


class _Soften(ast.NodeTransformer):
    """``assert x`` -> evaluate ``x``, ignore what it raises or yields (the discovery run)."""

    def visit_Assert(self, node: ast.Assert):
        stop = ast.ExceptHandler(type=ast.Name("__AlgodistillStop", ast.Load()), name=None, body=[ast.Raise()])
        rest = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        return ast.copy_location(ast.Try(body=[ast.Expr(node.test)], handlers=[stop, rest], orelse=[],
                                         finalbody=[]), node)


def _soft(source: str) -> str:
    return ast.unparse(ast.fix_missing_locations(_Soften().visit(ast.parse(source))))


def _runner(instance: Instance) -> str:
    return (_CODEC + "\n__CONTEXT = " + repr(instance.test_context) + "\n"
            + _HARNESS.format(entry=TEST_ENTRY, max_calls=MAX_CALLS))


def _key(encoded_args: list) -> str:
    return json.dumps(encoded_args)


@lru_cache(maxsize=512)
def _first_calls(runner: str, entry: str, sources: tuple[str, ...], limits: Limits) -> tuple[str, ...]:
    """The candidate calls each check makes before it sees any answer (encoded args as JSON, in order)."""
    run = run_many([(runner, TEST_ENTRY, [["discover", _soft(s), {}, entry] for s in sources])],
                   limits=limits, workers=1)[0]
    return tuple(_needed(run.calls, {}))


def _needed(calls: list[CallResult], table: dict) -> dict[str, list]:
    """The candidate calls that discover runs asked for and ``table`` lacks: key -> typed args, in order."""
    found: dict[str, list] = {}
    for call in calls:
        if call.status == "returned" and isinstance(call.value, list) and call.value[:1] == ["need"]:
            for encoded in call.value[1]:
                if _key(encoded) not in table:
                    found.setdefault(_key(encoded), encoded)
    return found


def first_calls(instance: Instance, limits: Limits = Limits()) -> list[list]:
    """The typed args of the candidate calls the instance's code tests make first (to send with its data tests)."""
    sources = tuple(instance.tests[k].args[1] for k in code_positions(instance))
    if not sources:
        return []
    return [json.loads(key) for key in _first_calls(_runner(instance), instance.entry_point, sources, limits)]


def _entry(call: CallResult) -> list:
    if call.status == "returned":
        return ["returned", call.value, call.time_s]
    return [call.status, call.error or call.status, call.time_s]


def _outcome(result: CallResult) -> CallResult | None:
    """The code test's outcome from the test process's answer; None when it needs more candidate calls."""
    if result.status != "returned":  # the test process itself failed (timeout, crash): say so
        return CallResult(status=result.status, error=f"the test itself: {result.error}", time_s=result.time_s)
    value = result.value
    kind = value[0] if isinstance(value, list) and value else None
    if kind == "need":
        return None
    if kind == "pass":
        return CallResult(status="returned", value=True, time_s=float(value[1]))
    if kind == "fail":
        return CallResult(status="wrong_answer", error=str(value[1]), time_s=float(value[2]))
    if kind == "error":
        return CallResult(status="exception", error="the test raised, on the candidate's values: " + str(value[1]),
                          time_s=float(value[2]))
    if kind == "candidate":
        status = value[1] if value[1] in ("exception", "timeout", "crash") else "wrong_answer"
        return CallResult(status=status, error=str(value[2]), time_s=float(value[3]))
    return CallResult(status="crash", error="the test process gave a malformed answer")


def judge(samples: list[tuple[Instance, str, ProgramResult, list[list]]], limits: Limits = Limits(),
          workers: int | None = None) -> list[list[CallResult]]:
    """For each (instance, program code, the candidate's run, the typed calls it answered after its data tests),
    the outcome of each code test, in the order of ``code_positions``. The candidate's run holds the data tests'
    calls first, then one answer per typed call."""
    tables: list[dict] = []
    for instance, _, run, typed_calls in samples:
        answers = run.calls[len(run.calls) - len(typed_calls):] if typed_calls else []
        tables.append({_key(args): _entry(call) for args, call in zip(typed_calls, answers)})
    outcomes: list[list[CallResult | None]] = [[None] * len(code_positions(s[0])) for s in samples]
    for round_ in range(MAX_ROUNDS):
        todo = [(i, j) for i, row in enumerate(outcomes) for j, o in enumerate(row) if o is None]
        if not todo:
            break
        by_sample: dict[int, list[int]] = {}
        for i, j in todo:
            by_sample.setdefault(i, []).append(j)
        order = list(by_sample)
        runs = run_many([(_runner(samples[i][0]), TEST_ENTRY,
                          [["judge", samples[i][0].tests[code_positions(samples[i][0])[j]].args[1], tables[i],
                            samples[i][0].entry_point] for j in by_sample[i]]) for i in order],
                        limits=limits, workers=workers)
        more: dict[int, list[int]] = {}
        for i, run in zip(order, runs):
            for j, result in zip(by_sample[i], run.calls):
                outcomes[i][j] = _outcome(result)
                if outcomes[i][j] is None:
                    more.setdefault(i, []).append(j)
        if not more or round_ == MAX_ROUNDS - 1:
            break
        new_calls = _discover_more(samples, tables, more, limits, workers)
        asked = [i for i in more if new_calls.get(i)]
        answered = run_many([(samples[i][1], samples[i][0].entry_point, new_calls[i], 0) for i in asked],
                            limits=limits, workers=workers)
        for i, run in zip(asked, answered):
            tables[i].update({_key(args): _entry(call) for args, call in zip(new_calls[i], run.calls)})
        for i in more:
            if not new_calls.get(i):  # asked again for what it already had: nothing more will come
                for j in more[i]:
                    outcomes[i][j] = CallResult(status="crash", error="the test asked for a call it cannot get")
    return [[o or CallResult(status="exception", error=f"the test needed more than {MAX_ROUNDS} rounds of the "
                             "candidate's answers") for o in row] for row in outcomes]


def _discover_more(samples, tables, more: dict[int, list[int]], limits: Limits, workers) -> dict[int, list[list]]:
    order = list(more)
    runs = run_many([(_runner(samples[i][0]), TEST_ENTRY,
                      [["discover", _soft(samples[i][0].tests[code_positions(samples[i][0])[j]].args[1]), tables[i],
                        samples[i][0].entry_point] for j in more[i]]) for i in order],
                    limits=limits, workers=workers)
    return {i: list(_needed(run.calls, tables[i]).values()) for i, run in zip(order, runs)}
