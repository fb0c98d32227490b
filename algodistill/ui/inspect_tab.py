"""Inspect tab: one evaluation, or two side by side; filter by type, difficulty, kind of failure and A -> B
change (fixed / broken / both fail / both pass, with counts); each evaluation's failure breakdown. For a
sample: the prompt, raw completion, extracted code (an unparseable one with its error line marked), the test
table (status and actual first; inspect_view.py) and the A-vs-B diff; its code can be edited and re-run on the
same tests without touching the store. The same sample (problem, difficulty, seed, index, sample number) from
both evaluations sits side by side; an instance's samples (pass@k) are listed together and stepped through. A GRPO
run opens like an evaluation: its samples are the completions of each training step."""


from ..benchmarks import humaneval
from ..problems import PROBLEM_TYPES
from ..verify import FAILURE_KINDS
from . import access
from .common import parse_run, run_choices, run_label, store
from .failures import breakdown_line
from .inspect_view import (COLUMN_WIDTHS, TEST_COLUMNS, change_of, code_diff, error_line,  # noqa: F401
                           marked_code, rerun_report, test_rows, test_widths, top_exceptions)

KINDS = ["any", "failing only"] + list(FAILURE_KINDS) + ["passed"]
CHANGES = ("all", "fixed", "broken", "both fail", "both pass")  # A -> B, as Eval's comparison counts them
LIST_COLUMNS = ["problem", "difficulty", "seed", "index", "sample", "A", "A tests", "B", "B tests", "A instance"]
ALL = "all"


def _key(s: dict) -> tuple:
    return (s["problem"], s["difficulty"], s["seed"], s["idx"], s.get("sample", 0))


def sample_runs() -> list[tuple[str, int]]:
    """The runs Inspect opens, newest first: every evaluation, and every GRPO run (what the model tried at each
    step: a sample numbered step * 1000 + try)."""
    grpo = [(run_label(r), r["id"]) for r in store().runs(kind="train") if r["settings"].get("method") == "grpo"]
    return sorted(run_choices("eval") + grpo, key=lambda choice: -choice[1])


def _pairs(a: int, b: int | None, problem=ALL, difficulty=ALL) -> list[tuple[dict, dict | None]]:
    s = store()
    right = {_key(y): y for y in s.samples(b)} if b is not None else {}
    return [(x, right.get(_key(x))) for x in s.samples(a)
            if (problem in (None, "", ALL) or x["problem"] == problem)
            and (difficulty in (None, "", ALL) or x["difficulty"] == int(difficulty))]


def change_choices(run_a, run_b, problem=ALL, difficulty=ALL) -> list[str]:
    """The A -> B filter's choices with their counts, e.g. "broken (3)"; just "all" without two evaluations."""
    a, b = parse_run(run_a), parse_run(run_b)
    if a is None or b is None:
        return ["all"]
    pairs = _pairs(a, b, problem, difficulty)
    counts = {c: sum(change_of(x, y) == c for x, y in pairs) for c in CHANGES[1:]}
    return [f"all ({len(pairs)})"] + [f"{c} ({n})" for c, n in counts.items()]


def summary(run_a, run_b, problem=ALL, difficulty=ALL, change="all"):
    """(failure breakdown per evaluation as markdown, the A -> B filter's choices and kept value)."""
    import gradio as gr
    lines = []
    for label, run in (("A", parse_run(run_a)), ("B", parse_run(run_b))):
        if run is not None:
            samples = store().samples(run)
            errors = ", ".join(f"{name} {n}" for name, n in top_exceptions(samples))
            lines.append(breakdown_line(f"{label} #{run}", samples) + (f" (exceptions: {errors})" if errors else ""))
    choices = change_choices(run_a, run_b, problem, difficulty)
    wanted = (change or "all").split(" (")[0]
    value = next((c for c in choices if c.split(" (")[0] == wanted), choices[0])
    return "  \n".join(lines), gr.update(choices=choices, value=value)


def _matches(sample: dict | None, kind: str) -> bool:
    if sample is None:
        return False
    if kind == "any":
        return True
    if kind == "failing only":
        return sample["status"] != "passed"
    return sample["status"] == kind


def sample_rows(run_a, run_b=None, problem: str = ALL, difficulty=ALL, kind: str = "any",
                change: str = "all") -> list[list]:
    """The samples of evaluation A (with B's verdict on the same instance and sample number), filtered.
    A kind filter keeps a row when either evaluation's verdict is of that kind; ``change`` (a choice of
    ``change_choices``, e.g. "broken (3)") keeps the rows whose verdict went that way from A to B."""
    change = (change or "all").split(" (")[0]
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
        if change != "all" and change_of(x, y) != change:
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


def _side(sample: dict | None, label: str) -> tuple[str, str, str, list[list]]:
    """(header markdown, raw completion, extracted code, test table) for one evaluation's sample."""
    if sample is None:
        return f"**{label}**: no sample with this instance and sample number", "", "", []
    notes = f"  \nnotes: {'; '.join(sample['notes'])}" if sample.get("notes") else ""
    error = f"  \n⚠️ {error_line(sample['error'], 300)}" if sample.get("error") else ""
    tokens = f", {sample['tokens']} tokens" if sample.get("tokens") else ""
    head = f"**{label}**: **{sample['status']}**, {sample['passed']}/{sample['total']} tests{tokens}{notes}{error}"
    code, line = marked_code(sample)
    if line is not None:
        head += f"  \nThe code does not parse: the error is marked under line {line}."
    return head, sample["completion"] or "", code, test_rows(sample)


def sample_detail(run_a, run_b, row: list | None):
    """Prompt, then (header, completion, code, tests) for A and for B, then the A-vs-B diff (HTML), of the
    chosen list row."""
    a, b = parse_run(run_a), parse_run(run_b)
    empty = ("Choose a sample.",) + ("", "", "", []) * 2 + ("",)
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
    return (prompt, *_side(x, f"A: #{a}"), *right, code_diff(x, y))


def drawn(detail: tuple) -> tuple:
    """``sample_detail``'s values as the page draws them: A's and B's test tables sized to their content, both
    alike (``test_widths``), so that long HumanEval checks get the room that empty diff and error columns leave."""
    import gradio as gr
    tests_a, tests_b = detail[4], detail[8]
    widths = test_widths(list(tests_a) + list(tests_b))
    return (*detail[:4], gr.update(value=tests_a, column_widths=widths), *detail[5:8],
            gr.update(value=tests_b, column_widths=widths), *detail[9:])


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


def rerun_sample(run, row: list | None, code: str) -> tuple[str, list[list]]:
    """The shown sample's code, as edited, run again against the same tests: (verdict line, test table).
    The stored sample stays as generated; the result is only shown. Owner only: it runs the caller's code."""
    access.require_owner("run code")
    run_id = parse_run(run)
    if run_id is None or not row or len(row) < 5:
        return "Choose a sample first.", []
    key = (row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]))
    stored = next((v for v in _siblings(run_id, key) if _key(v) == key), None)
    return rerun_report(stored, code) if stored else (f"Run #{run_id} has no such sample.", [])


def build(gr) -> dict:
    with gr.Row():
        run_a = gr.Dropdown(sample_runs(), value=None, label="Evaluation A", allow_custom_value=True,
                            elem_id="inspect-a")
        run_b = gr.Dropdown(sample_runs(), value=None, label="Evaluation B (optional, side by side)",
                            allow_custom_value=True, elem_id="inspect-b")
    with gr.Row():
        problem = gr.Dropdown([ALL] + list(PROBLEM_TYPES) + [humaneval.NAME], value=ALL, label="Problem type")
        difficulty = gr.Dropdown([ALL] + [str(d) for d in range(1, 11)], value=ALL, label="Difficulty")
        kind = gr.Dropdown(KINDS, value="any", label="Verdict (A or B)")
        change = gr.Dropdown(["all"], value="all", label="A → B (needs B)", elem_id="inspect-change",
                             allow_custom_value=True)
    breakdown = gr.Markdown(elem_id="inspect-breakdown")
    listing = gr.Dataframe(headers=LIST_COLUMNS, label="Samples (click one)", interactive=False, elem_id="inspect-list")
    with gr.Row():
        previous = gr.Button("◀ previous sample", size="sm", elem_id="inspect-previous")
        following = gr.Button("next sample ▶", size="sm", elem_id="inspect-next")
    prompt = gr.Markdown(elem_id="inspect-prompt")
    shown = gr.State(None)  # the key of the sample shown, for stepping through its instance's samples
    sides, reruns = [], []
    with gr.Row(equal_height=True):  # one row for both heads: A's and B's tests then start at the same height
        heads = [gr.Markdown(elem_id=f"inspect-head-{label.lower()}") for label in ("A", "B")]
    with gr.Row(equal_height=False):
        for head, (label, run) in zip(heads, (("A", run_a), ("B", run_b))):
            with gr.Column(min_width=0):
                tests = gr.Dataframe(headers=TEST_COLUMNS, label=f"{label}: tests", wrap=True, interactive=False,
                                     column_widths=COLUMN_WIDTHS, elem_id=f"inspect-tests-{label.lower()}",
                                     elem_classes=["inspect-tests"])
                code = gr.Code(language="python", label=f"{label}: extracted code (edit, then re-run)",
                               interactive=True, elem_id=f"inspect-code-{label.lower()}")
                with access.owner_area(min_width=0):
                    again = gr.Button(f"Re-run {label}'s edited code on the same tests", size="sm",
                                      elem_id=f"inspect-rerun-{label.lower()}")
                verdict = gr.Markdown()
                redone = gr.Dataframe(headers=TEST_COLUMNS, label=f"{label}: re-run tests (not stored)", wrap=True,
                                      interactive=False, column_widths=COLUMN_WIDTHS, visible=True)
                raw = gr.Textbox(label=f"{label}: raw completion", lines=10, max_lines=30, interactive=False)
                sides += [head, raw, code, tests]
                reruns.append((again, run, code, verdict, redone))
    with gr.Accordion("A vs B: diff of the extracted code and of the raw answers", open=True):
        diff = gr.HTML(elem_id="inspect-diff")
    detail = [prompt, *sides, diff]
    filters = [run_a, run_b, problem, difficulty, kind, change]
    # .input, not .change: only a person's edit refilters here. Code that sets the filters (a clicked Eval
    # cell, a page load) fills the listing, the breakdown and the A -> B counts itself, so several racing
    # .change events cannot leave them stale (nor a .change of the listing, fired as the tab is first drawn
    # with the filters not drawn yet, read them as empty).
    for control in filters:
        control.input(sample_rows, filters, [listing], api_name="samples" if control is run_a else False,
                      api_visibility="public" if control is run_a else "private")
        control.input(summary, [run_a, run_b, problem, difficulty, change], [breakdown, change],
                      api_visibility="private")
    for control in (run_a, run_b):
        control.focus(lambda: gr.update(choices=sample_runs()), None, [control],
                      api_visibility="private")

    def pick(a, b, evt: gr.SelectData, table):
        row = evt.row_value if getattr(evt, "row_value", None) else (table.values.tolist()[evt.index[0]]
                                                                    if hasattr(table, "values") else None)
        return (row, *drawn(sample_detail(a, b, row)))

    listing.select(pick, [run_a, run_b, listing], [shown, *detail], api_visibility="private")

    def back(a, b, row):
        chosen, *detail = step_sample(a, b, row, -1)
        return (chosen, *drawn(tuple(detail)))

    def ahead(a, b, row):
        chosen, *detail = step_sample(a, b, row, 1)
        return (chosen, *drawn(tuple(detail)))

    for button, handler in ((previous, back), (following, ahead)):
        button.click(handler, [run_a, run_b, shown], [shown, *detail], api_visibility="private")
    for again, run, code, verdict, redone in reruns:
        again.click(rerun_sample, [run, shown, code], [verdict, redone], api_visibility="private")
    # another sample shown: the last re-run belonged to the previous one
    shown.change(lambda: ("", []) * 2, None, [x for r in reruns for x in r[3:]], api_visibility="private")
    return {"run_a": run_a, "run_b": run_b, "problem": problem, "difficulty": difficulty, "kind": kind,
            "change": change, "breakdown": breakdown, "listing": listing, "shown": shown, "detail": detail}
