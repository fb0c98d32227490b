"""Trace schema, verification with reasons, malformed lines, and the bundled reference set."""

import json

import pytest

from algodistill.problems import DIFFICULTIES, PROBLEM_TYPES, make_instance
from algodistill.traces import BUNDLED, sft_rows, summary, verify_file
from algodistill.verify import extract_code, fenced, verify_many


def test_bundled_set_verifies_completely():
    checks = verify_file(BUNDLED)
    result = summary(checks)
    assert result["total"] >= 60 and result["kept"] == result["total"], [c.reason for c in checks if not c.kept]
    assert set(result["per_cell"]) == set(PROBLEM_TYPES)
    difficulties = {int(d) for cells in result["per_cell"].values() for d in cells}
    assert difficulties == set(DIFFICULTIES)
    assert all(not c.warnings for c in checks)  # prompts are the instances' own, seed 42


def test_bundled_records_state_provenance_and_explain_before_code():
    for line in BUNDLED.read_text().splitlines():
        record = json.loads(line)
        assert record["seed"] == 42 and record["teacher"]
        assert "not from Claude or Gemini" in record["provenance"]
        response = record["response"]
        assert response.index("Step by step") < response.index("```python")


def test_bundled_code_is_correct_at_every_difficulty():
    items = []
    for line in BUNDLED.read_text().splitlines():
        record = json.loads(line)
        for d in DIFFICULTIES:
            items.append((make_instance(record["problem"], d, 1234, 0), record["response"]))
    failed = [(inst.key, v.status) for (inst, _), v in zip(items, verify_many(items)) if not v.solved]
    assert failed == []


def test_bundled_code_does_not_shadow_builtins():
    for line in BUNDLED.read_text().splitlines():
        record = json.loads(line)
        code = extract_code(record["response"], make_instance(record["problem"], 1, 42, 0).entry_point).code
        for name in ("max", "min", "sum", "list", "dict", "str", "len", "input", "id"):
            assert f"\n    {name} =" not in code and f" {name}, " not in code.split("=")[0]


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_processed(tmp_path):
    inst = make_instance("fizzbuzz", 2, 42, 0)
    good = {"problem": "fizzbuzz", "difficulty": 2, "seed": 42, "index": 0, "response": fenced(inst.reference),
            "teacher": "t"}
    wrong = dict(good, index=1, response=fenced("def fizzbuzz(n):\n    return [str(i) for i in range(1, n + 1)]\n"))
    lines = [json.dumps(good), "{not json", json.dumps({"problem": "fizzbuzz"}), "",
             json.dumps(dict(good, problem="sorting")), json.dumps(dict(good, difficulty="3")), json.dumps(wrong),
             json.dumps(dict(good, index=2, response="I do not know."))]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    checks = verify_file(path)
    by_line = {c.line: c for c in checks}
    assert by_line[1].kept and by_line[1].reason == "verified"
    assert "line 2: not valid JSON" in by_line[2].reason
    assert "missing field 'difficulty'" in by_line[3].reason
    assert 4 not in by_line  # blank lines are skipped
    assert "unknown problem 'sorting'" in by_line[5].reason
    assert "'difficulty' must be int" in by_line[6].reason
    assert by_line[7].reason.startswith("wrong_answer (") and not by_line[7].kept
    assert by_line[8].reason.startswith("no_code")
    assert summary(checks)["kept"] == 1
    rows = sft_rows(checks)
    assert len(rows) == 1 and rows[0]["prompt"][0]["content"] == inst.prompt
    assert rows[0]["completion"][0]["role"] == "assistant"


def test_trace_on_an_evaluation_instance_is_rejected(tmp_path):
    inst = make_instance("rpn", 3, 999, 0)
    record = {"problem": "rpn", "difficulty": 3, "seed": 999, "index": 0, "response": fenced(inst.reference)}
    path = tmp_path / "leak.jsonl"
    path.write_text(json.dumps(record) + "\n")
    [check] = verify_file(path)
    assert not check.kept and "evaluation grid" in check.reason


def test_hostile_lines_in_an_upload_are_rejected_one_by_one(tmp_path):
    """A trace set is shown in the Data tab to every visitor: one crafted line must cost only itself."""
    good = BUNDLED.read_text().splitlines()[0]
    record = json.loads(good)
    inst = make_instance(record["problem"], record["difficulty"], record["seed"], record["index"])
    deep_code = (f"import sys\nsys.setrecursionlimit(100000)\ndef {inst.entry_point}(*args):\n    v = []\n"
                 "    for _ in range(2900):\n        v = [v]\n    return v\n")
    lines = [good,
             "[" * 200_000 + "]" * 200_000,                                   # JSON nested too deep to read
             json.dumps(dict(record, id="deep-value", response=fenced(deep_code))),  # returns a 2,900-deep value
             "\x00\xff not json"]
    path = tmp_path / "upload.jsonl"
    path.write_text("\n".join(lines) + "\n")
    checks = verify_file(path)
    assert [c.kept for c in checks] == [True, False, False, False]
    reasons = {c.line: c.reason for c in checks}
    assert "nested too deeply" in reasons[2] and "not valid JSON" in reasons[4]
    assert "0/5" in reasons[3] and "nested more than 100 levels" in reasons[3]


@pytest.mark.parametrize("name, held_out", [("varied.jsonl", "stdio"), ("varied-no-terse.jsonl", "terse"),
                                            ("varied-code-first.jsonl", "terse"), ("varied-no-terse-self.jsonl", "terse"),
                                            ("varied-code-first-self.jsonl", "terse")])
def test_a_varied_set_holds_out_its_style_and_the_evaluations_own_wording_of_the_others(name, held_out):
    from algodistill.problems import REGISTRY, make_instance
    from algodistill.problems.styles import STYLES, styled
    from algodistill.traces import BUNDLED_SETS, wording_coverage
    checks = verify_file(BUNDLED_SETS[name][0])
    assert checks and all(c.kept for c in checks), [c.reason for c in checks if not c.kept]
    expected = {style: "other wordings only" for style in STYLES} | {"contract": "evaluation wording",
                                                                       held_out: "held out"}
    assert wording_coverage(checks) == expected
    assert held_out in BUNDLED_SETS[name][1]  # the label in Train and Data names what is held out
    rows = sft_rows(checks)
    assert len(rows) == len(checks)
    for c, row in zip(checks, rows):
        style = c.record.get("style") or "contract"
        asked = row["prompt"][0]["content"]
        assert style != held_out
        instance = make_instance(c.record["problem"], c.record["difficulty"], c.record["seed"], c.record["index"])
        held = styled(instance, held_out).prompt
        assert asked != held.strip() and held.splitlines()[0] not in asked  # not even its first line
        if style != "contract":  # never in the evaluation's own words, nor with its stub's name
            assert asked != styled(instance, style).prompt.strip()
            assert f"def {REGISTRY[c.record['problem']].wording.stub_name}(" not in asked
            assert styled(instance, style).prompt.splitlines()[0] not in asked
    per_type = {}
    for c in checks:
        per_type[c.record["problem"]] = per_type.get(c.record["problem"], 0) + 1
    easy = min(n for p, n in per_type.items() if p not in ("arithmetic", "parentheses", "two_sum"))
    assert all(per_type[p] >= 2 * easy for p in ("arithmetic", "parentheses", "two_sum"))
    names = {c.record.get("entry_point") for c in checks} - {None}
    assert len(names) >= 15  # other function names drawn per instance, not one template's


def test_the_bundled_varied_sets_are_what_their_builder_writes():
    import importlib.util
    from algodistill.traces import BUNDLED
    spec = importlib.util.spec_from_file_location("builder", BUNDLED.parents[2] / "scripts" / "build_varied_traces.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    for name, (held_out, order, own) in builder.SETS.items():
        shipped = [json.loads(line) for line in (BUNDLED.with_name(name)).read_text().splitlines()]
        expected = builder.records(held_out, order)
        if own:
            expected = builder.with_own(expected, BUNDLED.with_name(own))
        assert shipped == expected, f"{name} is stale: run scripts/build_varied_traces.py"


def test_the_code_first_self_set_takes_the_students_answers_and_keeps_the_teachers_code_first_elsewhere():
    from algodistill.traces import BUNDLED_SETS
    load = lambda name: [json.loads(line) for line in BUNDLED_SETS[name][0].read_text().splitlines()]  # noqa: E731
    self_, code, mixed = load("varied-no-terse-self.jsonl"), load("varied-code-first.jsonl"), \
        load("varied-code-first-self.jsonl")
    assert [r["prompt"] for r in mixed] == [r["prompt"] for r in code] == [r["prompt"] for r in self_]
    own = [s["teacher"] != c["teacher"] for s, c in zip(self_, code)]
    assert 0 < sum(own) < len(own)
    for is_own, s, c, m in zip(own, self_, code, mixed):
        assert m == (s if is_own else c)  # the student's line as distilled, or the teacher's code-first one


def test_the_code_first_set_is_the_terse_held_out_set_with_each_answers_code_moved_first():
    from algodistill.traces import BUNDLED_SETS
    from algodistill.verify import extract_code
    plan = [json.loads(line) for line in BUNDLED_SETS["varied-no-terse.jsonl"][0].read_text().splitlines()]
    code = [json.loads(line) for line in BUNDLED_SETS["varied-code-first.jsonl"][0].read_text().splitlines()]
    assert len(code) == len(plan) == 84
    for p, c in zip(plan, code):
        assert {k: v for k, v in p.items() if k != "response"} == {k: v for k, v in c.items() if k != "response"}
        assert c["response"].startswith("```python\n") and not p["response"].startswith("```")
        name = c.get("entry_point") or "solve"
        assert extract_code(c["response"], name).code == extract_code(p["response"], name).code  # only moved
        steps = p["response"].split("Step by step:\n", 1)[1].split("\n\n", 1)[0]
        assert steps in c["response"] and c["response"].index(steps) > c["response"].index("```\n\n")


def test_a_trace_may_ask_for_another_function_name_and_is_judged_by_it(tmp_path):
    from algodistill.verify import fenced
    base = {"problem": "fizzbuzz", "difficulty": 2, "seed": 42, "index": 0, "style": "terse",
            "prompt": "Write `fb(limit)` returning the FizzBuzz list for 1..limit."}
    reference = "def fb(limit):\n    return ['FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 " \
                "else str(i) for i in range(1, limit + 1)]"
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        dict(base, entry_point="fb", response=fenced(reference)),
        dict(base, entry_point="fb", response=fenced(reference.replace("def fb", "def fizzbuzz"))),
        dict(base, entry_point="not a name", response=fenced(reference)),
    ]) + "\n")
    named, wrong_name, bad = verify_file(path)
    assert named.kept and not wrong_name.kept and "missing_function" in wrong_name.reason
    assert not bad.kept and "entry_point must be a Python name" in bad.reason


def test_the_self_distilled_set_asks_the_terse_held_out_sets_prompts_and_names_whose_answer_each_is():
    from algodistill.traces import BUNDLED_SETS
    teacher = [json.loads(line) for line in BUNDLED_SETS["varied-no-terse.jsonl"][0].read_text().splitlines()]
    own = [json.loads(line) for line in BUNDLED_SETS["varied-no-terse-self.jsonl"][0].read_text().splitlines()]
    assert [r["prompt"] for r in own] == [r["prompt"] for r in teacher]  # the same held-out protocol
    students = [r for r in own if r["teacher"] == "qwen2.5-coder-0.5b"]
    assert 0 < len(students) < len(own) and all("passed all" in r["provenance"] for r in students)
    assert all(r == t for r, t in zip(own, teacher) if r["teacher"] != "qwen2.5-coder-0.5b")  # the rest: as taught
