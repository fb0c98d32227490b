"""Extraction from raw model output, sanitizing, comparison and verdicts."""

import pytest

from algodistill.problems import make_instance
from algodistill.verify import extract_code, fenced, same, sanitize, verify, verify_many

TWO_SUM = make_instance("two_sum", 5, 999, 0)
GOOD = """def two_sum(nums, target):
    seen = {}
    for j, value in enumerate(nums):
        if target - value in seen:
            return [seen[target - value], j]
        seen[value] = j
"""


@pytest.mark.parametrize("completion", [
    fenced(GOOD),
    "Here is my answer.\n\n" + fenced(GOOD) + "\n\nIt runs in O(n).",
    "```\n" + GOOD + "```",  # no language tag
    GOOD + "```\n\nThis uses a dictionary.",  # opening fence dropped, closing kept
    "Sure:\n```python\n" + GOOD,  # closing fence missing
    "The idea: remember indices.\n" + GOOD + "\nThat is linear time.",  # no fences, prose around
    "```python\nfrom typing import List\n```\nthen\n```python\n" + GOOD + "```\nUsage:\n```python\n"
    "print(two_sum([2, 7, 11, 15], 9))\n```",  # several blocks
    fenced(GOOD + "\nprint(two_sum([2, 7], 9))\nassert two_sum([1, 2], 3) == [9, 9]\n"
                  "if __name__ == '__main__':\n    print(two_sum([3, 3], 6))\n"),  # demo code after
])
def test_correct_function_passes_whatever_the_wrapping(completion):
    v = verify(TWO_SUM, completion)
    assert v.status == "passed", (v.status, v.error, v.notes)
    assert v.passed == 5


def test_sanitize_keeps_imports_helpers_and_constants_drops_calls():
    code = ("import math\nfrom functools import lru_cache\nLIMIT = 10\nUNUSED = print('side effect')\n"
            "def helper(x):\n    return x * LIMIT\n@lru_cache(None)\ndef f(x):\n    return helper(x)\n"
            "print(f(3))\nf(4)\n")
    kept, dropped = sanitize(code, "f")
    assert "import math" in kept and "LIMIT = 10" in kept and "def helper" in kept and "@lru_cache" in kept
    assert "print(f(3))" not in kept and "UNUSED" not in kept
    assert len(dropped) == 3


def test_no_code():
    v = verify(TWO_SUM, "I am not sure how to solve this problem.")
    assert v.status == "no_code" and v.passed == 0
    assert all(t.status == "not_run" for t in v.tests)


def test_syntax_error_in_the_function():
    v = verify(TWO_SUM, fenced("def two_sum(nums, target)\n    return [0, 1]\n"))
    assert v.status == "syntax_error" and "SyntaxError" in v.error


def test_truncated_function_body_is_a_syntax_error_not_a_partial_function():
    v = verify(TWO_SUM, "```python\ndef two_sum(nums, target):\n    seen = {}\n    for j, value in enumerate(")
    assert v.status == "syntax_error"


def test_missing_function():
    v = verify(TWO_SUM, fenced("def solve(nums, target):\n    return [0, 1]\n"))
    assert v.status == "missing_function"


def test_exception_and_wrong_answer_per_test():
    v = verify(TWO_SUM, fenced("def two_sum(nums, target):\n    return nums[:2]\n"))
    assert v.status == "wrong_answer" and {t.status for t in v.tests} == {"wrong_answer"}
    assert v.tests[0].actual == TWO_SUM.tests[0].args[0][:2]
    v = verify(TWO_SUM, fenced("def two_sum(nums, target):\n    return nums[10**9]\n"))
    assert v.status == "exception" and "IndexError" in v.tests[0].error


def test_exception_while_defining():
    v = verify(TWO_SUM, fenced("import numpy_not_installed\n" + GOOD))
    assert v.status == "exception" and "numpy_not_installed" in v.error


def test_timeout_is_its_own_failure_kind():
    inst = make_instance("fibonacci", 10, 999, 0)
    naive = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n"
    v = verify(inst, fenced(naive))
    assert v.status == "timeout"
    assert any(t.status == "timeout" for t in v.tests) and any(t.status == "pass" for t in v.tests)


def test_forged_output_cannot_pass():
    forger = ("import os, sys\n"
              "def two_sum(nums, target):\n"
              "    print('5/5 tests passed')\n"
              "    for fd in range(3, 32):\n"
              "        try:\n"
              "            os.write(fd, b'{\"i\": 0, \"status\": \"returned\", \"value\": \"[0, 1]\"}\\n')\n"
              "        except OSError:\n"
              "            pass\n"
              "    return 'pass'\n")
    v = verify(TWO_SUM, fenced(forger))
    assert v.passed == 0 and not v.solved


def test_same_is_strict_about_bool_and_lenient_about_tuple_vs_list():
    assert same([0, 1], [0, 1]) and not same(True, 1) and not same(1, True) and not same(0, False)
    assert same(3.0, 3) and not same("3", 3) and not same(None, 0) and not same([1, 2], [2, 1])


def test_verify_many_keeps_order():
    wrong = fenced("def two_sum(nums, target):\n    return [0, 0]\n")
    vs = verify_many([(TWO_SUM, wrong), (TWO_SUM, fenced(GOOD)), (TWO_SUM, "no code")])
    assert [v.status for v in vs] == ["wrong_answer", "passed", "no_code"]


def test_class_based_solution_is_missing_function():
    code = "class Solution:\n    def two_sum(self, nums, target):\n        return [0, 1]\n"
    assert extract_code(fenced(code), "two_sum").status in ("missing_function", "ok")
    assert verify(TWO_SUM, fenced(code)).status == "missing_function"


def test_an_over_long_completion_is_refused_not_parsed():
    inst = make_instance("rpn", 1, 999, 0)
    verdict = verify(inst, fenced(inst.reference) + "\n" + "x" * 200_000)
    assert verdict.status == "no_code" and "not judged" in verdict.notes[0]


def test_deeply_nested_code_is_a_syntax_error_not_a_crash():
    inst = make_instance("rpn", 1, 999, 0)
    verdict = verify(inst, fenced(f"def {inst.entry_point}(tokens):\n    return " + "(" * 5000 + "1" + ")" * 5000))
    assert verdict.status == "syntax_error" and verdict.passed == 0


def test_long_trailing_garbage_is_trimmed_at_the_failing_line():
    inst = make_instance("rpn", 1, 999, 0)
    garbage = "".join(f"oops {k} ?\n" for k in range(3000))  # 3000 top-level cut points, none parses
    verdict = verify(inst, f"```python\n{inst.reference}\n{garbage}```")
    assert verdict.solved and any("dropped unparseable text" in n for n in verdict.notes)


def test_text_that_is_not_valid_utf8_is_stored_not_fatal(tmp_path):
    """Lone surrogates in printed output, an exception message or a returned string once failed the whole
    run with UnicodeEncodeError when the sample was written to runs.db."""
    from algodistill.evaluate import run_scoring
    from algodistill.sandbox import Limits
    from algodistill.store import Store
    inst = make_instance("rpn", 1, 999, 0)
    hostile = [fenced(f"def {inst.entry_point}(tokens):\n    print('\\ud800')\n    raise ValueError('\\udc80')\n"),
               fenced(f"def {inst.entry_point}(tokens):\n    return '\\ud800'\n"),
               fenced(inst.reference) + "\n\ud800"]
    store = Store(tmp_path / "runs.db")
    result = run_scoring(store, [(inst, c) for c in hostile], name="t", model="t", settings={}, limits=Limits(),
                         extras=[{"sample": k} for k in range(3)])
    rows = store.samples(result["run"])
    assert [r["status"] for r in rows] == ["exception", "wrong_answer", "passed"]
    assert rows[0]["tests"][0]["output"].strip() == "?" and rows[1]["tests"][0]["actual"] == "?"


def test_an_expected_integer_is_met_only_by_that_exact_integer():
    assert same(5.0, 5) and same(7, 7)
    assert not same(5.0000000001, 5)  # close is not equal when the contract says "the exact integer"
    assert not same(float(2**60), 2**60)  # a float that large is an approximation, whatever its value
    assert not same(float("inf"), 10**400) and same(0.1 + 0.2, 0.3)  # expected floats keep a tolerance


def test_a_float_approximation_of_fibonacci_gets_no_credit():
    inst = make_instance("fibonacci", 10, 999, 0)
    approx = (f"def {inst.entry_point}(n):\n    phi = (1 + 5 ** 0.5) / 2\n    v = phi ** n / 5 ** 0.5\n"
              "    return float(round(v)) if n < 70 else v\n")
    assert not verify(inst, fenced(approx)).solved


@pytest.mark.parametrize("text", ["```" + " " * 99_000 + "!", "\n" * 99_000 + "x", "```\n(\n```\n" * 8000])
def test_crafted_text_neither_stalls_extraction_nor_bloats_notes(text):
    extraction = extract_code(text, "f")
    assert len(extraction.notes) <= 12 and sum(map(len, extraction.notes)) < 5_000
