"""Problem generation: right answers (checked by independent oracles), wrong solutions fail, determinism,
difficulty scaling, and train/eval separation."""

import ast
import json
import operator
import re
import subprocess
import sys

import pytest

from algodistill.problems import (DIFFICULTIES, EVAL_SEED, PROBLEM_TYPES, REGISTRY, TRAIN_SEED, grid, make_instance,
                                  overlap)
from algodistill.verify import fenced, verify_many

SEEDS = range(12)


def _trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _infix(expr):
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: _trunc_div}

    def ev(node):
        if isinstance(node, ast.BinOp):
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        assert isinstance(node, ast.Constant)
        return node.value
    return ev(ast.parse(expr, mode="eval").body)


def _rpn(tokens):
    stack = []
    for t in tokens:
        if t in ("+", "-", "*", "/"):
            b, a = stack.pop(), stack.pop()
            stack.append({"+": a + b, "-": a - b, "*": a * b, "/": _trunc_div(a, b) if t == "/" else 0}[t])
        else:
            stack.append(int(t))
    assert len(stack) == 1
    return stack[0]


def _balanced(s):
    s = re.sub(r"[^()\[\]{}]", "", s)
    while any(p in s for p in ("()", "[]", "{}")):
        s = s.replace("()", "").replace("[]", "").replace("{}", "")
    return s == ""


def _fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _two_sum_ok(nums, target, answer):
    pairs = [[i, j] for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target]
    return pairs == [answer]


def _max_sub(nums):
    return max(sum(nums[i:j]) for i in range(len(nums)) for j in range(i + 1, min(len(nums), i + 60) + 1)) \
        if len(nums) <= 60 else None


ORACLES = {
    "rpn": lambda args, exp: _rpn(args[0]) == exp,
    "arithmetic": lambda args, exp: _infix(args[0]) == exp,
    "parentheses": lambda args, exp: _balanced(args[0]) is exp,
    "fizzbuzz": lambda args, exp: exp == ["FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz"
                                          if i % 5 == 0 else str(i) for i in range(1, args[0] + 1)],
    "reverse_string": lambda args, exp: exp == "".join(reversed(args[0])),
    "is_palindrome": lambda args, exp: exp is (re.sub(r"[^a-z0-9]", "", args[0].lower())
                                              == re.sub(r"[^a-z0-9]", "", args[0].lower())[::-1]),
    "fibonacci": lambda args, exp: exp == _fib(args[0]),
    "binary_search": lambda args, exp: exp == (args[0].index(args[1]) if args[1] in args[0] else -1)
    and args[0] == sorted(set(args[0])),
    "two_sum": lambda args, exp: _two_sum_ok(args[0], args[1], exp) if len(args[0]) <= 120 else
    args[0][exp[0]] + args[0][exp[1]] == args[1] and exp[0] < exp[1],
    "max_subarray": lambda args, exp: _max_sub(args[0]) in (None, exp),
    "remove_duplicates": lambda args, exp: exp == list(dict.fromkeys(args[0])),
}


def test_eleven_fixed_types():
    assert set(PROBLEM_TYPES) == {"rpn", "arithmetic", "parentheses", "fizzbuzz", "reverse_string", "is_palindrome",
                                  "fibonacci", "binary_search", "two_sum", "max_subarray", "remove_duplicates"}
    assert set(ORACLES) == set(PROBLEM_TYPES)


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_expected_values_agree_with_an_independent_oracle(problem):
    for d in DIFFICULTIES:
        for seed in SEEDS:
            inst = make_instance(problem, d, seed, 0)
            assert len(inst.tests) == 5
            for case in (inst.example, *inst.tests):
                assert ORACLES[problem](case.args, case.expected), (problem, d, seed, case)


def test_reference_solutions_pass_through_the_sandbox_everywhere():
    items = [(make_instance(p, d, seed, 0), None) for p in PROBLEM_TYPES for d in DIFFICULTIES for seed in (1, 2, 3)]
    verdicts = verify_many([(inst, fenced(inst.reference)) for inst, _ in items])
    failed = [(inst.key, v.status, v.error) for (inst, _), v in zip(items, verdicts) if not v.solved]
    assert failed == []


def test_prompt_states_name_signature_contract_and_example():
    for p in PROBLEM_TYPES:
        inst = make_instance(p, 5, EVAL_SEED, 0)
        assert f"`{inst.entry_point}`" in inst.prompt and inst.signature in inst.prompt
        assert REGISTRY[p].contract.strip() in inst.prompt
        assert f">>> {inst.example.call_repr(inst.entry_point)}\n{inst.example.expected!r}" in inst.prompt
        for test in inst.tests:  # tests stay hidden
            assert json.dumps(test.args) != json.dumps(inst.example.args)


WRONG = {
    "two_sum values": ("two_sum", DIFFICULTIES,
                       "def two_sum(nums, target):\n    seen = set()\n    for v in nums:\n"
                       "        if target - v in seen:\n            return sorted([target - v, v])\n"
                       "        seen.add(v)\n"),
    "arithmetic left to right": ("arithmetic", DIFFICULTIES,
                                 "import re\ndef evaluate(expression):\n"
                                 "    def run(tokens):\n        value = atom(tokens)\n"
                                 "        while tokens and tokens[0] != ')':\n            op = tokens.pop(0)\n"
                                 "            right = atom(tokens)\n"
                                 "            value = {'+': value + right, '-': value - right, '*': value * right,\n"
                                 "                     '/': int(value / right) if right else 0}[op]\n"
                                 "        return value\n"
                                 "    def atom(tokens):\n        t = tokens.pop(0)\n"
                                 "        if t == '-':\n            return -atom(tokens)\n"
                                 "        if t == '(':\n            v = run(tokens)\n            tokens.pop(0)\n"
                                 "            return v\n        return int(t)\n"
                                 "    return run(re.findall(r'\\d+|[-+*/()]', expression))\n"),
    "is_palindrome case-sensitive": ("is_palindrome", DIFFICULTIES,
                                     "def is_palindrome(s):\n    kept = [c for c in s if c.isalnum()]\n"
                                     "    return kept == kept[::-1]\n"),
    "is_palindrome keeps punctuation": ("is_palindrome", range(3, 11),
                                        "def is_palindrome(s):\n    s = s.lower()\n    return s == s[::-1]\n"),
    "parentheses counts only": ("parentheses", DIFFICULTIES,
                                "def is_balanced(s):\n"
                                "    return all(s.count(a) == s.count(b) for a, b in ('()', '[]', '{}'))\n"),
    "remove_duplicates via set": ("remove_duplicates", DIFFICULTIES,
                                  "def remove_duplicates(nums):\n    return sorted(set(nums))\n"),
    "rpn floor division": ("rpn", range(6, 11),
                           "def eval_rpn(tokens):\n    st = []\n    for t in tokens:\n"
                           "        if t in '+-*/' and len(t) == 1:\n            b, a = st.pop(), st.pop()\n"
                           "            st.append({'+': a + b, '-': a - b, '*': a * b, '/': a // b if b else 0}[t])\n"
                           "        else:\n            st.append(int(t))\n    return st[-1]\n"),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_plausible_wrong_solutions_fail_every_instance(name):
    problem, difficulties, code = WRONG[name]
    instances = [make_instance(problem, d, seed, 0) for d in difficulties for seed in range(6)]
    verdicts = verify_many([(inst, fenced(code)) for inst in instances])
    assert all(v.status == "wrong_answer" for v in verdicts), [(i.key, v.status, v.error) for i, v in
                                                                 zip(instances, verdicts) if v.solved]


def test_generation_is_deterministic_across_processes_and_hash_seeds():
    probe = ("import json, sys; sys.path.insert(0, '.');"
             "from algodistill.problems import grid;"
             "print(json.dumps([i.to_dict() for i in grid(seed=7, per_cell=2)]))")
    outputs = {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(h), "PATH": "/usr/bin:/bin"}).stdout for h in (1, 2)}
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == [i.to_dict() for i in grid(seed=7, per_cell=2)]


def test_different_seeds_and_indices_give_different_instances():
    for p in PROBLEM_TYPES:
        keys = {make_instance(p, 7, seed, idx).fingerprint() for seed in range(5) for idx in range(3)}
        assert len(keys) == 15


def _size(inst):
    return sum(len(json.dumps(t.args)) + len(json.dumps(t.expected)) for t in inst.tests)


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_sizes_grow_with_difficulty(problem):
    mean = {d: sum(_size(make_instance(problem, d, s, 0)) for s in range(20)) / 20 for d in (1, 5, 10)}
    assert mean[1] < mean[5] < mean[10], mean


def test_evaluation_grid_shares_no_instance_with_training():
    train = [make_instance(p, d, TRAIN_SEED, i) for p in PROBLEM_TYPES for d in DIFFICULTIES for i in range(6)]
    evaluation = grid(per_cell=3)
    assert len(evaluation) == 11 * 5 * 3
    assert overlap(train, evaluation) == []
    assert len(overlap(train[:7], train)) == 7  # the check itself finds identical instances


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown problem type 'sorting'"):
        make_instance("sorting", 1)
    with pytest.raises(ValueError, match="difficulty must be an integer from 1 to 10"):
        make_instance("rpn", 11)
    with pytest.raises(ValueError, match="index"):
        make_instance("rpn", 1, 999, -1)
