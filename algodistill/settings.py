"""Checks for settings dataclasses, driven by their fields: one helper instead of an if-chain per form.

A numeric field declares its range in its metadata with ``bounded``; ``number_problems`` then refuses
what argparse, a form or a stored row can carry in but training or evaluation cannot use: NaN, infinities,
booleans, text, a fraction in a whole-number field, a value out of range. Each message names the field as a
user knows it and the value given. Rules that tie fields together (effective batch vs per-device batch) and
path checks stay with the class; this module imports nothing from the package.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, field, fields
from typing import Any


def bounded(default: Any = MISSING, lo: float | None = None, hi: float | None = None, *, above: bool = False,
            below: bool = False, label: str | None = None, each: bool = False, default_factory: Any = MISSING) -> Any:
    """A dataclass field holding a number in [lo, hi]; ``above``/``below`` exclude lo/hi; ``each``: a list of
    such numbers. The field's kind (int or float) is its default's."""
    metadata = {"range": (lo, hi, above, below), "label": label, "each": each}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def label(f: Field) -> str:
    return f.metadata.get("label") or f.name.replace("_", " ")


def _kind(f: Field, value: Any) -> type:
    sample = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else value)
    if f.metadata.get("each"):
        sample = sample[0] if sample else 0
    return int if isinstance(sample, int) and not isinstance(sample, bool) else float


def _describe(lo, hi, above, below) -> str:
    parts = ([f"{'>' if above else '>='} {lo:g}"] if lo is not None else []) + \
            ([f"{'<' if below else '<='} {hi:g}"] if hi is not None else [])
    return " and ".join(parts)


def value_problem(f: Field, value: Any) -> str | None:
    """Why ``value`` cannot be field ``f``'s value (None when it can)."""
    name, kind = label(f), _kind(f, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    if kind is int and value != int(value):
        return f"{name} must be a whole number, got {value}"
    lo, hi, above, below = f.metadata["range"]
    if (lo is not None and (value <= lo if above else value < lo)) or \
            (hi is not None and (value >= hi if below else value > hi)):
        return f"{name} must be {_describe(lo, hi, above, below)}, got {value:g}"
    return None


def number_problems(settings: Any) -> list[str]:
    """Every bounded field of ``settings`` whose value is unusable, as one message each."""
    problems = []
    for f in fields(settings):
        if "range" not in f.metadata:
            continue
        value = getattr(settings, f.name)
        if f.metadata.get("each"):
            if not isinstance(value, (list, tuple)):
                problems.append(f"{label(f)} must be a list of numbers, got {value!r}")
                continue
            problems += sorted({p for v in value if (p := value_problem(f, v))})
        elif problem := value_problem(f, value):
            problems.append(problem)
    return problems


def whole_numbers(settings: Any) -> None:
    """Turn integral floats in int fields into ints (forms and JSON deliver 16.0); leave the rest to the checks."""
    for f in fields(settings):
        if "range" not in f.metadata:
            continue
        value = getattr(settings, f.name)
        if f.metadata.get("each") and isinstance(value, list):
            setattr(settings, f.name, [_whole(f, v) for v in value])
        else:
            setattr(settings, f.name, _whole(f, value))


def _whole(f: Field, value: Any) -> Any:
    if _kind(f, value) is int and isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value
