"""Write assets/traces/reference.jsonl: the bundled teacher traces.

Provenance: the explanations and solutions below were written by hand for algodistill, in this file, by
the project's developers. No teacher model was sampled (they are not from Claude or Gemini). Each trace
pairs one training instance (seed 42) with a step-by-step explanation that works through that
instance's own example and names the usual pitfalls, then a solution in a clean style (no shadowed
builtins). Two wordings and, where natural, two solutions per type give some variety.

Run: python scripts/build_reference_traces.py   (then: python -m algodistill traces verify FILE)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from algodistill.problems import PROBLEM_TYPES, TRAIN_SEED, make_instance  # noqa: E402

TEACHER = "algodistill-authors"
PROVENANCE = ("Hand-written for algodistill by its developers (scripts/build_reference_traces.py); "
              "not sampled from any model, not from Claude or Gemini.")

STEPS = {
    "rpn": [
        "In postfix notation every operator comes after its two operands, so a stack is all we need.",
        "Walk the tokens left to right. A number is pushed onto the stack.",
        "An operator pops two values. The first pop is the RIGHT operand and the second pop is the LEFT "
        "operand; swapping them breaks '-' and '/'.",
        "Compute left op right and push the result. At the end the stack holds exactly the answer.",
        "Pitfalls: a token such as \"-7\" is a negative number, not the minus operator, so compare the whole "
        "token with the four operator strings; and '/' must truncate toward zero, while Python's // floors "
        "(-7 // 2 == -4). Divide the absolute values and put the sign back.",
    ],
    "arithmetic": [
        "Precedence means * and / are applied before + and -, and parentheses override both, so evaluating "
        "strictly left to right is wrong. A small recursive-descent parser handles it cleanly.",
        "First tokenize: skip spaces, read multi-digit numbers whole, and keep each of + - * / ( ) as a token.",
        "parse_sum reads products separated by + or -; parse_product reads unary terms separated by * or /; "
        "parse_unary handles a leading minus, a parenthesized sub-expression, or a number.",
        "Each level loops, so operators of equal precedence are applied left to right (8 - 3 - 2 == 3).",
        "Pitfalls: '/' truncates toward zero (abs values, then restore the sign), a '-' right after another "
        "operator or '(' is unary, and this is not the RPN task: do not use a postfix stack loop here.",
    ],
    "parentheses": [
        "Counting brackets is not enough: \")(\" and \"([)]\" have matching counts but are not nested "
        "properly. The right tool is a stack of open brackets.",
        "Scan the string. Push every opening bracket. Ignore characters that are not brackets.",
        "On a closing bracket, the stack must be non-empty and its top must be the opener of the SAME kind; "
        "compare the popped opener with the opener that matches this closer, never the closer with the "
        "opener directly.",
        "At the end the string is balanced only if the stack is empty (nothing left open). The empty string "
        "is balanced.",
    ],
    "fizzbuzz": [
        "Build the list for i = 1..n, inclusive, so range(1, n + 1).",
        "Check divisibility by 15 first: a number divisible by both 3 and 5 must become \"FizzBuzz\", and "
        "testing 3 or 5 first would stop at \"Fizz\" or \"Buzz\".",
        "Then 3 gives \"Fizz\", 5 gives \"Buzz\", and anything else is the number as a string, str(i).",
        "The result holds strings only, and n = 0 gives an empty list.",
    ],
    "reverse_string": [
        "Reversing keeps every character, including spaces, punctuation, digits and non-ASCII letters, and "
        "keeps their case; only the order changes.",
        "Python strings are sequences of characters, so the slice s[::-1] walks them backwards and builds a "
        "new string.",
        "Pitfalls: do not strip or lowercase anything, do not split into words (that reverses word order "
        "instead), and the empty string simply reverses to itself.",
    ],
    "is_palindrome": [
        "Only ASCII letters and digits matter and case is ignored, so first reduce the string to those "
        "characters, lowercased.",
        "Comparing the raw string with its reverse is wrong as soon as there is a capital letter, a space or "
        "punctuation: \"Race car!\" is a palindrome.",
        "Keep a character when char.isascii() and char.isalnum(); then compare the cleaned sequence with its "
        "reverse (or walk two indices inward).",
        "A string with nothing left after cleaning, including \"\", reads the same both ways: True.",
    ],
    "fibonacci": [
        "The definition is recursive, but calling fibonacci(n - 1) + fibonacci(n - 2) directly repeats work "
        "exponentially: n = 40 already takes seconds and n = 300 would never finish.",
        "Instead keep the last two values and step forward n times: (previous, current) becomes "
        "(current, previous + current).",
        "Starting from (0, 1), after n steps 'previous' is F(n), which also covers n = 0 (0) and n = 1 (1).",
        "Python integers have arbitrary precision, so large n needs nothing special; avoid floats and the "
        "closed-form formula, which lose exact digits.",
    ],
    "binary_search": [
        "The list is sorted and has no duplicates, so binary search finds the target in O(log n) steps.",
        "Keep an inclusive window [low, high], starting with low = 0 and high = len(nums) - 1.",
        "While low <= high: look at middle = (low + high) // 2. If nums[middle] equals the target, return "
        "middle; if it is smaller, the target can only be to the right (low = middle + 1); otherwise to the "
        "left (high = middle - 1).",
        "When the window is empty, the target is absent: return -1. This also handles an empty list, since "
        "high starts at -1.",
        "Pitfalls: 'low < high' or 'high = middle' can skip the last candidate or loop forever.",
    ],
    "two_sum": [
        "We must return positions, not values, so we need to remember where each value was seen.",
        "Use a dictionary from value to index. For each index j, the partner we need is target - nums[j].",
        "If that partner is already in the dictionary, its index i is smaller than j: return [i, j].",
        "Otherwise record nums[j] -> j and continue. Checking before inserting is what makes a pair of equal "
        "values work (3 + 3 == 6) without pairing an element with itself.",
        "Pitfalls: a set only remembers values, not indices; and a double loop is O(n^2), slow on long lists.",
    ],
    "max_subarray": [
        "This is Kadane's algorithm: scan once, tracking the best sum of a subarray that ends at the current "
        "position.",
        "Start both the running sum and the best answer at nums[0], not 0: when every number is negative the "
        "answer is the largest (least negative) element, and 0 would be wrong.",
        "For each next value: if the running sum is negative it can only hurt, so restart from the value; "
        "otherwise extend it. Then update the best answer.",
        "Pitfall: never name a variable max or sum; that shadows the builtin and breaks later calls to it.",
    ],
    "remove_duplicates": [
        "We keep the first occurrence of each value and preserve the original order, so sorting or "
        "list(set(nums)) is wrong: a set does not keep order.",
        "Walk the list once. Keep a set of values already seen for O(1) membership tests, and a result list.",
        "If a value is not in the set, add it to the set and append it to the result; otherwise skip it.",
        "Checking 'value not in result' on the list instead of a set is O(n^2) and times out on long inputs. "
        "An empty list gives an empty list.",
    ],
}

ALTERNATIVES = {
    "rpn": '''\
def eval_rpn(tokens):
    operations = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1),
    }
    stack = []
    for token in tokens:
        if token in operations:
            right = stack.pop()
            left = stack.pop()
            stack.append(operations[token](left, right))
        else:
            stack.append(int(token))
    return stack[-1]
''',
    "parentheses": '''\
def is_balanced(s):
    opener_of = {")": "(", "]": "[", "}": "{"}
    open_brackets = []
    for char in s:
        if char in "([{":
            open_brackets.append(char)
        elif char in opener_of:
            if not open_brackets:
                return False
            if open_brackets.pop() != opener_of[char]:
                return False
    return len(open_brackets) == 0
''',
    "fizzbuzz": '''\
def fizzbuzz(n):
    words = []
    for i in range(1, n + 1):
        word = ""
        if i % 3 == 0:
            word += "Fizz"
        if i % 5 == 0:
            word += "Buzz"
        words.append(word or str(i))
    return words
''',
    "reverse_string": '''\
def reverse_string(s):
    characters = list(s)
    left, right = 0, len(characters) - 1
    while left < right:
        characters[left], characters[right] = characters[right], characters[left]
        left += 1
        right -= 1
    return "".join(characters)
''',
    "is_palindrome": '''\
def is_palindrome(s):
    left, right = 0, len(s) - 1
    while left < right:
        if not (s[left].isascii() and s[left].isalnum()):
            left += 1
        elif not (s[right].isascii() and s[right].isalnum()):
            right -= 1
        elif s[left].lower() != s[right].lower():
            return False
        else:
            left += 1
            right -= 1
    return True
''',
    "two_sum": '''\
def two_sum(nums, target):
    seen = {}
    for j in range(len(nums)):
        needed = target - nums[j]
        if needed in seen:
            return [seen[needed], j]
        seen[nums[j]] = j
    return []
''',
    "max_subarray": '''\
def max_subarray(nums):
    best_sum = nums[0]
    running = 0
    for value in nums:
        running = max(value, running + value)
        best_sum = max(best_sum, running)
    return best_sum
''',
    "remove_duplicates": '''\
def remove_duplicates(nums):
    return list(dict.fromkeys(nums))
''',
}

OPENINGS = [
    "Let me restate the task. We need `{entry}`; for example `{call}` must return `{result}`.",
    "Goal: implement `{entry}` exactly as the contract says. The worked example, `{call}` == `{result}`, "
    "is a good check for each step.",
]
CLOSINGS = [
    "Tracing the example `{call}` with this plan gives `{result}`, as required. Here is the code:",
    "Checking against the example: `{call}` -> `{result}`. The complete function:",
]

DIFFICULTY_PLANS = ([1, 3, 5, 7, 9, 10], [2, 4, 6, 8, 10, 3])  # alternate by type: all of 1..10 covered
PER_TYPE = 6


def response(problem: str, instance, variant: int) -> str:
    example = instance.example
    call = example.call_repr(instance.entry_point)
    if len(call) > 120:
        call = call[:100] + " ...)"
    fields = {"entry": instance.entry_point, "call": call, "result": repr(example.expected)}
    steps = "\n".join(f"{k}. {step}" for k, step in enumerate(STEPS[problem], 1))
    code = ALTERNATIVES[problem] if variant % 2 and problem in ALTERNATIVES else instance.reference
    return (f"{OPENINGS[variant % 2].format(**fields)}\n\nStep by step:\n{steps}\n\n"
            f"{CLOSINGS[(variant // 2) % 2].format(**fields)}\n\n```python\n{code.rstrip()}\n```")


def main() -> None:
    out = ROOT / "assets" / "traces" / "reference.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for t, problem in enumerate(PROBLEM_TYPES):
        for k in range(PER_TYPE):
            difficulty = DIFFICULTY_PLANS[t % 2][k]
            instance = make_instance(problem, difficulty, TRAIN_SEED, k)
            record = {"id": f"{problem}-d{difficulty}-s{TRAIN_SEED}-i{k}", "problem": problem,
                      "difficulty": difficulty, "seed": TRAIN_SEED, "index": k, "prompt": instance.prompt,
                      "response": response(problem, instance, k), "teacher": TEACHER, "provenance": PROVENANCE}
            lines.append(json.dumps(record, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} traces to {out}")


if __name__ == "__main__":
    main()
