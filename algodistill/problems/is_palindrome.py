"""is_palindrome: palindrome test that ignores case and everything but ASCII letters and digits.

Difficulty scales length (single words at 1 to long sentences at 10) and the noise around the letters:
mixed case always, spaces from 3, punctuation from 5, digits from 7, and strings with no letters at all
(which count as palindromes) from 9. Every instance has a palindrome that is not one character for
character (from 3: not even after lowercasing), and a near miss that differs from a palindrome in a single letter.
"""

from __future__ import annotations

import string

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def is_palindrome(s):
    kept = [char.lower() for char in s if char.isascii() and char.isalnum()]
    return kept == kept[::-1]
'''

CONTRACT = """\
Return True if `s` reads the same forwards and backwards when only its ASCII letters and digits are
considered and upper/lower case is ignored; otherwise return False. Spaces, punctuation and any other
characters are skipped. A string with no letters or digits (including "") is a palindrome."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns True if the string `s` reads the same forwards and backwards when only its ASCII letters and'
           ' digits are compared, ignoring case, and False otherwise (a string with no letters or digits counts '
           'as a palindrome)'),
    stub_name='reads_same_both_ways', stub_args=('text',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('palindrome_check', ('phrase',)), ('is_pal', ('sentence',)), ('check_palindrome', ('candidate',))),
    docstring="""\
Return True if `text` is a palindrome, else False.

Only the ASCII letters and digits of `text` are compared, and upper/lower case does not matter; spaces,
punctuation and other characters are skipped. A text with no letters or digits (even "") is a
palindrome.""",
)

PUNCTUATION = ",.!?;:'-"


def _core(rng, length: int, difficulty: int) -> str:
    alphabet = string.ascii_lowercase[:10] + (string.digits[:4] if difficulty >= 7 else "")
    half = "".join(rng.choice(alphabet) for _ in range(length // 2))
    middle = rng.choice(alphabet) if length % 2 else ""
    return half + middle + half[::-1]


def _decorate(rng, core: str, difficulty: int) -> str:
    out = []
    for char in core:
        if difficulty >= 3 and rng.random() < 0.25:
            out.append(" ")
        if difficulty >= 5 and rng.random() < 0.15:
            out.append(rng.choice(PUNCTUATION))
        out.append(char.upper() if rng.random() < 0.35 else char)
    if difficulty >= 5 and rng.random() < 0.5:
        out.append(rng.choice("!?."))
    return "".join(out)


def make_case(rng, difficulty: int, k: int) -> list:
    if k == 5 and difficulty >= 9 and rng.random() < 0.5:
        return [rng.choice(["", " ", "?!", ". ,"])]
    length = rng.randint(3, 5) if k == 0 else rng.randint(max(2, lerp(difficulty, 3, 30)), lerp(difficulty, 6, 60))
    core = _core(rng, length, difficulty)
    if rng.random() < 0.5:  # a near miss: change one letter so it no longer mirrors
        i = rng.randrange(len(core) // 2) if len(core) >= 2 else 0
        replacement = rng.choice([c for c in "klmnopqrst" if c != core[i]])
        core = core[:i] + replacement + core[i + 1:]
    return [_decorate(rng, core, difficulty)]


def accept(tests, difficulty: int) -> bool:
    answers = [t.expected for t in tests]
    disguised = any(t.expected and t.args[0] != t.args[0][::-1] for t in tests)
    # from 3 on, lowercasing alone must not be enough: some palindrome needs its spaces/punctuation skipped
    spaced = difficulty < 3 or any(t.expected and t.args[0].lower() != t.args[0].lower()[::-1] for t in tests)
    return answers.count(True) >= 2 and answers.count(False) >= 2 and disguised and spaced


PROBLEM = ProblemType(
    name="is_palindrome", entry_point="is_palindrome", signature="def is_palindrome(s: str) -> bool:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"max_letters": lerp(d, 6, 60), "spaces": d >= 3, "punctuation": d >= 5,
                     "digits": d >= 7, "no_letters": d >= 9},
)
