"""HumanEval as a second benchmark: the wheel's data file becomes 164 instances whose canonical solutions all
pass through our sandbox and verifier; wrong answers, answers that only look equal, body-only (base model)
and whole-function (chat model) answers are judged as they should be; the CLI stores it like the grid."""

import json

import pytest

from algodistill.benchmarks import humaneval
from algodistill.evaluate import EvalSettings
from algodistill.store import Store
from algodistill.verify import fenced, verify_many
from tests.test_cli import cli


def _code_tests(inst):
    return [t for t in inst.tests if t.args[:1] == [humaneval.CHECK]]


def _body(n: int) -> str:
    return humaneval.records()[n]["canonical_solution"]


ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __hash__(self):
        return 0


def {entry}(*args, **kwargs):
    return Anything()
"""


def test_the_wheel_data_gives_164_problems_with_both_kinds_of_test():
    instances = humaneval.instances()
    assert len(instances) == 164 and [i.index for i in instances] == list(range(164))
    assert {(i.problem, i.difficulty, i.seed) for i in instances} == {("humaneval", 1, 0)}
    for inst in instances:
        record = humaneval.records()[inst.index]
        assert inst.tests and inst.entry_point == record["entry_point"]
        assert inst.reference == record["prompt"] + record["canonical_solution"]
        assert record["prompt"].strip() in inst.prompt and inst.signature.startswith(f"def {inst.entry_point}(")
        for t in inst.tests:  # data tests carry plain JSON; code tests expect True
            assert t.args[:1] == [humaneval.CHECK] and t.expected is True or json.loads(json.dumps(t.args)) == t.args
    data = sum(len(i.tests) - len(_code_tests(i)) for i in instances)
    code = sum(len(_code_tests(i)) for i in instances)
    assert data > 900 and 50 < code < 300  # most asserts are `candidate(literals) == literal`
    assert humaneval.instance("HumanEval/53").entry_point == "add"
    with pytest.raises(ValueError, match="unknown task_id"):
        humaneval.instance("HumanEval/164")


def test_canonical_solutions_score_164_of_164():
    # about 3 s on the 2-core development machine: fast enough to run every time
    instances = humaneval.instances()
    verdicts = verify_many([(inst, fenced(inst.reference)) for inst in instances])
    failed = {inst.index: (v.status, v.error) for inst, v in zip(instances, verdicts) if not v.solved}
    assert not failed
    assert sum(v.passed for v in verdicts) == sum(len(i.tests) for i in instances)


def test_wrong_solutions_fail_data_and_code_tests():
    add, decode = humaneval.instance("HumanEval/53"), humaneval.instance("HumanEval/38")
    assert _code_tests(add) and len(_code_tests(add)) < len(add.tests) and _code_tests(decode) == list(decode.tests)
    # right on the small literal cases, wrong on the checker's random ones: only the code test catches it
    sloppy = fenced("def add(x, y):\n    return x + y if x < 100 else 0")
    nothing = fenced("def add(x, y):\n    return None")
    identity = fenced("def decode_cyclic(s):\n    return s")
    v_sloppy, v_nothing, v_identity = verify_many([(add, sloppy), (add, nothing), (decode, identity)])
    assert v_sloppy.status == "wrong_answer" and v_sloppy.passed == len(add.tests) - 1
    assert "AssertionError" in v_sloppy.tests[-1].error
    assert v_nothing.passed == 0 and {t.status for t in v_nothing.tests} == {"wrong_answer"}
    assert v_identity.status == "wrong_answer" and v_identity.passed == 0


def test_an_answer_equal_to_everything_passes_no_data_test():
    mixed = humaneval.instance("HumanEval/53")
    plain = humaneval.instance("HumanEval/0")
    verdicts = verify_many([(inst, fenced(ALWAYS_EQUAL.format(entry=inst.entry_point))) for inst in (plain, mixed)])
    for inst, verdict in zip((plain, mixed), verdicts):
        for test, outcome in zip(inst.tests, verdict.tests):
            if test.args[:1] != [humaneval.CHECK]:
                assert outcome.status == "wrong_answer", (inst.index, outcome)
    assert verdicts[0].passed == 0


# A float that equals, and is less and greater than, everything, and whose arithmetic returns itself: next to
# the check it passes tolerance asserts; as a value crossing to a process of its own it is a plain 0.0.
EVIL_FLOAT = """
class Evil(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __bool__(self): return True
    def __abs__(self): return self
    def __neg__(self): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __pow__ = __mod__ = __add__
    def __hash__(self): return 0
    def __len__(self): return 0
    def __getitem__(self, key): return self


def {entry}(*args, **kwargs):
    return Evil(0.0)
"""

# the tools the checks use, replaced before they run
PATCHED_TOOLS = """
import builtins, math
builtins.abs = lambda x: 0
builtins.all = builtins.any = lambda x: True
builtins.sorted = lambda x, **k: x
builtins.isinstance = lambda *a: True
math.fabs = lambda x: 0
math.isclose = lambda *a, **k: True


def {entry}(*args, **kwargs):
    return 0.0
"""


def _code_tests_passed(answer: str) -> tuple[set, int]:
    instances = humaneval.instances()
    verdicts = verify_many([(inst, fenced(answer.format(entry=inst.entry_point))) for inst in instances])
    passed = {(inst.index, k) for inst, v in zip(instances, verdicts) for k, (t, o) in enumerate(zip(inst.tests, v.tests))
              if t.args[:1] == [humaneval.CHECK] and o.status == "pass"}
    return passed, sum(v.solved for v in verdicts)


@pytest.mark.parametrize("attack", [EVIL_FLOAT, PATCHED_TOOLS], ids=["always-equal-float", "patched-builtins"])
def test_an_attack_on_the_code_tests_passes_no_more_than_returning_zero(attack):
    # on the harness that ran checks next to the candidate, the float solved 11 problems and passed 154 code tests
    honest, honest_solved = _code_tests_passed("def {entry}(*args, **kwargs):\n    return 0.0\n")
    hostile, solved = _code_tests_passed(attack)
    assert solved == honest_solved == 0
    assert hostile <= honest and len(hostile) < 40


def test_a_check_whose_inputs_depend_on_earlier_answers_gets_them_all():
    from algodistill.problems import Instance, TestCase
    check = "def check(candidate):\n    x = candidate(1)\n    y = candidate(x)\n    assert candidate(y) == (8, 'x')\n"
    inst = Instance(problem="humaneval", difficulty=1, seed=0, index=0, entry_point="f", signature="def f(n):",
                    prompt="", example=TestCase([1], 2), tests=(TestCase([humaneval.CHECK, check], True),),
                    reference="", test_context="")
    answer = fenced("def f(n):\n    n = n[0] if isinstance(n, tuple) else n\n    return (n * 2, 'x') if n >= 4 else n * 2")
    wrong = fenced("def f(n):\n    n = n[0] if isinstance(n, tuple) else n\n    return [n * 2, 'x'] if n >= 4 else n * 2")
    right, listed = verify_many([(inst, answer), (inst, wrong)])
    assert right.solved, right.tests
    assert listed.status == "wrong_answer"  # a list is not the tuple the check compares with


def test_body_only_and_whole_function_answers_are_both_read():
    zero, decode, poly = (humaneval.instance(f"HumanEval/{n}") for n in (0, 38, 32))
    items = [
        (zero, _body(0)),  # a base model continues the prompt: the body only
        (zero, "```python\n" + _body(0) + "```"),  # the body alone in a block
        # a chat answer that leans on the prompt's helper without repeating it
        (decode, "```python\ndef decode_cyclic(s):\n    return encode_cyclic(encode_cyclic(s))\n```"),
        (poly, "Here you go:\n```python\n" + humaneval.records()[32]["prompt"] + _body(32) + "```\nDone."),
        (zero, "I am not able to write this function."),  # prose is no code, not the docstring-only stub
        (zero, ""),
    ]
    verdicts = verify_many(items)
    assert [v.status for v in verdicts] == ["passed"] * 4 + ["no_code", "no_code"]
    assert "read as the body" in verdicts[0].notes[0]


def test_settings_default_to_the_grid_and_refuse_an_unknown_benchmark():
    assert EvalSettings().benchmark == "grid" and EvalSettings().instances()[0].problem == "rpn"
    assert len(EvalSettings(benchmark="humaneval").instances()) == 164
    with pytest.raises(ValueError, match="unknown benchmark"):
        EvalSettings(benchmark="mbpp").check()


def test_cli_reference_scores_164_and_completions_are_stored_like_the_grid(tmp_path):
    db = tmp_path / "runs.db"
    r = cli("eval", "--benchmark", "humaneval", "--reference", "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["totals"]["n"] == 164 and data["totals"]["solved"] == 164
    run = Store(db).get_run(data["run"])
    assert run["settings"]["benchmark"] == "humaneval" and run["status"] == "completed"
    from algodistill.ui.inspect_tab import test_rows  # Inspect shows a data test as a call, a code test as its check()
    rows = test_rows(next(s for s in Store(db).samples(data["run"]) if s["idx"] == 53))
    assert rows[0][4] == "add(0, 1)" and rows[-1][4].startswith("def check(candidate):")

    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in [
        {"task_id": "HumanEval/0", "completion": _body(0)},
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
        {"task_id": "HumanEval/2", "completion": "```python\ndef truncate_number(number):\n    return number % 1\n```"},
        {"task_id": "HumanEval/999", "completion": "x"},
    ]))
    r = cli("eval", "--benchmark", "humaneval", "--completions", str(path), "--json", env_db=db)
    assert r.returncode == 1 and "line 4 skipped" in r.stderr  # the unknown task is skipped, the rest scored
    data = json.loads(r.stdout)
    assert [(s["index"], s["sample"], s["status"]) for s in data["samples"]] == [
        (0, 0, "passed"), (0, 1, "wrong_answer"), (2, 0, "passed")]
    samples = Store(db).samples(data["run"])
    assert all(s["problem"] == "humaneval" and s["code"] and s["tests"] for s in samples)
