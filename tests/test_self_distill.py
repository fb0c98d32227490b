"""scripts/self_distill.py: the student's own verified answer replaces a trace's response, the teacher's stays
where the student's answers fail, and the set keeps its prompts (so its held-out protocol)."""

import importlib.util
import json

from algodistill.traces import BUNDLED_SETS, verify_file
from algodistill.verify import fenced
from tests.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("self_distill", ROOT / "scripts" / "self_distill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_passing_answers_replace_the_teachers_and_failing_ones_leave_it(tmp_path):
    script = _script()
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


def test_the_script_refuses_to_overwrite_its_source_and_sampling_without_temperature(tmp_path, capsys):
    import pytest
    script = _script()
    source = BUNDLED_SETS["varied-no-terse.jsonl"][0]
    for argv in (["--model", "m", "--traces", str(source), "--out", str(source)],
                 ["--model", "m", "--traces", str(source), "--out", str(tmp_path / "o.jsonl"), "--samples", "3"]):
        with pytest.raises(SystemExit) as stop:
            script.main(argv)
        assert stop.value.code == 2
    assert "must not be the --traces file" in capsys.readouterr().err
