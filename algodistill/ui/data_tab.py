"""Data tab: preview any problem instance; list, upload, verify and delete trace sets (bundled or kept
uploads); generate a trace set with a teacher (``teacher_view``). An upload with no trace that passes
verification is refused, not kept."""

from __future__ import annotations

import json
from pathlib import Path

from ..problems import EVAL_SEED, PROBLEM_TYPES, make_instance
from ..traces import BUNDLED
from . import access, teacher_view
from .common import HEAVY, accept_upload, trace_set_rows, delete_upload, trace_set, trace_sets, trace_value, verified

TEST_COLUMNS = ["call", "expected"]
TRACE_COLUMNS = ["line", "id", "problem", "difficulty", "seed", "kept", "reason"]
SET_COLUMNS = ["trace set", "lines", "kept", "rejected", "path"]


def _short(text: str, limit: int = 2000) -> str:  # two_sum's target came after 300 characters of list
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text)} characters)"


def preview_problem(problem: str, difficulty: float, seed: float, index: float) -> tuple[str, list[list], str]:
    """(prompt markdown, hidden tests table, reference solution) for one instance."""
    try:
        instance = make_instance(problem, int(difficulty), int(seed), int(index))
    except (ValueError, TypeError) as exc:
        return f"**Cannot build this instance:** {exc}", [], ""
    rows = [[_short(t.call_repr(instance.entry_point)), _short(json.dumps(t.expected))] for t in instance.tests]
    header = (f"**{instance.problem}**, difficulty {instance.difficulty}, seed {instance.seed}, index "
              f"{instance.index} (entry point `{instance.entry_point}`)\n\n---\n\n")
    return header + instance.prompt, rows, instance.reference


def verify_traces(path: str | None) -> tuple[str, list[list], list[list]]:
    """(summary markdown, per-trace table, type x difficulty counts of kept traces) for a trace file."""
    try:
        path = trace_set(path)
        checks = verified(path)
    except (ValueError, OSError) as exc:
        return access.public(f"**Cannot read the trace file:** {exc}"), [], []
    return _report(path, checks)


def _report(path: str, checks: list, text: str | None = None) -> tuple[str, list[list], list[list]]:
    from ..traces import summary, wording_coverage
    result = summary(checks)
    table = [[c.line, c.id or "", (c.record or {}).get("problem", ""), (c.record or {}).get("difficulty", ""),
              (c.record or {}).get("seed", ""), "yes" if c.kept else "no", c.reason] for c in checks]
    counts = [[p] + [result["per_cell"].get(p, {}).get(str(d), 0) for d in range(1, 11)] for p in PROBLEM_TYPES]
    text = text or (f"**{result['kept']} kept**, {result['rejected']} rejected, of {result['total']} lines "
                    f"in `{Path(path).name}`.")
    coverage = wording_coverage(checks)
    text += "  \nWording taught, per prompt style (an adapter's score in a style it was not taught in the " \
            "evaluation's words is a transfer): " + "; ".join(f"{style}: {what}" for style, what in coverage.items())
    return access.public(text), table, counts


def upload_set(path: str) -> tuple[str | None, str, list[list], list[list]]:
    """(kept path or None, verdict, per-trace table, counts) for an uploaded file: a refused file still
    shows why each of its lines was rejected."""
    kept, message = accept_upload(path)
    if kept is None:
        try:
            return None, *_report(path, verified(path), f"**{message}**")
        except OSError:
            return None, f"**{message}**", [], []
    return kept, *verify_traces(kept)


def delete_set(path: str | None) -> str:
    """Delete the chosen kept upload: a message saying what happened (the bundled set is refused)."""
    try:
        return delete_upload(path)
    except ValueError as exc:
        return f"**Not deleted:** {exc}"


def build() -> dict:
    import gradio as gr

    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("### Preview a problem instance")
            problem = gr.Dropdown(list(PROBLEM_TYPES), value=PROBLEM_TYPES[0], label="Problem type")
            difficulty = gr.Slider(1, 10, value=1, step=1, label="Difficulty")
            seed = gr.Number(value=EVAL_SEED, precision=0, label="Seed (42 = training, 999 = evaluation)")
            index = gr.Number(value=0, precision=0, minimum=0, label="Index")
        with gr.Column(scale=2):
            first = preview_problem(PROBLEM_TYPES[0], 1, EVAL_SEED, 0)  # shown at once, not after a change
            prompt = gr.Markdown(first[0])
            tests = gr.Dataframe(value=first[1], headers=TEST_COLUMNS, label="Hidden tests", wrap=True,
                                 column_widths=["55%", "45%"])
            reference = gr.Code(first[2], language="python", label="Reference solution")
    inputs = [problem, difficulty, seed, index]
    for control in inputs:
        control.change(preview_problem, inputs, [prompt, tests, reference],
                       api_name="preview_problem" if control is problem else False,
                       api_visibility="public" if control is problem else "private")

    gr.Markdown("### Trace sets")
    sets = gr.Dataframe(headers=SET_COLUMNS, label="Trace sets (uploads are kept next to runs.db)",
                        interactive=False, elem_id="data-sets")
    with gr.Row(equal_height=True):
        choices = trace_sets()
        chosen = gr.Dropdown(choices, value=choices[0][1], scale=3, label="Trace set",
                             elem_id="data-trace-set")
        check = gr.Button("Verify traces", variant="primary", scale=1, elem_id="data-verify")
        with access.owner_area(scale=2, min_width=0):
            with gr.Row(equal_height=True):
                upload = gr.UploadButton("Upload JSONL", file_types=[".jsonl"], type="filepath",
                                         elem_id="data-upload")
                delete = gr.Button("Delete", variant="stop", elem_id="data-delete")
    verdict = gr.Markdown(elem_id="data-verdict")
    traces = gr.Dataframe(headers=TRACE_COLUMNS, label="Each trace", wrap=True)
    counts = gr.Dataframe(headers=["problem"] + [str(d) for d in range(1, 11)], label="Kept traces per type x difficulty")
    check.click(verify_traces, [chosen], [verdict, traces, counts], api_name="verify_traces", **HEAVY)

    def uploaded(path):
        kept, *report = upload_set(path)
        return (gr.update(choices=trace_sets(), value=trace_value(kept)) if kept else gr.skip(), trace_set_rows(), *report)

    upload.upload(uploaded, [upload], [chosen, sets, verdict, traces, counts], api_visibility="private")

    def deleted(path):
        text = delete_set(path)
        if text.startswith("**Not deleted"):
            return gr.skip(), gr.skip(), text, gr.skip(), gr.skip()
        return gr.update(choices=trace_sets(), value=trace_value(BUNDLED)), trace_set_rows(), text, [], []

    delete.click(deleted, [chosen], [chosen, sets, verdict, traces, counts], api_visibility="private")
    chosen.focus(lambda: gr.update(choices=trace_sets()), None, [chosen], api_visibility="private")
    timer = teacher_view.build(gr, chosen, sets)
    return {"sets": sets, "timer": timer}
