"""Prompt styles (issue 10 §1): every style of every problem type is solvable and verified correctly, and
each one really asks differently."""

import ast
import json
import re

import pytest

from algodistill.problems import PROBLEM_TYPES, REGISTRY, make_instance
from algodistill.problems.styles import STYLES, choose, printed_answer, styled
from algodistill.verify import fenced, verify, verify_many

DIFFICULTIES = (1, 4, 7, 10)


def test_every_style_of_every_type_accepts_its_adapted_reference():
    items = [(s, fenced(s.reference)) for p in PROBLEM_TYPES for d in DIFFICULTIES
             for s in (styled(make_instance(p, d), style) for style in STYLES)]
    verdicts = verify_many(items)
    failed = [(i.problem, i.difficulty, i.style, v.status, v.error) for (i, _), v in zip(items, verdicts) if not v.solved]
    assert not failed
    assert {i.style for i, _ in items} == set(STYLES)


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_styles_keep_the_tests_and_change_the_prompt(problem):
    base = make_instance(problem, 5)
    versions = {style: styled(base, style) for style in STYLES}
    assert versions["contract"] is base
    assert len({v.prompt for v in versions.values()}) == len(STYLES)
    for style, inst in versions.items():
        assert inst.style == style and inst.tests == base.tests and inst.key == base.key
        assert inst.fingerprint() == base.fingerprint()  # the same problem for the train/eval overlap check
    wording = REGISTRY[problem].wording
    assert f"`{base.entry_point}(" in versions["terse"].prompt
    assert f"def {wording.stub_name}({', '.join(wording.stub_args)}):" in versions["stub"].prompt
    assert versions["stub"].entry_point == wording.stub_name != base.entry_point
    assert base.entry_point not in versions["stub"].prompt
    assert not set(wording.stub_args) & set(_params(base.signature))
    ast.parse(versions["stub"].stub)  # the stub itself is valid Python (its docstring holds the example)
    assert "standard input" in versions["stdio"].prompt and "standard output" in versions["stdio"].prompt
    assert json.dumps(base.example.expected) in versions["stdio"].prompt


def _params(signature: str) -> list[str]:
    return [a.arg for a in ast.parse(signature + "\n    pass").body[0].args.args]


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_terse_prompt_is_one_or_two_sentences(problem):
    prompt = styled(make_instance(problem, 3), "terse").prompt
    assert "\n" not in prompt and len(prompt) < 400
    # sentence ends outside quotes and code: ". " followed by a capital letter
    assert len(re.findall(r"[.!?](?:\s+[A-Z]|$)", prompt)) <= 2


@pytest.mark.parametrize("problem, needs", [
    ("rpn", ["toward zero", "negative"]), ("arithmetic", ["toward zero", "precedence", "unary minus"]),
    ("is_palindrome", ["ignoring case", "letters and digits"]), ("two_sum", ["indices", "i < j"]),
    ("binary_search", ["-1"]), ("fizzbuzz", ["n = 0", "FizzBuzz"]), ("fibonacci", ["fibonacci(0) == 0"]),
    ("parentheses", ['""']), ("max_subarray", ["non-empty", "negative"]), ("remove_duplicates", ["first occurrence"]),
])
def test_terse_prompt_states_what_the_tests_depend_on(problem, needs):
    prompt = styled(make_instance(problem, 10), "terse").prompt
    assert all(n in prompt for n in needs), prompt


def test_a_contract_answer_fails_the_stub_style_with_missing_function():
    base = make_instance("rpn", 5)
    v = verify(styled(base, "stub"), fenced(base.reference))
    assert v.status == "missing_function" and v.passed == 0
    assert verify(base, fenced(base.reference)).solved


def test_stub_accepts_a_body_only_answer():
    inst = styled(make_instance("fibonacci", 3), "stub")
    body = "    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n"
    assert verify(inst, fenced(body)).solved


STDIO = make_instance("two_sum", 4)


@pytest.mark.parametrize("program, why", [
    ("import json\nnums, target = json.loads(input())\nprint(json.dumps([0, 1]))\n", None),  # wrong answer
    ("import json\nnums, target = json.loads(input())\n", "printed nothing"),
    ("import json\nnums, target = json.loads(input())\nprint('the answer is', [0, 1])\n", "not JSON"),
    ("def two_sum(nums, target):\n    return [0, 1]\n", "printed nothing"),  # a function but no program
])
def test_stdio_program_with_a_wrong_or_missing_answer_fails(program, why):
    v = verify(styled(STDIO, "stdio"), fenced(program))
    assert not v.solved and v.status == "wrong_answer"
    assert all(t.status in ("wrong_answer", "pass") for t in v.tests)
    if why:
        assert all(why in (t.error or "") for t in v.tests), [t.error for t in v.tests]


@pytest.mark.parametrize("program", [
    # input(), sys.stdin.buffer, sys.exit() after printing, top-level code, extra lines before the answer
    "import json\nnums, target = json.loads(input())\nseen = {}\nfor j, v in enumerate(nums):\n"
    "    if target - v in seen:\n        print(json.dumps([seen[target - v], j]))\n        exit()\n    seen[v] = j\n",
    "import json, sys\n\ndef solve(nums, target):\n    seen = {}\n    for j, v in enumerate(nums):\n"
    "        if target - v in seen:\n            return [seen[target - v], j]\n        seen[v] = j\n\n"
    "if __name__ == '__main__':\n    nums, target = json.loads(sys.stdin.buffer.read())\n    print('working')\n"
    "    print(json.dumps(solve(nums, target)))\n    sys.exit(0)\n",
])
def test_stdio_programs_in_common_shapes_pass(program):
    v = verify(styled(STDIO, "stdio"), "Here it is:\n" + fenced(program))
    assert v.solved, (v.status, v.error, [t.error for t in v.tests])


def test_stdio_exception_is_reported_per_test():
    v = verify(styled(STDIO, "stdio"), fenced("raise ValueError('boom')\n"))
    assert v.status == "exception" and "boom" in v.error


def test_printed_answer_reads_the_last_nonempty_line():
    assert printed_answer("debug\n[1, 2]\n\n") == ([1, 2], None)
    assert printed_answer("")[1] and printed_answer("True\n")[1]


def test_unknown_style_and_humaneval_are_refused():
    with pytest.raises(ValueError):
        choose("fancy")
    assert choose("all") == list(STYLES)
    with pytest.raises(ValueError):
        styled(make_instance("rpn", 1), "fancy")
    from algodistill.evaluate import EvalSettings
    with pytest.raises(ValueError, match="unknown prompt style"):
        EvalSettings(prompt_style="fancy").check()
    with pytest.raises(ValueError, match="HumanEval has only its own prompts"):
        EvalSettings(benchmark="humaneval", problems=["humaneval"], difficulties=[1], prompt_style="all").check()
    assert [s.prompt_style for s in EvalSettings(prompt_style="all").per_style()] == list(STYLES)
    with pytest.raises(ValueError, match="one run per style"):
        EvalSettings(prompt_style="all").instances()


def test_model_evaluation_in_every_style_is_one_run_per_style_and_resumes_as_a_group(store, tiny_model_dir, capsys):
    from algodistill.cli import main
    flags = ["eval", "--model", tiny_model_dir, "--problems", "rpn", "--difficulties", "1", "3",
             "--max-new-tokens", "4", "--device", "cpu", "--db", store.path]
    assert main(flags + ["--prompt-style", "all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["styles"]) == list(STYLES) and data["style_table"]["styles"] == list(STYLES)
    runs = {style: store.get_run(rep["run"]) for style, rep in data["styles"].items()}
    for style, run in runs.items():
        assert run["settings"]["prompt_style"] == style and run["status"] == "completed"
        prompts = {s["prompt"] for s in store.samples(run["id"])}
        assert prompts == {styled(make_instance("rpn", d), style).prompt for d in (1, 3)}
    # the last style was interrupted: resuming by the first run's id finishes only that one
    last = runs["stdio"]["id"]
    store.db.execute("delete from samples where run = ? and difficulty = 3", [last])
    store.finish_run(last, "interrupted", error="killed")
    assert len(store.samples(last)) == 1
    assert main(["eval", "--resume", str(runs["contract"]["id"]), "--db", store.path]) == 0
    assert store.get_run(last)["status"] == "completed" and len(store.samples(last)) == 2
    text = capsys.readouterr().out
    assert "solved per prompt style x problem type" in text
    assert main(["eval", "--resume", str(last), "--db", store.path]) == 2  # every style is complete


def test_eval_tab_starts_every_style_and_draws_a_style_by_type_heatmap(store, monkeypatch, capsys):
    from algodistill.cli import main
    from algodistill.ui import common, eval_tab
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    started = []
    monkeypatch.setattr(eval_tab.jobs, "start_eval", lambda s, settings, **kw: started.append(settings) or [7, 8, 9, 10])
    message, run = eval_tab.start("m", "", False, ["rpn"], ["1"], 1, 64, 0, 1, 0.0, 1.0, "all")
    assert run == 7 and started[0].prompt_style == "all" and "4 prompt styles" in message
    assert main(["eval", "--reference", "--prompt-style", "all", "--problems", "rpn", "fizzbuzz", "--difficulties", "1",
                 "--db", store.path, "--json"]) == 0
    runs = {style: rep["run"] for style, rep in json.loads(capsys.readouterr().out)["styles"].items()}
    assert main(["eval", "--reference", "--problems", "rpn", "--difficulties", "1", "--db", store.path]) == 0
    single = max(r["id"] for r in store.runs(kind="eval"))
    fig = eval_tab.style_heatmap(runs["stub"])  # any run of the evaluation stands for all its styles
    heat = fig.data[0]
    assert list(heat.y) == [f"{s} (#{runs[s]})" for s in STYLES] and list(heat.x) == ["rpn", "fizzbuzz", "all"]
    assert all(v == 1.0 for row in heat.z for v in row)
    assert eval_tab.style_heatmap(single) is None  # one style: nothing to compare
    assert eval_tab.style_heatmap(single, runs["terse"]) is not None  # two runs asking differently
    assert [r["id"] for r in eval_tab.run_group(runs["stdio"])] == [runs[s] for s in STYLES]


def test_a_stopped_style_leaves_the_later_styles_stopped_not_interrupted(store, tiny_model_dir, monkeypatch):
    import algodistill.model_eval as model_eval
    from algodistill.cli import main
    seen = []

    def stopped_at_once(store_, run_id, settings, **kw):
        seen.append((run_id, store_.get_run(run_id + 1)["status"], store_.get_run(run_id + 1)["pid"]))
        store_.finish_run(run_id, "stopped", error="stopped on request")
        return {}
    monkeypatch.setattr(model_eval, "evaluate_model", stopped_at_once)
    flags = ["eval", "--model", tiny_model_dir, "--problems", "rpn", "--difficulties", "1", "--max-new-tokens", "4",
             "--device", "cpu", "--db", store.path]
    assert main(flags + ["--prompt-style", "all"]) == 1
    (first, waiting, pid), = seen
    assert waiting == "queued" and pid  # the next style waits, tied to this process
    assert [store.get_run(first + k)["status"] for k in range(4)] == ["stopped"] * 4
    monkeypatch.undo()
    assert main(["eval", "--resume", str(first + 2), "--db", store.path]) == 0  # any run of the group resumes all
    assert [store.get_run(first + k)["status"] for k in range(4)] == ["completed"] * 4


def test_samples_keep_their_style_and_inspect_shows_the_call_that_style_made(store):
    from algodistill.evaluate import run_scoring
    from algodistill.sandbox import Limits
    from algodistill.ui import inspect_tab
    base = make_instance("two_sum", 3)
    rows = {}
    for style in ("stub", "stdio"):
        inst = styled(base, style)
        run = run_scoring(store, [(inst, fenced(inst.reference))], name=style, model="ref",
                          settings={"prompt_style": style}, limits=Limits())["run"]
        (rows[style],) = store.samples(run)
    assert rows["stub"]["style"] == "stub" and rows["stub"]["status"] == "passed"
    assert inspect_tab.test_rows(rows["stub"])[0][4].startswith("pair_indices([")
    assert inspect_tab.test_rows(rows["stdio"])[0][4].startswith("stdin: " + json.dumps(base.tests[0].args)[:40])
