"""two_sum: indices of the only pair of numbers that adds up to a target.

Difficulty scales the list length (2 to 6 at 1, up to 400 at 10), the value range, negatives (from 4)
and duplicated values, including a pair of equal values (from 5). Every generated list has exactly one
answer, and every instance has a test where returning values instead of indices is wrong.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def two_sum(nums, target):
    index_of = {}
    for j, value in enumerate(nums):
        if target - value in index_of:
            return [index_of[target - value], j]
        index_of[value] = j
    return []
'''

CONTRACT = """\
Exactly one pair of positions i < j has nums[i] + nums[j] == target. Return the indices [i, j] (a list of
two ints, smaller index first), not the values. Values may be negative or repeated. The list can be long,
so aim for linear time."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the indices [i, j] with i < j of the only two numbers in `nums` that add up to `target` '
           '(indices, not values)'),
    stub_name='pair_indices', stub_args=('values', 'goal'),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('find_pair', ('numbers', 'total')), ('two_indices', ('arr', 'wanted')), ('pair_sum', ('data', 'k'))),
    docstring="""\
Return [i, j], the positions (not the values) of the two entries of `values` that sum to `goal`.

Exactly one pair i < j has values[i] + values[j] == goal; return the smaller index first. Entries may
be negative or repeated, and the list may be long (aim for linear time).""",
)


def _pairs(nums: list[int], target: int) -> int:
    seen: dict[int, int] = {}
    count = 0
    for value in nums:
        count += seen.get(target - value, 0)
        seen[value] = seen.get(value, 0) + 1
    return count


def make_case(rng, difficulty: int, k: int) -> list:
    size = rng.randint(2, 5) if k == 0 else rng.randint(max(2, lerp(difficulty, 2, 100)), lerp(difficulty, 6, 400))
    spread = max(10, lerp(difficulty, 2, 8) * size)
    low = -spread if difficulty >= 4 else 1
    while True:
        nums = [rng.randint(low, spread) for _ in range(size)]
        i, j = sorted(rng.sample(range(size), 2))
        if k == 2 and difficulty >= 5:
            nums[j] = nums[i]
        target = nums[i] + nums[j]
        if _pairs(nums, target) == 1:
            return [nums, target]


def accept(tests, difficulty: int) -> bool:
    return any(sorted(t.args[0][i] for i in t.expected) != sorted(t.expected) for t in tests)


PROBLEM = ProblemType(
    name="two_sum", entry_point="two_sum", signature="def two_sum(nums: list[int], target: int) -> list[int]:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"max_length": lerp(d, 6, 400), "negatives": d >= 4, "equal_pair": d >= 5},
)
