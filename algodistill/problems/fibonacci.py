"""fibonacci: the n-th Fibonacci number.

Difficulty scales n: up to 10 at 1, up to 500 at 10, so exponential recursion times out from about 3 on
and results outgrow 64-bit integers from about 5. n = 0 and n = 1 appear as edge cases from 4.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def fibonacci(n):
    previous, current = 0, 1
    for _ in range(n):
        previous, current = current, previous + current
    return previous
'''

CONTRACT = """\
Return the n-th Fibonacci number, where fibonacci(0) == 0, fibonacci(1) == 1 and
fibonacci(n) == fibonacci(n - 1) + fibonacci(n - 2). n is a non-negative integer and may be large enough
that the answer has many digits: return the exact integer, and do it efficiently (well under a second)."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the n-th Fibonacci number exactly (fibonacci(0) == 0, fibonacci(1) == 1), fast enough for n '
           'in the hundreds'),
    stub_name='fib', stub_args=('k',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('nth_fibonacci', ('index',)), ('fibo', ('m',)), ('fib_number', ('position',))),
    docstring="""\
Return the k-th Fibonacci number: fib(0) == 0, fib(1) == 1, fib(k) == fib(k - 1) + fib(k - 2).

k >= 0 may be in the hundreds: return the exact integer, computed in well under a second.""",
)


def _top(difficulty: int) -> int:
    return lerp(difficulty, 10, 500)


def make_case(rng, difficulty: int, k: int) -> list:
    top = _top(difficulty)
    if k == 0:
        return [rng.randint(5, 10)]
    if k == 5 and difficulty >= 4:
        return [rng.choice([0, 1])]
    if k == 1:
        return [rng.randint(max(2, top * 3 // 4), top)]
    return [rng.randint(2, top)]


PROBLEM = ProblemType(
    name="fibonacci", entry_point="fibonacci", signature="def fibonacci(n: int) -> int:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case,
    scale=lambda d: {"max_n": _top(d), "zero_or_one": d >= 4},
)
