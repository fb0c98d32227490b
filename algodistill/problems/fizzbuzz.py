"""fizzbuzz: the FizzBuzz sequence from 1 to n as a list of strings.

Difficulty scales n (up to 15 at 1, up to 300 at 10) and adds edge cases: n = 0 (from 6), n = 1, and n
just around a multiple of 15.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

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

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the FizzBuzz list of strings for 1 to n ("Fizz" for multiples of 3, "Buzz" for multiples of '
           '5, "FizzBuzz" for both, otherwise the number itself as a string; an empty list for n = 0)'),
    stub_name='fizz_buzz_list', stub_args=('count',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('fizz_buzz', ('limit',)), ('play_fizzbuzz', ('upto',)), ('fizzbuzz_words', ('total',))),
    docstring="""\
Return a list of `count` strings, one per integer i = 1 .. count in order.

The string is "FizzBuzz" if i is divisible by 3 and 5, "Fizz" if only by 3, "Buzz" if only by 5, and
otherwise i in decimal (e.g. "7"). count >= 0; for 0 the list is empty.""",
)


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
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case,
    scale=lambda d: {"max_n": lerp(d, 15, 300), "zero_or_one": d >= 6, "around_multiple_of_15": d >= 3},
)
