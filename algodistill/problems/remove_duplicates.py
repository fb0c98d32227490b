"""remove_duplicates: drop repeated values, keeping the first occurrence of each, in order.

Difficulty scales the list length (up to 8 at 1, up to 5000 at 10: quadratic solutions slow down), the
share of repeats, negatives (from 4), and edge cases: an empty list and a list of one repeated value
(from 6). Every instance has a test where the first-occurrence order differs from sorted order, so
``list(set(nums))`` and ``sorted(set(nums))`` fail.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def remove_duplicates(nums):
    seen = set()
    result = []
    for value in nums:
        if value not in seen:
            seen.add(value)
            result.append(value)
    return result
'''

CONTRACT = """\
Return a new list with the values of `nums` in their original order, keeping only the first occurrence of
each value. Do not sort. An empty list gives an empty list. The list can be long, so aim for linear time."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns a new list of the values of `nums` without repeats, keeping the first occurrence of each in '
           'the original order (no sorting)'),
    stub_name='unique_in_order', stub_args=('values',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('dedupe', ('items',)), ('unique', ('seq',)), ('drop_repeats', ('numbers',))),
    docstring="""\
Return a new list of the entries of `values` in their original order, keeping only the first
occurrence of each value.

Do not sort. An empty list gives an empty list; the list may be long (aim for linear time).""",
)


def make_case(rng, difficulty: int, k: int) -> list:
    if k == 5 and difficulty >= 6 and rng.random() < 0.5:
        return rng.choice([[[]], [[rng.randint(-9, 9)] * rng.randint(2, 20)]])
    size = rng.randint(5, 8) if k == 0 else rng.randint(max(2, lerp(difficulty, 2, 1000)), lerp(difficulty, 8, 5000))
    distinct = max(1, int(size * rng.uniform(0.3, 0.8)))
    low = -distinct if difficulty >= 4 else 0
    pool = [rng.randint(low, low + 3 * distinct) for _ in range(distinct)]
    return [[rng.choice(pool) for _ in range(size)]]


def accept(tests, difficulty: int) -> bool:
    return any(t.expected != sorted(t.expected) for t in tests)


PROBLEM = ProblemType(
    name="remove_duplicates", entry_point="remove_duplicates",
    signature="def remove_duplicates(nums: list[int]) -> list[int]:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"max_length": lerp(d, 8, 5000), "negatives": d >= 4, "empty_or_constant": d >= 6},
)
