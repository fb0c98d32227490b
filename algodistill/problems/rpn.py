"""rpn: evaluate an expression in Reverse Polish Notation.

Difficulty scales the number of operators (1 to 12), the operator set (+ - at 1-2, then *, then / from
5), the number range, and negative operands (from 4). From difficulty 6 an instance always has a test
where truncating division toward zero gives a different answer than Python's ``//``.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def eval_rpn(tokens):
    stack = []
    for token in tokens:
        if token in ("+", "-", "*", "/"):
            right = stack.pop()
            left = stack.pop()
            if token == "+":
                stack.append(left + right)
            elif token == "-":
                stack.append(left - right)
            elif token == "*":
                stack.append(left * right)
            else:
                quotient = abs(left) // abs(right)
                stack.append(quotient if (left >= 0) == (right >= 0) else -quotient)
        else:
            stack.append(int(token))
    return stack[-1]
'''

CONTRACT = """\
`tokens` is a valid expression in Reverse Polish (postfix) notation: each token is an integer literal
(possibly negative, such as "-7") or one of the operators "+", "-", "*", "/". Apply each operator to the
two values before it (left operand first). "/" is integer division that truncates toward zero
(7 / -2 == -3). The expression never divides by zero. Return the value of the expression as an int."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('evaluates a Reverse Polish Notation expression given as a list of string tokens (integers, possibly '
           'negative, and the operators + - * /) and returns its value as an int; `/` truncates toward zero'),
    stub_name='postfix_value', stub_args=('items',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('evaluate_postfix', ('expression',)), ('rpn_calc', ('parts',)), ('postfix_eval', ('symbols',))),
    docstring="""\
Evaluate the postfix (RPN) expression `items` and return its value as an int.

`items` is a list of string tokens: integer literals (possibly negative, like "-7") and the operators
"+", "-", "*", "/". An operator applies to the two values before it, left operand first. "/" is
integer division that truncates toward zero (7 / -2 == -3); there is never a division by zero.""",
)


def _operators(difficulty: int) -> str:
    return "+-" if difficulty <= 2 else "+-*" if difficulty <= 4 else "+-*/"


def _tree(rng, n_ops: int, ops: str, lo: int, hi: int):
    if n_ops == 0:
        return rng.randint(lo, hi)
    left = rng.randint(0, n_ops - 1)
    return (rng.choice(ops), _tree(rng, left, ops, lo, hi), _tree(rng, n_ops - 1 - left, ops, lo, hi))


def _postfix(node, out: list[str]) -> list[str]:
    if isinstance(node, int):
        out.append(str(node))
    else:
        _postfix(node[1], out)
        _postfix(node[2], out)
        out.append(node[0])
    return out


def make_case(rng, difficulty: int, k: int) -> list:
    n_ops = rng.randint(1, 2) if k == 0 else rng.randint(max(1, lerp(difficulty, 1, 8)), lerp(difficulty, 1, 12))
    hi = lerp(difficulty, 9, 99)
    lo = -hi if difficulty >= 4 else 0
    while True:
        tokens = _postfix(_tree(rng, n_ops, _operators(difficulty), lo, hi), [])
        if _evaluate(tokens) is None:
            continue
        return [tokens]


def _evaluate(tokens: list[str], floor: bool = False) -> int | None:
    """The value (None on division by zero); ``floor=True`` is the classic ``//`` mistake."""
    stack: list[int] = []
    for token in tokens:
        if len(token) == 1 and token in "+-*/":
            right, left = stack.pop(), stack.pop()
            if token == "/":
                if right == 0:
                    return None
                q = abs(left) // abs(right)
                stack.append(left // right if floor else q if (left >= 0) == (right >= 0) else -q)
            else:
                stack.append({"+": left + right, "-": left - right, "*": left * right}[token])
        else:
            stack.append(int(token))
    return stack[-1]


def accept(tests, difficulty: int) -> bool:
    return difficulty < 6 or any(_evaluate(t.args[0], floor=True) != t.expected for t in tests)


PROBLEM = ProblemType(
    name="rpn", entry_point="eval_rpn", signature="def eval_rpn(tokens: list[str]) -> int:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"operators": _operators(d), "max_ops": lerp(d, 1, 12), "max_abs_number": lerp(d, 9, 99),
                     "negatives": d >= 4},
)
