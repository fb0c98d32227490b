"""The machine-readable CLI, run as users run it: `python -m algodistill ...` in a subprocess."""

import json
import subprocess
import sys

from algodistill.problems import make_instance
from algodistill.store import Store
from algodistill.verify import fenced
from tests.conftest import ROOT


def cli(*args, env_db=None):
    import os
    env = dict(os.environ)
    if env_db:
        env["ALGODISTILL_DB"] = str(env_db)
    return subprocess.run([sys.executable, "-m", "algodistill", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


def test_problems_show_json():
    r = cli("problems", "show", "two_sum", "--difficulty", "4", "--seed", "5", "--index", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    inst = make_instance("two_sum", 4, 5, 2)
    assert data["prompt"] == inst.prompt and data["entry_point"] == "two_sum"
    assert data["tests"] == [{"args": t.args, "expected": t.expected} for t in inst.tests]


def test_problems_show_rejects_bad_difficulty():
    r = cli("problems", "show", "rpn", "--difficulty", "12")
    assert r.returncode == 2 and "difficulty must be from 1 to 10" in r.stderr


def test_eval_reference_scores_55_of_55(tmp_path):
    db = tmp_path / "runs.db"
    r = cli("eval", "--reference", "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["totals"]["n"] == 55 and data["totals"]["solved"] == 55
    assert set(data["per_difficulty"]) == {"1", "3", "5", "7", "10"}
    assert Store(db).get_run(data["run"])["status"] == "completed"


def test_eval_completions_reports_per_sample_and_stores_the_run(tmp_path):
    good = make_instance("fizzbuzz", 3)
    lines = [
        {"problem": "fizzbuzz", "difficulty": 3, "seed": 999, "index": 0,
         "completion": "```python\n" + good.reference + "```"},
        {"problem": "rpn", "difficulty": 1, "seed": 999, "index": 0,
         "completion": "```python\ndef eval_rpn(tokens):\n    return int(tokens[0])\n```"},
        "this line is broken",
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    db = tmp_path / "runs.db"
    r = cli("eval", "--completions", str(path), "--json", env_db=db)
    assert r.returncode == 1, r.stderr  # the broken line was skipped: not a clean run
    data = json.loads(r.stdout)
    assert data["totals"]["n"] == 2 and data["totals"]["solved"] == 1
    assert [s["line"] for s in data["skipped"]] == [3] and "line 3 skipped" in r.stderr
    first, second = data["samples"]
    assert (first["problem"], first["passed"], first["tests"]) == ("fizzbuzz", 5, ["pass"] * 5)
    assert second["problem"] == "rpn" and second["passed"] < 5 and "wrong_answer" in second["tests"]
    stored = Store(db).samples(data["run"])
    assert len(stored) == 2 and {s["problem"] for s in stored} == {"fizzbuzz", "rpn"}


def test_eval_completions_scores_every_sample_of_one_instance(tmp_path):
    inst = make_instance("rpn", 3)
    line = {"problem": "rpn", "difficulty": 3, "seed": 999, "index": 0}
    answers = [fenced(inst.reference), "```python\ndef eval_rpn(tokens):\n    return 0\n```",
               "```python\ndef eval_rpn(tokens):\n    raise RuntimeError('boom')\n```"]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(dict(line, completion=a)) + "\n" for a in answers))
    db = tmp_path / "runs.db"
    r = cli("eval", "--completions", str(path), "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(s["sample"], s["status"]) for s in data["samples"]] == \
        [(0, "passed"), (1, "wrong_answer"), (2, "exception")]
    assert data["skipped"] == [] and data["totals"]["n"] == 3
    assert data["pass_at_k"]["instances"] == 1 and abs(data["pass_at_k"]["pass@1"] - 1 / 3) < 1e-9
    stored = Store(db).samples(data["run"])
    assert [(s["sample"], s["status"]) for s in stored] == [(0, "passed"), (1, "wrong_answer"), (2, "exception")]


def test_eval_completions_repeated_sample_number_is_reported_by_line(tmp_path):
    inst = make_instance("fizzbuzz", 1)
    line = {"problem": "fizzbuzz", "difficulty": 1, "completion": fenced(inst.reference)}
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in (dict(line, sample=1), line, dict(line, sample=1))))
    r = cli("eval", "--completions", str(path), "--json", env_db=tmp_path / "runs.db")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    (skipped,) = data["skipped"]
    assert skipped["line"] == 3 and "already given by line 1" in skipped["reason"]
    assert sorted(s["sample"] for s in data["samples"]) == [0, 1]  # the line without a number took 0
    assert "line 3 skipped" in r.stderr


def test_eval_completions_with_no_usable_line_exits_2(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"problem": "rpn"}\nnot json\n')
    r = cli("eval", "--completions", str(path), "--json", env_db=tmp_path / "runs.db")
    assert r.returncode == 2 and "line 1 skipped" in r.stderr and "line 2 skipped" in r.stderr


def test_eval_completions_missing_file():
    r = cli("eval", "--completions", "/nonexistent/file.jsonl")
    assert r.returncode == 2 and "completions file not found" in r.stderr


def test_traces_verify_exit_code_and_text(tmp_path):
    r = cli("traces", "verify", "assets/traces/reference.jsonl")
    assert r.returncode == 0 and "0 rejected" in r.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "rpn"}\n')
    r = cli("traces", "verify", str(bad), "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["traces"][0]["reason"].startswith("line 1: missing field")


def test_train_then_eval_with_base_comparison_json(tmp_path, tiny_model_dir, small_traces):
    db = tmp_path / "runs.db"
    r = cli("train", "--model", tiny_model_dir, "--traces", str(small_traces), "--max-steps", "2",
            "--device", "cpu", "--output-dir", str(tmp_path / "ad"), "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    trained = json.loads(r.stdout)  # stdout is JSON only, even with the trainer's own logging
    assert trained["status"] == "completed" and trained["summary"]["steps"] == 2
    r = cli("eval", "--model", tiny_model_dir, "--adapter", str(tmp_path / "ad"), "--compare-base",
            "--problems", "rpn", "--difficulties", "1", "3", "--max-new-tokens", "8", "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["base"]["totals"]["n"] == data["adapter"]["totals"]["n"] == 2
    assert data["comparison"]["n"] == 2 and len(data["adapter"]["samples"][0]["tests"]) == 5
    assert "Evaluation run" in (tmp_path / "ad" / "README.md").read_text()


def test_model_errors_are_one_clear_line(tmp_path):
    r = cli("eval", "--model", str(tmp_path / "nope.gguf"), env_db=tmp_path / "runs.db")
    assert r.returncode == 2 and r.stderr.strip().startswith("error: GGUF file not found")
    r = cli("train", "--effective-batch", "4", "--batch-size", "3", env_db=tmp_path / "runs.db")
    assert r.returncode == 2 and "not a multiple" in r.stderr and "Traceback" not in r.stderr
    r = cli("eval", "--resume", "12345", env_db=tmp_path / "runs.db")
    assert r.returncode == 2 and "no run with id 12345" in r.stderr


def test_one_hostile_completion_does_not_sink_the_batch(tmp_path):
    """A value nested ~2,900 deep (and a 4 MB string per call) once made `eval --completions` print a
    traceback and store nothing; now that sample is judged alone, the others are stored, the run completes."""
    db = tmp_path / "runs.db"
    deep = ("import sys\nsys.setrecursionlimit(100000)\ndef {name}(*args):\n    v = []\n"
            "    for _ in range(2900):\n        v = [v]\n    return v\n")
    huge = "def {name}(*args):\n    return 'x' * 900_000\n"
    lines = []
    for k, problem in enumerate(["rpn", "two_sum", "fizzbuzz", "max_subarray"]):
        inst = make_instance(problem, 3, 999, 0)
        lines.append({"problem": problem, "difficulty": 3, "completion": fenced(inst.reference)})
        for attack in (deep, huge):
            lines.append({"problem": problem, "difficulty": 3, "completion": fenced(attack.format(name=inst.entry_point))})
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    r = cli("eval", "--completions", str(path), "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["totals"]["n"] == 12 and data["totals"]["solved"] == 4
    store = Store(db)
    samples = store.samples(data["run"])
    assert len(samples) == 12 and store.get_run(data["run"])["status"] == "completed"
    attacked = [s for s in samples if s["sample"] > 0]
    assert {s["status"] for s in attacked} == {"wrong_answer"}
    assert all(t["error"] for s in attacked for t in s["tests"])  # each test says why
    # what one sample may store is capped: 5 x 900 KB of returned text is not kept
    stored = store.db.execute("select max(length(tests)) from samples").fetchone()[0]
    assert stored < 50_000
    assert data["sandbox"]["level"] in ("full", "partial", "none")
    assert store.get_run(data["run"])["settings"]["sandbox"]["applied"] == data["sandbox"]["applied"]


def test_eval_reference_in_every_prompt_style(tmp_path):
    db = tmp_path / "runs.db"
    r = cli("eval", "--reference", "--prompt-style", "all", "--problems", "rpn", "two_sum", "is_palindrome",
            "--json", env_db=db)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert list(data["styles"]) == ["contract", "terse", "stub", "stdio"]
    for style, report in data["styles"].items():
        assert report["totals"]["n"] == 15 and report["totals"]["accuracy"] == 1.0, style
        run = Store(db).get_run(report["run"])
        assert run["settings"]["prompt_style"] == style and run["name"].endswith(f"[{style}]")
        assert run["settings"]["style_group"] == data["styles"]["contract"]["run"]
    assert data["style_table"]["accuracy"] == {s: 1.0 for s in data["styles"]}
    assert data["style_table"]["solved"]["stdio"]["rpn"] == [5, 5]


def test_eval_completions_carry_their_style(tmp_path):
    base = make_instance("rpn", 3)
    line = {"problem": "rpn", "difficulty": 3}
    lines = [dict(line, completion=fenced(base.reference)),  # contract (no "style")
             dict(line, style="stub", completion=fenced(base.reference)),  # wrong name for the stub
             dict(line, style="stdio", completion=fenced(base.reference + "\nimport sys, json\n"
                                                         "print(json.dumps(eval_rpn(*json.loads(input()))))\n")),
             dict(line, style="fancy", completion="x")]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = cli("eval", "--completions", str(path), "--json", env_db=tmp_path / "runs.db")
    assert r.returncode == 1, r.stderr  # the unknown style's line was skipped
    data = json.loads(r.stdout)
    assert "unknown prompt style 'fancy'" in data["skipped"][0]["reason"]
    got = {style: [s["status"] for s in rep["samples"]] for style, rep in data["styles"].items()}
    assert got == {"contract": ["passed"], "stub": ["missing_function"], "stdio": ["passed"]}


def test_problems_show_in_another_prompt_style():
    r = cli("problems", "show", "rpn", "--difficulty", "3", "--prompt-style", "stub", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["style"], data["entry_point"]) == ("stub", "postfix_value") and "def postfix_value(items)" in data["prompt"]
    r = cli("problems", "show", "rpn", "--difficulty", "3", "--prompt-style", "stdio")
    assert r.returncode == 0 and "standard input" in r.stdout and "stdin: [[" in r.stdout
