"""arithmetic: evaluate an infix integer expression with operator precedence and parentheses.

Difficulty scales the number of operators (2 to 12), parenthesis nesting depth (0 to 4), the operator set
(/ from 5), number size, unary minus (from 8) and irregular whitespace (from 6). Every instance has a
test where evaluating strictly left to right gives a different answer, so ignoring precedence fails.
"""

from __future__ import annotations

from .base import ProblemType, Wording, lerp

REFERENCE = '''\
def evaluate(expression):
    tokens = []
    i = 0
    while i < len(expression):
        char = expression[i]
        if char.isspace():
            i += 1
        elif char.isdigit():
            j = i
            while j < len(expression) and expression[j].isdigit():
                j += 1
            tokens.append(int(expression[i:j]))
            i = j
        else:
            tokens.append(char)
            i += 1
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def parse_sum():
        nonlocal pos
        value = parse_product()
        while peek() in ("+", "-"):
            op = tokens[pos]
            pos += 1
            right = parse_product()
            value = value + right if op == "+" else value - right
        return value

    def parse_product():
        nonlocal pos
        value = parse_unary()
        while peek() in ("*", "/"):
            op = tokens[pos]
            pos += 1
            right = parse_unary()
            if op == "*":
                value = value * right
            else:
                quotient = abs(value) // abs(right)
                value = quotient if (value >= 0) == (right >= 0) else -quotient
        return value

    def parse_unary():
        nonlocal pos
        if peek() == "-":
            pos += 1
            return -parse_unary()
        if peek() == "(":
            pos += 1
            value = parse_sum()
            pos += 1  # the matching ")"
            return value
        value = tokens[pos]
        pos += 1
        return value

    return parse_sum()
'''

CONTRACT = """\
`expression` is a valid arithmetic expression over non-negative integer literals with the binary
operators + - * /, parentheses, and unary minus (as in "-(2+3)" or "4*-2"). Spaces may appear anywhere
between tokens, or not at all. * and / bind tighter than + and -; operators of equal precedence apply
left to right. "/" is integer division that truncates toward zero (-7/2 == -3). The expression never
divides by zero. Return its value as an int."""

WORDING = Wording(  # the other prompt styles (styles.py); the tests are the same
    terse=('returns the int value of an infix arithmetic expression string with non-negative integers, + - * /, '
           'parentheses, unary minus and any spacing, with the usual precedence and left-to-right order; `/` is '
           'integer division truncating toward zero'),
    stub_name='calculate', stub_args=('text',),
    # other names for training prompts (build_varied_traces.py); the evaluation never asks with these
    aliases=(('eval_expression', ('expr',)), ('compute', ('formula',)), ('infix_value', ('source',))),
    docstring="""\
Return the value (an int) of the arithmetic expression in `text`.

`text` uses non-negative integer literals, the binary operators + - * /, parentheses and unary minus
("-(2+3)", "4*-2"), with spaces anywhere between tokens or none. * and / bind tighter than + and -;
equal precedence applies left to right. "/" is integer division that truncates toward zero
(-7/2 == -3); there is never a division by zero.""",
)

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _operators(difficulty: int) -> str:
    return "+-*" if difficulty < 5 else "+-*/"


def _value(node) -> int:
    if isinstance(node, int):
        return node
    if node[0] == "neg":
        return -_value(node[1])
    a, b = _value(node[1]), _value(node[2])
    if node[0] == "/":
        q = abs(a) // abs(b)  # raises ZeroDivisionError, which make_case retries on
        return q if (a >= 0) == (b >= 0) else -q
    return {"+": a + b, "-": a - b, "*": a * b}[node[0]]


def _tree(rng, n_ops: int, ops: str, hi: int, unary: bool):
    if n_ops == 0:
        leaf = rng.randint(0, hi)
        return ("neg", leaf) if unary and rng.random() < 0.15 else leaf
    left = rng.randint(0, n_ops - 1)
    node = (rng.choice(ops), _tree(rng, left, ops, hi, unary), _tree(rng, n_ops - 1 - left, ops, hi, unary))
    return ("neg", node) if unary and rng.random() < 0.1 else node


def _render(node, rng, extra_parens: float, sep) -> str:
    if isinstance(node, int):
        return str(node)
    if node[0] == "neg":
        inner = _render(node[1], rng, extra_parens, sep)
        return "-" + (inner if isinstance(node[1], int) else f"({inner})")
    op, left, right = node
    parts = []
    for child, is_right in ((left, False), (right, True)):
        text = _render(child, rng, extra_parens, sep)
        if isinstance(child, tuple) and child[0] != "neg":
            needed = PRECEDENCE[child[0]] < PRECEDENCE[op] or (
                is_right and PRECEDENCE[child[0]] == PRECEDENCE[op] and op in "-/")
            if needed or rng.random() < extra_parens:
                text = f"({text})"
        parts.append(text)
    return f"{parts[0]}{sep()}{op}{sep()}{parts[1]}"


def _depth(text: str) -> int:
    depth = best = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        best = max(best, depth)
    return best


def make_case(rng, difficulty: int, k: int) -> list:
    n_ops = 2 if k == 0 else rng.randint(2, lerp(difficulty, 2, 12))
    max_depth = lerp(difficulty, 0, 4)
    hi = lerp(difficulty, 9, 999)
    ragged = difficulty >= 6

    def sep() -> str:
        return rng.choice(["", " ", "  "]) if ragged else " "

    while True:
        tree = _tree(rng, n_ops, _operators(difficulty), hi, unary=difficulty >= 8)
        try:
            _value(tree)
        except ZeroDivisionError:
            continue
        text = _render(tree, rng, 0.3 if max_depth else 0.0, sep)
        if _depth(text) <= max_depth:
            return [text]


def _left_to_right(expression: str) -> int | None:
    """What a solution that ignores precedence would answer (None if it cannot even parse it)."""
    try:
        tokens = expression.replace("(", " ( ").replace(")", " ) ")
        for op in "+-*/":
            tokens = tokens.replace(op, f" {op} ")
        items = tokens.split()

        def run(i: int) -> tuple[int, int]:
            value, i = atom(i)
            while i < len(items) and items[i] != ")":
                op = items[i]
                right, i = atom(i + 1)
                value = {"+": value + right, "-": value - right, "*": value * right}.get(op, None) \
                    if op != "/" else int(value / right)
            return value, i

        def atom(i: int) -> tuple[int, int]:
            if items[i] == "-":
                value, i = atom(i + 1)
                return -value, i
            if items[i] == "(":
                value, i = run(i + 1)
                return value, i + 1
            return int(items[i]), i + 1

        return run(0)[0]
    except (ZeroDivisionError, IndexError, ValueError):
        return None


def accept(tests, difficulty: int) -> bool:
    return any(_left_to_right(t.args[0]) != t.expected for t in tests)


PROBLEM = ProblemType(
    name="arithmetic", entry_point="evaluate", signature="def evaluate(expression: str) -> int:",
    contract=CONTRACT, reference=REFERENCE, wording=WORDING, make_case=make_case, accept=accept,
    scale=lambda d: {"operators": _operators(d), "max_ops": lerp(d, 2, 12), "max_paren_depth": lerp(d, 0, 4),
                     "max_number": lerp(d, 9, 999), "unary_minus": d >= 8, "ragged_spaces": d >= 6},
)
