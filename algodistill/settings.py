"""Settings dataclasses as the one source of a run's knobs: their checks, CLI flags and form fields.

Each field's metadata (``bounded`` for numbers, ``option`` for the rest) carries its label (errors, forms),
its help text (``--help``), its flag name when it is not the field's, and whether the CLI and the forms offer
it. ``add_flags`` makes the argparse flags of a dataclass, ``from_flags`` the settings from parsed flags (by
field name), ``form_fields`` the names a form shows in field order, and ``form_label`` their labels. Adding a
knob is one field.

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
            below: bool = False, label: str | None = None, each: bool = False, default_factory: Any = MISSING,
            **interface: Any) -> Any:
    """A dataclass field holding a number in [lo, hi]; ``above``/``below`` exclude lo/hi; ``each``: a list of
    such numbers. The field's kind (int or float) is its default's. ``interface``: as for ``option``."""
    return option(default, label=label, default_factory=default_factory, range=(lo, hi, above, below), each=each,
                  **interface)


def option(default: Any = MISSING, *, help: str | None = None, label: str | None = None, flag: str | None = None,
           metavar: str | None = None, choices: tuple | None = None, cli: bool | None = None, form: str | bool = False,
           cli_default: Any = MISSING, item: Any = None, default_factory: Any = MISSING, **more: Any) -> Any:
    """A settings field with what the interfaces need: ``help`` (a field with help is a CLI flag unless
    ``cli`` says otherwise; "%(default)s" is filled in, and "(default ...)" added when the text has no
    "default"), ``label`` (errors and forms; default: the name in words), ``flag`` (default ``--the-name``),
    ``metavar``, ``choices``, ``form`` (the form group, a row, it shows in; false: forms leave it out),
    ``cli_default`` (the flag's default when it is
    not the field's: None leaves the field's, e.g. one derived from another flag) and ``item`` (argparse type
    of a value, or of each value of a list)."""
    metadata = {"label": label, "help": help, "flag": flag, "metavar": metavar, "choices": choices,
                "cli": bool(help) if cli is None else cli, "form": form, "item": item, **more}
    if cli_default is not MISSING:
        metadata["cli_default"] = cli_default
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def label(f: Field) -> str:
    return f.metadata.get("label") or f.name.replace("_", " ")


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def add_flags(parser: Any, cls: type) -> None:
    """One argparse flag per field of ``cls`` that offers one, in field order, each stored under the field's
    own name (``from_flags`` reads them back by name): numbers typed by their default, booleans as
    ``--x/--no-x``, lists as several values."""
    import argparse
    for f in fields(cls):
        meta = f.metadata
        if not meta.get("cli"):
            continue
        default = meta.get("cli_default", _default(f))
        text = meta.get("help") or ""
        if "default" not in text:
            text += " (default %(default)s)"
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": text.strip()}
        sample = _default(f)
        if isinstance(sample, bool) or meta.get("boolean"):  # "boolean": a yes/no whose None means "auto"
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            if isinstance(sample, list):
                kwargs["nargs"] = "+"
                sample = sample[0] if sample else ""
            kwargs["type"] = meta.get("item") or (type(sample) if isinstance(sample, (int, float, str)) else str)
            for key in ("metavar", "choices"):
                if meta.get(key):
                    kwargs[key] = meta[key]
        parser.add_argument(meta.get("flag") or "--" + f.name.replace("_", "-"), **kwargs)


def from_flags(cls: type, args: Any, **fixed: Any) -> Any:
    """The settings the parsed flags ``args`` give (by field name; a flag left at None keeps the field's
    default), with ``fixed`` on top."""
    given = {f.name: getattr(args, f.name) for f in fields(cls)
             if f.metadata.get("cli") and getattr(args, f.name, None) is not None}
    return cls(**{**given, **fixed})


def stored(cls: type, data: dict) -> Any:
    """Settings of ``cls`` rebuilt from a stored run's settings: its own fields, unknown keys (a newer version's,
    or what the run added, such as ``sandbox``) ignored."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def form_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields a form of ``cls`` shows, in field order."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("form"))


def form_label(cls: type, name: str) -> str:
    """A field's label as a form shows it: its label with a capital first letter."""
    text = label(next(f for f in fields(cls) if f.name == name))
    return text[:1].upper() + text[1:]


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
        if not f.metadata.get("range"):
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
        if not f.metadata.get("range"):
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
