"""Problem instances: what a problem type must provide, and how an instance is built from it.

An instance is fully determined by ``(problem, difficulty, seed, index)``. Each problem type is a small
module that supplies a contract, a reference solution (as source, so it can also be run through the
sandbox and quoted in traces) and a case generator; :func:`build_instance` turns that into a prompt with
one worked example and five hidden tests whose expected values come from the reference solution.

Per-item seeding (a string seed hashed with SHA-512 by :class:`random.Random`) keeps instances identical
across processes and Python hash seeds, and makes every instance independent of every other one.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable

N_TESTS = 5
DIFFICULTIES = tuple(range(1, 11))
TRAIN_SEED = 42
EVAL_SEED = 999
CODE_TEST = "__check__"  # first arg of a test written as code: ``[CODE_TEST, source of check(candidate)]``
STDIO_ENTRY = "__algodistill_stdio__"  # what the driver of a ``stdio``-style program defines (styles.py)


@dataclass(frozen=True)
class TestCase:
    args: list  # positional arguments, plain JSON values
    expected: Any

    __test__ = False  # not a pytest class

    def call_repr(self, entry_point: str) -> str:
        return f"{entry_point}({', '.join(_py(a) for a in self.args)})"


@dataclass(frozen=True)
class Wording:
    """The short pieces the other prompt styles are built from (``styles.py``), declared by each problem
    module next to its contract. ``terse`` completes "Write a Python function `f(args)` that ..." and must
    still state everything the tests depend on; the stub renames the function and its arguments, and its
    ``docstring`` restates the contract with those names."""

    terse: str
    stub_name: str
    stub_args: tuple[str, ...]
    docstring: str
    # other (function name, argument names) that training prompts may ask with, so that a model trained on
    # several wordings does not learn one set of names; no evaluation style uses them
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ProblemType:
    """What one problem module registers. ``make_case(rng, difficulty, k)`` returns the args of case k."""

    name: str
    entry_point: str
    signature: str
    contract: str
    reference: str  # Python source defining ``entry_point``
    make_case: Callable[[random.Random, int, int], list]
    scale: Callable[[int], dict]  # what the difficulty controls (shown in the UI, checked by tests)
    # Optional check that a set of generated tests is good enough (e.g. mixes True and False answers,
    # contains a case where operator precedence matters). Generation retries until it holds.
    accept: Callable[[list["TestCase"], int], bool] | None = None
    wording: Wording | None = None
    _fn: list = field(default_factory=list, repr=False, compare=False)

    def solve(self, *args):
        """Run the trusted reference solution in-process (our own code, so no sandbox needed)."""
        if not self._fn:
            namespace: dict = {}
            exec(compile(self.reference, f"<reference:{self.name}>", "exec"), namespace)
            self._fn.append(namespace[self.entry_point])
        return self._fn[0](*copy.deepcopy(args))


@dataclass(frozen=True)
class Instance:
    problem: str
    difficulty: int
    seed: int
    index: int
    entry_point: str
    signature: str
    prompt: str
    example: TestCase
    tests: tuple[TestCase, ...]
    reference: str
    # Benchmarks (HumanEval) only. ``stub``: the code the answer continues (imports, helpers, signature and
    # docstring); an answer that does not define the entry point is read as the stub's body. ``checker``:
    # code appended to the candidate's program (the prompt's imports and helpers it may use). ``test_context``:
    # the trusted code a code test (``CODE_TEST``) runs next to, in a process of its own (``code_tests.py``).
    stub: str = ""
    checker: str = ""
    test_context: str = ""
    # how the prompt asks for the skill (``styles.STYLES``); the tests and their expected values never change
    style: str = "contract"

    @property
    def key(self) -> tuple[str, int, int, int]:
        return (self.problem, self.difficulty, self.seed, self.index)

    def fingerprint(self) -> str:
        """Content identity: two instances with the same example and tests are the same problem."""
        return json.dumps([self.problem, self.example.args, [t.args for t in self.tests]], sort_keys=True)

    def to_dict(self, with_reference: bool = True) -> dict:
        d = {
            "problem": self.problem,
            "difficulty": self.difficulty,
            "seed": self.seed,
            "index": self.index,
            "entry_point": self.entry_point,
            "signature": self.signature,
            "prompt": self.prompt,
            "example": {"args": self.example.args, "expected": self.example.expected},
            "tests": [{"args": t.args, "expected": t.expected} for t in self.tests],
        }
        if self.style != "contract":
            d["style"] = self.style
        if with_reference:
            d["reference"] = self.reference
        return d


def _py(value: Any) -> str:
    return repr(value)


def rng_for(problem: str, difficulty: int, seed: int, index: int, attempt: int = 0) -> random.Random:
    return random.Random(f"algodistill:{problem}:{difficulty}:{seed}:{index}:{attempt}")


def check_difficulty(difficulty: int) -> int:
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= 10:
        raise ValueError(f"difficulty must be an integer from 1 to 10, got {difficulty!r}")
    return difficulty


def build_instance(ptype: ProblemType, difficulty: int, seed: int, index: int) -> Instance:
    check_difficulty(difficulty)
    for attempt in range(200):
        rng = rng_for(ptype.name, difficulty, seed, index, attempt)
        cases, seen = [], set()
        tries = 0
        while len(cases) < N_TESTS + 1 and tries < 200:
            tries += 1
            args = ptype.make_case(rng, difficulty, len(cases))
            key = json.dumps(args, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            cases.append(TestCase(args=args, expected=ptype.solve(*args)))
        if len(cases) < N_TESTS + 1:
            continue
        example, tests = cases[0], cases[1:]
        if ptype.accept is None or ptype.accept(tests, difficulty):
            return Instance(
                problem=ptype.name, difficulty=difficulty, seed=seed, index=index,
                entry_point=ptype.entry_point, signature=ptype.signature,
                prompt=render_prompt(ptype, example), example=example, tests=tuple(tests),
                reference=ptype.reference,
            )
    raise RuntimeError(f"could not generate an acceptable {ptype.name} instance at difficulty {difficulty}")


def render_prompt(ptype: ProblemType, example: TestCase) -> str:
    return (
        f"Write a Python function `{ptype.entry_point}`.\n\n"
        f"Signature:\n```python\n{ptype.signature}\n```\n\n"
        f"Contract:\n{ptype.contract.strip()}\n\n"
        f"Example:\n```python\n>>> {example.call_repr(ptype.entry_point)}\n{_py(example.expected)}\n```\n\n"
        "Explain your approach step by step, then give the complete function (with any imports or helpers it "
        "needs) in one ```python code block."
    )


def lerp(difficulty: int, low: float, high: float) -> int:
    """Scale linearly from ``low`` at difficulty 1 to ``high`` at difficulty 10."""
    return round(low + (high - low) * (difficulty - 1) / 9)
