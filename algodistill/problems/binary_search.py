"""binary_search: index of a target in a sorted list of distinct integers, or -1.

Difficulty scales the list length (up to 8 at 1, up to 2000 at 10) and value range (negatives from 4),
and adds edge cases: targets at either end, absent targets below/above/between the values (from 3), an
empty list and a single element (from 6).
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def binary_search(nums, target):
    low, high = 0, len(nums) - 1
    while low <= high:
        middle = (low + high) // 2
        if nums[middle] == target:
            return middle
        if nums[middle] < target:
            low = middle + 1
        else:
            high = middle - 1
    return -1
'''

CONTRACT = """\
`nums` is sorted in strictly increasing order (no duplicates) and may be empty. Return the index i with
nums[i] == target, or -1 if target is not in nums. Use binary search: the list can be long."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the index of `target` in `nums`, a sorted list of distinct ints (possibly empty), or -1 if '
           'it is not there, using binary search'),
    stub_name='find_index', stub_args=('sorted_values', 'wanted'),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('search_sorted', ('arr', 'key')), ('locate', ('items', 'needle')), ('index_of', ('numbers', 'value'))),
    docstring="""\
Return the position i with sorted_values[i] == wanted, or -1 if `wanted` is absent.

`sorted_values` is strictly increasing (no repeats) and may be empty or long: use binary search.""",
)


def make_case(rng, difficulty: int, k: int) -> list:
    if k == 5 and difficulty >= 6 and rng.random() < 0.5:
        return rng.choice([[[], rng.randint(-5, 5)], [[7], 7], [[7], 3]])
    size = rng.randint(4, 8) if k == 0 else rng.randint(max(1, lerp(difficulty, 1, 500)), lerp(difficulty, 8, 2000))
    spread = lerp(difficulty, 3, 20) * size + 10
    low = -spread // 2 if difficulty >= 4 else 0
    nums = sorted(rng.sample(range(low, low + spread), size))
    roll = rng.random()
    if k == 1 and difficulty >= 3:
        target = rng.choice([nums[0], nums[-1], nums[0] - 1, nums[-1] + 1])
    elif roll < 0.6:
        target = rng.choice(nums)
    else:
        missing = sorted(set(range(nums[0] - 1, nums[-1] + 2)) - set(nums))
        target = rng.choice(missing)
    return [nums, target]


PROBLEM = ProblemType(
    name="binary_search", entry_point="binary_search",
    signature="def binary_search(nums: list[int], target: int) -> int:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case,
    scale=lambda d: {"max_length": lerp(d, 8, 2000), "negatives": d >= 4, "boundary_targets": d >= 3,
                     "empty_or_single": d >= 6},
)
