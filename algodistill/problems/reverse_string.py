"""reverse_string: reverse the characters of a string.

Difficulty scales length (up to 6 at 1, up to 80 at 10) and the alphabet: lowercase letters, then spaces
(3), digits, capitals and punctuation (5), non-ASCII letters (7); the empty string and one-character
strings appear from 8.
"""

from __future__ import annotations

import string

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def reverse_string(s):
    return s[::-1]
'''

CONTRACT = """\
Return a new string with the characters of `s` in reverse order. Every character counts, including
spaces, punctuation, digits and non-ASCII letters such as "é" or "ß"; case is preserved. The empty string
reverses to itself."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the string `s` reversed character by character (every character, including spaces, '
           'punctuation and non-ASCII letters, keeps its case)'),
    stub_name='backwards', stub_args=('text',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('reverse', ('word',)), ('flip', ('line',)), ('reversed_text', ('phrase',))),
    docstring="""\
Return a new string holding the characters of `text` in reverse order.

Every character counts: spaces, punctuation, digits and non-ASCII letters (such as "é"); case is kept.
The empty string reverses to itself.""",
)


def _alphabet(difficulty: int) -> str:
    chars = string.ascii_lowercase
    if difficulty >= 3:
        chars += "  "
    if difficulty >= 5:
        chars += string.digits + string.ascii_uppercase + ",.!?;:'-"
    if difficulty >= 7:
        chars += "éèßüñøåçλΩжЯ"
    return chars


def make_case(rng, difficulty: int, k: int) -> list:
    if k == 5 and difficulty >= 8:
        return [rng.choice(["", rng.choice(_alphabet(difficulty))])]
    length = rng.randint(3, 6) if k == 0 else rng.randint(max(2, lerp(difficulty, 2, 40)), lerp(difficulty, 6, 80))
    alphabet = _alphabet(difficulty)
    return ["".join(rng.choice(alphabet) for _ in range(length))]


PROBLEM = ProblemType(
    name="reverse_string", entry_point="reverse_string", signature="def reverse_string(s: str) -> str:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case,
    scale=lambda d: {"max_length": lerp(d, 6, 80), "spaces": d >= 3, "punctuation_digits_caps": d >= 5,
                     "non_ascii": d >= 7, "empty_or_single": d >= 8},
)
