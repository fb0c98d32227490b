"""parentheses: decide whether the brackets in a string are balanced and properly nested.

Difficulty scales length (2 to 60 brackets), nesting depth, the bracket kinds (only () at 1-2, ()[] at
3-4, ()[]{} from 5), other characters mixed in (from 7) and the empty string (from 6). Every instance has
an unbalanced test whose bracket counts match, so counting alone fails.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def is_balanced(s):
    closer_to_opener = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in s:
        if char in "([{":
            stack.append(char)
        elif char in closer_to_opener:
            if not stack or stack.pop() != closer_to_opener[char]:
                return False
    return not stack
'''

CONTRACT = """\
Return True if every bracket in `s` is closed by a bracket of the same kind, in the correct order
(properly nested), and False otherwise. The brackets are (), [] and {}; every other character is
ignored. The empty string is balanced."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns True if the brackets (), [] and {} in the string `s` are all matched and properly nested, '
           'ignoring every other character (so "" is balanced), and False otherwise'),
    stub_name='brackets_match', stub_args=('text',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('balanced', ('expr',)), ('valid_brackets', ('chars',)), ('check_nesting', ('code',))),
    docstring="""\
Return True if every bracket in `text` is closed by a bracket of the same kind in the right order
(properly nested), else False.

The brackets are (), [] and {}; all other characters are ignored. An empty text is balanced.""",
)

PAIRS = ["()", "[]", "{}"]
FILLER = "abcxyz0123+-*= "


def _kinds(difficulty: int) -> list[str]:
    return PAIRS[:1] if difficulty <= 2 else PAIRS[:2] if difficulty <= 4 else PAIRS


def _balanced(rng, n_pairs: int, kinds: list[str], max_depth: int) -> str:
    out, stack = [], []
    remaining = n_pairs
    while remaining or stack:
        if remaining and (not stack or (len(stack) < max_depth and rng.random() < 0.55)):
            pair = rng.choice(kinds)
            out.append(pair[0])
            stack.append(pair[1])
            remaining -= 1
        else:
            out.append(stack.pop())
    return "".join(out)


def _break(rng, text: str, kinds: list[str]) -> str:
    """Make a balanced string unbalanced: a swap keeps every count equal, so counting cannot tell."""
    chars = list(text)
    closers = [i for i, c in enumerate(chars) if c in ")]}"]
    crossable = [(i, j) for i in closers for j in closers if i < j and chars[i] != chars[j]]
    mode = rng.choice(["swap", "cross", "drop", "extra"])
    if mode == "cross" and crossable:  # "([])" -> "([)]"
        i, j = rng.choice(crossable)
        chars[i], chars[j] = chars[j], chars[i]
    elif mode in ("swap", "cross"):  # "()" -> ")("
        i = rng.choice([i for i in range(len(chars) - 1) if chars[i] != chars[i + 1]])
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    elif mode == "drop":
        del chars[rng.randrange(len(chars))]
    else:
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(kinds)[rng.randrange(2)])
    return "".join(chars)


def _sprinkle(rng, text: str, difficulty: int) -> str:
    if difficulty < 7:
        return text
    out = []
    for char in text:
        while rng.random() < 0.3:
            out.append(rng.choice(FILLER))
        out.append(char)
    return "".join(out)


def make_case(rng, difficulty: int, k: int) -> list:
    if k == 5 and difficulty >= 6 and rng.random() < 0.5:
        return [""]
    kinds = _kinds(difficulty)
    n_pairs = rng.randint(1, 3) if k == 0 else rng.randint(1, lerp(difficulty, 2, 30))
    text = _balanced(rng, n_pairs, kinds, lerp(difficulty, 2, 10))
    if rng.random() < 0.5:
        text = _break(rng, text, kinds)
    return [_sprinkle(rng, text, difficulty)]


def _counts_match(text: str) -> bool:
    return all(text.count(p[0]) == text.count(p[1]) for p in PAIRS)


def accept(tests, difficulty: int) -> bool:
    answers = [t.expected for t in tests]
    tricky = any(not t.expected and _counts_match(t.args[0]) for t in tests)
    return answers.count(True) >= 2 and answers.count(False) >= 2 and tricky


PROBLEM = ProblemType(
    name="parentheses", entry_point="is_balanced", signature="def is_balanced(s: str) -> bool:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"bracket_kinds": "".join(_kinds(d)), "max_pairs": lerp(d, 2, 30),
                     "max_depth": lerp(d, 2, 10), "other_characters": d >= 7, "empty_string": d >= 6},
)
