"""fizzbuzz: the FizzBuzz sequence from 1 to n as a list of strings.

Difficulty scales n (up to 15 at 1, up to 300 at 10) and adds edge cases: n = 0 (from 6), n = 1, and n
just around a multiple of 15.
"""

from __future__ import annotations

from .base import ProblemType, lerp

REFERENCE = '''\
def fizzbuzz(n):
    result = []
    for i in range(1, n + 1):
        if i % 15 == 0:
            result.append("FizzBuzz")
        elif i % 3 == 0:
            result.append("Fizz")
        elif i % 5 == 0:
            result.append("Buzz")
        else:
            result.append(str(i))
    return result
'''

CONTRACT = """\
Return a list of n strings, one for each integer i from 1 to n in order: "FizzBuzz" if i is divisible by
both 3 and 5, "Fizz" if only by 3, "Buzz" if only by 5, and otherwise i written in decimal (for
example "7"). n >= 0; for n = 0 return an empty list."""


def make_case(rng, difficulty: int, k: int) -> list:
    top = lerp(difficulty, 15, 300)
    if k == 0:
        return [rng.randint(5, 10)]
    if k == 5 and difficulty >= 6:
        return [rng.choice([0, 1])]
    if k == 4 and difficulty >= 3:
        return [15 * rng.randint(1, max(1, top // 15)) + rng.choice([-1, 0, 1])]
    return [rng.randint(max(1, top // 3), top)]


PROBLEM = ProblemType(
    name="fizzbuzz", entry_point="fizzbuzz", signature="def fizzbuzz(n: int) -> list[str]:",
    contract=CONTRACT, reference=REFERENCE, make_case=make_case,
    scale=lambda d: {"max_n": lerp(d, 15, 300), "zero_or_one": d >= 6, "around_multiple_of_15": d >= 3},
)
