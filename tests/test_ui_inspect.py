"""Inspect: the test table's columns, the A -> B filter, the code diff, unparseable code, edit and re-run, and
the failure breakdown, called as plain functions against a real store."""

from algodistill.evaluate import run_scoring
from algodistill.problems import grid
from algodistill.sandbox import Limits
from algodistill.ui import inspect_tab, inspect_view
from algodistill.ui.failures import failure_breakdown
from algodistill.ui.inspect_view import top_exceptions
from algodistill.verify import fenced

WRONG_RPN = "```python\ndef eval_rpn(tokens):\n    return 0\n```"


def two_evaluations(db):
    """A: rpn wrong at difficulty 1, the rest right; B: rpn right, fizzbuzz with no code, two_sum right."""
    instances = grid(["rpn", "fizzbuzz", "two_sum"], [1, 5])
    a_answers = [(i, WRONG_RPN if (i.problem, i.difficulty) == ("rpn", 1) else fenced(i.reference)) for i in instances]
    b_answers = [(i, "no code at all" if i.problem == "fizzbuzz" else fenced(i.reference)) for i in instances]
    a = run_scoring(db, a_answers, name="a", model="a", settings={}, limits=Limits())["run"]
    b = run_scoring(db, b_answers, name="b", model="b", settings={}, limits=Limits())["run"]
    return a, b


def test_test_table_puts_status_and_actual_first_and_marks_the_difference(db):
    assert inspect_view.TEST_COLUMNS[:2] == ["status", "actual"]
    assert len(inspect_view.COLUMN_WIDTHS) == len(inspect_view.TEST_COLUMNS)
    a, b = two_evaluations(db)
    row = next(r for r in inspect_tab.sample_rows(a, b) if r[0] == "rpn" and r[1] == 1)
    tests = inspect_tab.sample_detail(a, b, row)[4]
    first = dict(zip(inspect_view.TEST_COLUMNS, tests[0]))
    assert first["status"] == "1 wrong answer" and first["actual"] == "0" and first["input"].startswith("eval_rpn(")
    assert first["diff"].startswith("off by ")


def test_test_tables_are_sized_to_their_content_alike_on_both_sides(db):
    def share(widths):
        return dict(zip(inspect_view.TEST_COLUMNS, (float(w.rstrip("%")) for w in widths)))
    check = "assert candidate([2, 7, 8, 8, 4, 8, 7, 3, 9, 6, 5, 10, 4, 3, 6, 7, 1, 7, 4, 10, 8, 1]) == 8"
    humaneval_like = [[f"{n} pass", "1", "1", "", check, "", 0.1] for n in range(1, 6)]
    widths = share(inspect_view.test_widths(humaneval_like))
    assert abs(sum(widths.values()) - 100) < 0.5
    assert widths["input"] == max(widths.values()) and widths["input"] > 40  # the long check gets the room
    for empty in ("diff", "error"):  # nothing to show: as wide as the header, no wider
        assert widths[empty] < widths["status"] and widths[empty] < 10
    failing = [["1 wrong answer", "[1, 2]", "[1, 2, 3]", "length 2 ≠ 3", "f([1, 2, 3])",
                "ValueError: Insufficient funds in the account (line 3)", 2.5]]
    widths = share(inspect_view.test_widths(failing))
    assert widths["error"] == max(widths.values())  # the longest text wraps least
    chars = inspect_view.SIDE_CHARS + inspect_view.PAD_CHARS * len(widths)
    for column, text in zip(inspect_view.TEST_COLUMNS, failing[0]):  # every word and header fits its column
        longest = max([len(column)] + [len(w) for w in str(text).split()])
        assert widths[column] / 100 * chars >= longest + inspect_view.PAD_CHARS - 0.1, column  # to rounding
    # the page draws A's and B's tables with one set of widths, from both sides' rows
    a, b = two_evaluations(db)
    row = next(r for r in inspect_tab.sample_rows(a, b) if r[0] == "rpn" and r[1] == 1)
    drawn = inspect_tab.drawn(inspect_tab.sample_detail(a, b, row))
    assert drawn[4]["column_widths"] == drawn[8]["column_widths"]
    assert drawn[4]["value"] == inspect_tab.sample_detail(a, b, row)[4]


def test_differs_names_where_values_part():
    assert inspect_view.differs([1, 2, 3], [1, 5, 3]) == "[1]: 2 ≠ 5"
    assert inspect_view.differs([1, 2], [1, 2, 3]) == "length 2 ≠ 3"
    assert inspect_view.differs("abcd", "abXd") == 'char [2]: "c" ≠ "X"'
    assert inspect_view.differs(True, 1) == "type bool ≠ int"
    assert inspect_view.differs({"a": 1}, {"a": 2}) == '["a"]: 1 ≠ 2'


def test_a_traceback_shows_its_exception_and_line_first():
    trace = 'Traceback (most recent call last):\n  File "<solution>", line 2, in f\nZeroDivisionError: division by zero'
    assert inspect_view.error_line(trace) == "ZeroDivisionError: division by zero (line 2)"
    assert inspect_view.error_line("timed out after 2 s") == "timed out after 2 s"
    assert inspect_view.error_line(None) == ""


def test_fixed_broken_filter_and_its_counts(db):
    a, b = two_evaluations(db)
    choices = inspect_tab.change_choices(a, b)
    assert choices == ["all (6)", "fixed (1)", "broken (2)", "both fail (0)", "both pass (3)"]
    assert [(r[0], r[1]) for r in inspect_tab.sample_rows(a, b, change="fixed (1)")] == [("rpn", 1)]
    assert {r[0] for r in inspect_tab.sample_rows(a, b, change="broken (2)")} == {"fizzbuzz"}
    assert len(inspect_tab.sample_rows(a, b, change="both pass (3)")) == 3
    assert inspect_tab.change_choices(a, b, "fizzbuzz") == ["all (2)", "fixed (0)", "broken (2)", "both fail (0)",
                                                            "both pass (0)"]
    assert inspect_tab.change_choices(a, None) == ["all"]
    breakdown, update = inspect_tab.summary(a, b, "all", "all", "broken (9)")  # an old count keeps its kind
    assert update["value"] == "broken (2)" and "2 no code" in breakdown and f"B #{b}" in breakdown


def test_code_diff_names_the_changed_line(db):
    a, b = two_evaluations(db)
    row = next(r for r in inspect_tab.sample_rows(a, b) if r[0] == "rpn" and r[1] == 1)
    diff = inspect_tab.sample_detail(a, b, row)[-1]
    assert "extracted code, A → B" in diff and "raw answer, A → B" in diff
    assert "-    return 0" in diff and "+def eval_rpn" not in diff  # the def line is the same on both sides
    same = next(r for r in inspect_tab.sample_rows(a, b) if r[0] == "two_sum")
    assert "identical" in inspect_tab.sample_detail(a, b, same)[-1]


def test_code_that_does_not_parse_is_shown_with_its_error_line_marked(db):
    (inst,) = grid(["rpn"], [1])
    broken = "Here:\n```python\ndef eval_rpn(tokens):\n    stack = []\n    for t in tokens\n        pass\n```"
    run = run_scoring(db, [(inst, broken)], name="s", model="s", settings={}, limits=Limits())["run"]
    (row,) = inspect_tab.sample_rows(run)
    assert row[5] == "syntax_error"
    _, head, _, code, *_ = inspect_tab.sample_detail(run, None, row)
    lines = code.splitlines()
    assert lines[2] == "    for t in tokens" and lines[3].startswith("    # ^^^ SyntaxError on line 3")
    assert "marked under line 3" in head


def test_edit_and_rerun_fixes_a_wrong_sample_without_touching_the_store(db):
    (inst,) = grid(["rpn"], [1])
    run = run_scoring(db, [(inst, WRONG_RPN)], name="w", model="w", settings={}, limits=Limits())["run"]
    (row,) = inspect_tab.sample_rows(run)
    before = db.samples(run)
    verdict, tests = inspect_tab.rerun_sample(run, row[:5], inst.reference)
    assert "passed, 5/5 tests" in verdict and [t[0] for t in tests] == [f"{n} pass" for n in range(1, 6)]
    assert db.samples(run) == before and before[0]["status"] == "wrong_answer"
    verdict, tests = inspect_tab.rerun_sample(run, row[:5], "def eval_rpn(tokens):\n    return 1\n")
    assert "wrong_answer, 0/5" in verdict


def test_failure_breakdown_counts_a_hand_made_set():
    def s(status, error=None, cut_off=0, tests=()):
        return {"status": status, "error": error, "cut_off": cut_off, "tests": list(tests)}
    samples = [s("passed"), s("passed"), s("no_code"), s("syntax_error"), s("missing_function"),
               s("exception", "ZeroDivisionError: division by zero"), s("exception", "IndexError: list index"),
               s("exception", None, tests=[{"status": "exception", "error": "ZeroDivisionError: x"}]),
               s("wrong_answer"), s("wrong_answer"), s("timeout"), s("syntax_error", cut_off=1)]
    assert failure_breakdown(samples) == {"passed": 2, "no_code": 1, "syntax_error": 1, "missing_function": 1,
                                          "exception": 3, "wrong_answer": 2, "timeout": 1, "crash": 0, "cut_off": 1}
    assert top_exceptions(samples) == [("ZeroDivisionError", 2), ("IndexError", 1)]
