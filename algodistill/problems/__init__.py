"""The registry of problem types and the helpers that build instances and evaluation grids.

Problem type names are fixed (users know them). ``make_instance`` is the one way to get an instance;
``grid`` enumerates the problem-type x difficulty x index cells of an evaluation; ``overlap`` is the
check that an evaluation set shares no problem with a training set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from . import (arithmetic, binary_search, fibonacci, fizzbuzz, is_palindrome, max_subarray, parentheses,
               remove_duplicates, reverse_string, rpn, two_sum)
from .base import (DIFFICULTIES, EVAL_SEED, N_TESTS, TRAIN_SEED, Instance, ProblemType, TestCase,
                   build_instance, check_difficulty)

REGISTRY: dict[str, ProblemType] = {
    module.PROBLEM.name: module.PROBLEM
    for module in (rpn, arithmetic, parentheses, fizzbuzz, reverse_string, is_palindrome, fibonacci,
                   binary_search, two_sum, max_subarray, remove_duplicates)
}
PROBLEM_TYPES: tuple[str, ...] = tuple(REGISTRY)
REFERENCE_DIFFICULTIES = (1, 3, 5, 7, 10)


def get(name: str) -> ProblemType:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown problem type {name!r}; known types: {', '.join(PROBLEM_TYPES)}") from None


@lru_cache(maxsize=4096)
def make_instance(problem: str, difficulty: int, seed: int = EVAL_SEED, index: int = 0) -> Instance:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**31:
        raise ValueError(f"index must be an integer from 0 to 2**31-1, got {index!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -2**63 <= seed < 2**63:
        raise ValueError(f"seed must be a 64-bit integer, got {seed!r}")  # what runs.db can store
    return build_instance(get(problem), check_difficulty(difficulty), seed, index)


def choice_problem(problems: list[str], known: Iterable[str] | None = PROBLEM_TYPES) -> str | None:
    """Why a settings' chosen problem types cannot be used (unknown ones, or none at all), or None. ``known``
    None accepts any name (a benchmark's own problems)."""
    unknown = [p for p in problems if p not in known] if known is not None else []
    if unknown:
        return f"unknown problem type(s) {unknown}; choose from {', '.join(PROBLEM_TYPES)}"
    return None if problems else "choose at least one problem type"


def grid(problems: Iterable[str] = PROBLEM_TYPES, difficulties: Iterable[int] = REFERENCE_DIFFICULTIES,
         seed: int = EVAL_SEED, per_cell: int = 1) -> list[Instance]:
    """Every (problem, difficulty, index) cell, in a stable order: problem-major, then difficulty."""
    return [make_instance(p, d, seed, i) for p in problems for d in difficulties for i in range(per_cell)]


def overlap(train: Iterable[Instance], evaluation: Iterable[Instance]) -> list[tuple[Instance, Instance]]:
    """Pairs (train, eval) that are the same problem: same example and tests, whatever their keys."""
    seen = {inst.fingerprint(): inst for inst in train}
    return [(seen[e.fingerprint()], e) for e in evaluation if e.fingerprint() in seen]


__all__ = ["DIFFICULTIES", "EVAL_SEED", "N_TESTS", "PROBLEM_TYPES", "REFERENCE_DIFFICULTIES", "REGISTRY",
           "TRAIN_SEED", "Instance", "ProblemType", "TestCase", "get", "grid", "make_instance", "overlap"]
