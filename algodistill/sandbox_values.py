"""Typed plain values across the sandbox's pipe: tuples, sets, bytes and non-string keys survive, nothing else.

JSON turns a tuple into a list and refuses a set, and tests written as code (HumanEval's asserts) compare
``candidate(x) == (1, 2)``. So a value that must reach a test as exactly what the program returned crosses as
*typed* JSON: None, bools, ints, strs and finite floats as themselves, every other value as a JSON array whose
first item names its type (``["tuple", 1, 2]``, ``["dict", [k, v], ...]``, ``["float", "nan"]``). Only these
builtin types exist at the far end: an object of a subclass (a ``float`` whose ``__eq__`` is always true)
crosses as its plain base value, and anything else cannot cross at all. ``decode`` builds fresh builtin
objects, so what a test compares is data the program's code can no longer influence.

This file has no imports and is used two ways: imported by the parent, and its text prepended to the sandbox
child (``sandbox.py``) and to the program that runs code tests (``code_tests.py``), where only the standard
library exists.
"""

_TYPED_MAX_DEPTH = 200


def _typed_encode(value, depth=0):
    """``value`` as typed JSON data (lists, strs, numbers, None); TypeError for what cannot cross."""
    if value is None or value is True or value is False:
        return value
    if depth > _TYPED_MAX_DEPTH:
        raise ValueError("the value is nested more than %d levels deep" % _TYPED_MAX_DEPTH)
    if isinstance(value, bool):  # a bool subclass cannot exist; kept for clarity of the order below
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        plain = float.__float__(value)
        if plain != plain:
            return ["float", "nan"]
        if plain in (float("inf"), float("-inf")):
            return ["float", "inf" if plain > 0 else "-inf"]
        return plain
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        return ["complex", _typed_encode(value.real, depth + 1), _typed_encode(value.imag, depth + 1)]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, list):
        return ["list"] + [_typed_encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return ["tuple"] + [_typed_encode(v, depth + 1) for v in tuple.__iter__(value)]
    if isinstance(value, frozenset):
        return ["frozenset"] + [_typed_encode(v, depth + 1) for v in frozenset.__iter__(value)]
    if isinstance(value, set):
        return ["set"] + [_typed_encode(v, depth + 1) for v in set.__iter__(value)]
    if isinstance(value, dict):
        return ["dict"] + [[_typed_encode(k, depth + 1), _typed_encode(v, depth + 1)]
                           for k, v in dict.items(value)]
    raise TypeError("a value of type %s cannot be judged: only None, bool, int, float, complex, str, bytes, "
                    "list, tuple, set, frozenset and dict cross to the test" % type(value).__name__)


def _typed_decode(data, depth=0):
    """Fresh builtin objects from typed JSON data; ValueError for anything malformed."""
    if data is None or type(data) in (bool, int, str):
        return data
    if type(data) is float:
        return data
    if type(data) is not list or not data or type(data[0]) is not str:
        raise ValueError("malformed typed value")
    if depth > _TYPED_MAX_DEPTH:
        raise ValueError("the value is nested more than %d levels deep" % _TYPED_MAX_DEPTH)
    tag, items = data[0], data[1:]
    if tag == "list":
        return [_typed_decode(v, depth + 1) for v in items]
    if tag == "tuple":
        return tuple(_typed_decode(v, depth + 1) for v in items)
    try:
        if tag == "set":
            return set(_typed_decode(v, depth + 1) for v in items)
        if tag == "frozenset":
            return frozenset(_typed_decode(v, depth + 1) for v in items)
        if tag == "dict":
            out = {}
            for pair in items:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed typed dict")
                out[_typed_decode(pair[0], depth + 1)] = _typed_decode(pair[1], depth + 1)
            return out
    except TypeError:  # an unhashable key or member
        raise ValueError("malformed typed value (unhashable key)") from None
    if tag == "float" and len(items) == 1 and items[0] in ("nan", "inf", "-inf"):
        return float(items[0])
    if tag == "complex" and len(items) == 2 and all(type(v) in (int, float) for v in items):
        return complex(items[0], items[1])
    if tag == "bytes" and len(items) == 1 and type(items[0]) is str:
        try:
            return bytes.fromhex(items[0])
        except ValueError:
            raise ValueError("malformed typed bytes") from None
    raise ValueError("malformed typed value")


encode = _typed_encode
decode = _typed_decode
