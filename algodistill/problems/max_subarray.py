"""max_subarray: the largest sum of a non-empty contiguous subarray.

Difficulty scales the list length (up to 8 at 1, up to 1000 at 10) and value range, and adds edge
cases: a single element (from 3) and all-negative lists, where the answer is the largest element (from 5).
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def max_subarray(nums):
    best = current = nums[0]
    for value in nums[1:]:
        current = value if current < 0 else current + value
        if current > best:
            best = current
    return best
'''

CONTRACT = """\
`nums` is a non-empty list of integers (possibly all negative). Return the largest sum of any non-empty
contiguous subarray nums[i:j]. The list can be long, so aim for linear time."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the largest sum of any non-empty contiguous subarray of the non-empty list of ints `nums` '
           '(which may be all negative)'),
    stub_name='best_run_sum', stub_args=('values',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('max_contiguous_sum', ('arr',)), ('kadane', ('numbers',)), ('largest_sum', ('seq',))),
    docstring="""\
Return the largest sum of a non-empty run of consecutive entries values[i:j].

`values` is a non-empty list of ints, possibly all negative, and may be long (aim for linear time).""",
)


def make_case(rng, difficulty: int, k: int) -> list:
    bound = lerp(difficulty, 9, 1000)
    if k == 5 and difficulty >= 5:
        size = rng.randint(1, lerp(difficulty, 3, 50))
        return [[rng.randint(-bound, -1) for _ in range(size)]]
    if k == 4 and difficulty >= 3 and rng.random() < 0.5:
        return [[rng.randint(-bound, bound)]]
    size = rng.randint(4, 8) if k == 0 else rng.randint(max(2, lerp(difficulty, 2, 300)), lerp(difficulty, 8, 1000))
    return [[rng.randint(-bound, bound) for _ in range(size)]]


PROBLEM = ProblemType(
    name="max_subarray", entry_point="max_subarray", signature="def max_subarray(nums: list[int]) -> int:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case,
    scale=lambda d: {"max_length": lerp(d, 8, 1000), "max_abs_value": lerp(d, 9, 1000),
                     "single_element": d >= 3, "all_negative": d >= 5},
)
