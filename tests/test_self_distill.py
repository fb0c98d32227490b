"""traces self-distill: the student's own verified answer replaces a trace's response, the teacher's stays where
the student's answers fail, and the set keeps its prompts (so its held-out protocol)."""

import json

from algodistill import self_distill as script
from algodistill.traces import BUNDLED_SETS, verify_file
from algodistill.verify import fenced


def test_own_passing_answers_replace_the_teachers_and_failing_ones_leave_it(tmp_path):
    lines = BUNDLED_SETS["varied-no-terse.jsonl"][0].read_text().splitlines()[:6]
    source = tmp_path / "six.jsonl"
    source.write_text("\n".join(lines) + "\n")
    checks = verify_file(source)
    assert all(c.kept for c in checks)
    from algodistill.verify import extract_for
    # trace 0: a wrong answer then the teacher's own code re-fenced (the second sample passes); trace 1: only
    # wrong answers; the rest: no answers at all
    right = fenced(extract_for(checks[0].instance, checks[0].record["response"]).code)
    answers = {0: ["```python\nprint('no')\n```", "Sure:\n" + right], 1: ["no code here"]}
    records, report = script.distil(checks, answers, "student-x", "greedy")
    assert len(records) == 6 and report["own"] == 1 and report["teacher"] == 5 and report["samples"] == 3
    assert records[0]["response"] == ("Sure:\n" + right).strip() and records[0]["teacher"] == "student-x"
    assert "sample 2 from student-x" in records[0]["provenance"] and "passed all" in records[0]["provenance"]
    for original, new in zip(checks, records):
        assert new["prompt"] == original.record["prompt"] and new.get("style") == original.record.get("style")
    assert records[1] == checks[1].record  # the teacher's trace stays where the student failed
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert all(c.kept for c in verify_file(out))  # the written set verifies like any other


def test_bad_settings_are_refused_before_any_model_loads(tmp_path, capsys):
    from algodistill.cli import main
    source = BUNDLED_SETS["varied-no-terse.jsonl"][0]
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"problem": "rpn"}\n')
    for argv, said in ((["--out", str(source), "--traces", str(source)], "must not be the trace file"),
                       (["--out", str(tmp_path / "o.jsonl"), "--traces", str(source), "--samples", "3"],
                        "needs a temperature"),
                       (["--out", str(tmp_path / "o.jsonl"), "--traces", str(empty)], "holds no verified trace")):
        assert main(["traces", "self-distill", "--model", "no-such-model", *argv]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_the_cli_writes_a_set_that_trains(tmp_path, tiny_model_dir, capsys):
    """End to end with a tiny random model: it solves nothing, so every trace keeps the teacher's answer."""
    from algodistill.cli import main
    lines = BUNDLED_SETS["varied-no-terse.jsonl"][0].read_text().splitlines()[:3]
    source = tmp_path / "three.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "self.jsonl"
    assert main(["traces", "self-distill", "--model", str(tiny_model_dir), "--traces", str(source), "--out", str(out),
                 "--max-new-tokens", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["traces"] == 3 and report["own"] + report["teacher"] == 3 and report["samples"] == 3
    assert [json.loads(line)["prompt"] for line in out.read_text().splitlines()] == \
        [json.loads(line)["prompt"] for line in lines]
    assert all(c.kept for c in verify_file(out))
