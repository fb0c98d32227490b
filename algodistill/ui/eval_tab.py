"""Eval tab: launch the grid as a job; heatmap, per-type and per-difficulty bars, two evaluations compared.

The heatmap's hover shows tests passed per cell; the table under it is the same grid as clickable cells:
selecting one opens its samples in the Inspect tab. One status block, read from the store every few
seconds, shows each run of the followed evaluation (the adapter run and its base-model twin) with its own
counts and ETA; the view and the run lists are redrawn when the store says something changed. When the chosen
evaluation was asked in several prompt styles (``--prompt-style all``), a style x type heatmap shows how much
of each skill survives other wording.
"""

from __future__ import annotations

from .. import jobs
from ..evaluate import EvalSettings, compare, style_runs, style_table, summarize
from ..problems import PROBLEM_TYPES, REFERENCE_DIFFICULTIES
from ..problems.styles import ALL as ALL_STYLES, STYLES
from ..settings import whole_numbers
from ..store import ACTIVE
from .common import parse_run, run_choices, status_markdown, store
from .train_tab import model_choices


def adapter_choices() -> list[tuple[str, str]]:
    """Adapters of finished training runs (completed or stopped with a saved adapter)."""
    out = [("(none: the base model)", "")]
    for run in store().runs(kind="train"):
        if run["status"] in ("completed", "stopped") and run.get("adapter"):
            out.append((f"#{run['id']} {run.get('name') or ''} ({run['model']})", run["adapter"]))
    return out


def model_for_adapter(adapter: str, model: str) -> str:
    """Picking a training run's adapter picks its base model too."""
    for run in store().runs(kind="train"):
        if adapter and run.get("adapter") == adapter:
            return run["model"]
    return model


def _typed(name: str, value, default) -> float:
    """A sampling field as typed: empty is refused in words, not replaced by the default (the browser empties
    a field it cannot hold); the settings' ranges judge the number."""
    if value is None or value == "":
        raise ValueError(f"{name} is empty or not a number (the default is {default:g})")
    return float(value)


def start(model, adapter, with_base, problems, difficulties, per_cell, max_new_tokens, batch_size, samples=1,
          temperature=0.0, top_p=1.0, prompt_style="contract") -> tuple[str, int | None]:
    try:
        settings = EvalSettings(problems=list(problems or []), difficulties=[int(d) for d in difficulties or []],
                                per_cell=int(per_cell or 1), max_new_tokens=int(max_new_tokens or EvalSettings.max_new_tokens),
                                batch_size=int(batch_size or 0), model=(model or "").strip() or None,
                                adapter=(adapter or "").strip() or None,
                                samples=_typed("samples per instance", samples, 1),
                                temperature=_typed("temperature", temperature, 0.0),
                                top_p=_typed("top-p", top_p, 1.0), prompt_style=prompt_style or "contract")
        whole_numbers(settings)  # 3.0 samples from the form is 3; 2.5 stays and is refused by check()
        ids = jobs.start_eval(store(), settings, compare_base=bool(with_base) and bool(settings.adapter))
    except (ValueError, jobs.JobRefused) as exc:
        return f"⚠️ Not started: {exc}", None
    if settings.prompt_style == ALL_STYLES:
        runs = ", ".join(f"#{i}" for i in ids)
        return f"Started evaluation #{ids[0]} in {len(STYLES)} prompt styles (runs {runs}).", ids[0]
    extra = f" and #{ids[1]} (base model, same problems)" if len(ids) > 1 else ""
    return f"Started evaluation #{ids[0]}{extra}.", ids[0]


def run_group(run_id) -> list[dict]:
    """An evaluation and the runs started with it (its base-model twin; its other prompt styles, each with
    its twin), whichever of them ``run_id`` is."""
    s = store()
    return [r for head in style_runs(s, parse_run(run_id))
            for r in [head] + [c for c in s.children(head["id"]) if c["kind"] == "eval"]]


def followed(run_id) -> int | None:
    """The evaluation the status block follows: the one launched from this page, else the newest active one."""
    if parse_run(run_id) is not None:
        return parse_run(run_id)
    busy = [r for r in store().runs(kind="eval") if r["status"] in ACTIVE]
    return busy[0]["id"] if busy else None


def stop(run_id) -> str:
    """Stop the followed evaluation: the run of its group being worked on (the process watches both)."""
    run_id = followed(run_id)
    group = run_group(run_id) if run_id is not None else []
    busy = [r for r in group if r["status"] == "running"] + [r for r in group if r["status"] in ACTIVE]
    return jobs.stop(store(), busy[0]["id"]) if busy else "No evaluation to stop."


def resume(run_id, shown) -> tuple[str, int | None]:
    """Finish the evaluation shown (or followed) from where it stopped: (message, run id to follow)."""
    run_id = parse_run(shown) or followed(run_id)
    if run_id is None:
        return "Choose the evaluation to resume under Evaluation.", None
    try:
        ids = jobs.resume_eval(store(), run_id)
    except (ValueError, KeyError, jobs.JobRefused) as exc:
        return f"⚠️ Not resumed: {exc.args[0] if exc.args else exc}", None
    return f"Resuming evaluation #{ids[0]}: the samples already judged are kept.", ids[0]


def run_status(run_id) -> str:
    """The status block: one entry per run of the evaluation, each with its own progress, ETA and message."""
    run_id = followed(run_id)
    if run_id is None:
        return "No evaluation running."
    try:
        return "\n\n".join(status_markdown(r) for r in run_group(run_id))
    except KeyError as exc:
        return str(exc)


def cells(samples: list[dict]) -> dict[tuple[str, int], dict]:
    grid: dict[tuple[str, int], dict] = {}
    for s in samples:
        cell = grid.setdefault((s["problem"], s["difficulty"]), {"n": 0, "solved": 0, "passed": 0, "total": 0})
        cell["n"] += 1
        cell["solved"] += s["status"] == "passed"
        cell["passed"] += s["passed"]
        cell["total"] += s["total"]
    return grid


def _axes(*sample_sets) -> tuple[list[str], list[int]]:
    present = {s["problem"] for samples in sample_sets for s in samples}
    problems = [p for p in PROBLEM_TYPES if p in present] + sorted(present - set(PROBLEM_TYPES))
    difficulties = sorted({s["difficulty"] for samples in sample_sets for s in samples})
    return problems, difficulties


def heatmap(samples: list[dict], title: str, other: list[dict] | None = None):
    """Accuracy per problem type x difficulty; with ``other``, the change from ``other`` to ``samples``."""
    import plotly.graph_objects as go
    problems, difficulties = _axes(samples, other or [])
    mine, base = cells(samples), cells(other or [])
    z, text, hover = [], [], []
    for p in problems:
        zr, tr, hr = [], [], []
        for d in difficulties:
            c, b = mine.get((p, d)), base.get((p, d))
            acc = c["solved"] / c["n"] if c else None
            if other is not None:
                delta = (acc - b["solved"] / b["n"]) if c and b else None
                zr.append(delta)
                tr.append("" if delta is None else f"{delta:+.0%}")
                hr.append(f"{p}, difficulty {d}<br>" + (f"solved {b['solved']}/{b['n']} → {c['solved']}/{c['n']}<br>"
                          f"tests {b['passed']}/{b['total']} → {c['passed']}/{c['total']}" if c and b else "not in both"))
            else:
                zr.append(acc)
                tr.append("" if c is None else f"{c['solved']}/{c['n']}")
                hr.append(f"{p}, difficulty {d}<br>" + (f"solved {c['solved']}/{c['n']}<br>tests passed "
                          f"{c['passed']}/{c['total']}" if c else "not evaluated"))
        z.append(zr), text.append(tr), hover.append(hr)
    scale = ([[0, "#dc2626"], [0.5, "#f8fafc"], [1, "#16a34a"]], -1, 1) if other is not None else \
        ([[0, "#fee2e2"], [0.5, "#fde68a"], [1, "#16a34a"]], 0, 1)
    fig = go.Figure(go.Heatmap(z=z, x=[str(d) for d in difficulties], y=problems, text=text, texttemplate="%{text}",
                               hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", colorscale=scale[0],
                               zmin=scale[1], zmax=scale[2], xgap=2, ygap=2))
    fig.update_layout(title=title, xaxis_title="difficulty", yaxis=dict(autorange="reversed"), height=460,
                      margin=dict(l=120, r=20, t=40, b=40), template="plotly_white")
    return fig


def bars(summaries: dict[str, dict]):
    """Per-type and per-difficulty accuracy bars (one series per evaluation) with 95% intervals."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=("per problem type", "per difficulty"))
    for label, summary in summaries.items():
        for col, key in ((1, "per_problem"), (2, "per_difficulty")):
            groups = summary[key]
            xs = list(groups)
            ys = [g["accuracy"] for g in groups.values()]
            lo = [g["accuracy"] - g["accuracy_ci"][0] for g in groups.values()]
            hi = [g["accuracy_ci"][1] - g["accuracy"] for g in groups.values()]
            fig.add_bar(x=xs, y=ys, name=label, legendgroup=label, showlegend=col == 1,
                        error_y=dict(type="data", array=hi, arrayminus=lo, thickness=1),
                        customdata=[[g["solved"], g["n"], g["partial_credit"]] for g in groups.values()],
                        hovertemplate="%{x}: %{customdata[0]}/%{customdata[1]} solved, partial credit "
                                      "%{customdata[2]:.0%}<extra>" + label + "</extra>", row=1, col=col)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    fig.update_layout(barmode="group", height=380, template="plotly_white", margin=dict(l=50, r=20, t=40, b=80),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def grid_table(samples: list[dict]):
    """The heatmap as clickable cells: rows = problem types, columns = difficulties, 'solved/n (tests)'."""
    import pandas as pd
    problems, difficulties = _axes(samples)
    grid = cells(samples)
    rows = [[p] + [(f"{c['solved']}/{c['n']} ({c['passed']}/{c['total']} tests)" if (c := grid.get((p, d))) else "")
                   for d in difficulties] for p in problems]
    return pd.DataFrame(rows, columns=["problem"] + [f"d{d}" for d in difficulties])


def show(run_a, run_b):
    """(headline markdown, heatmap, bars, clickable grid) for one evaluation, or two compared."""
    s = store()
    a, b = parse_run(run_a), parse_run(run_b)
    if a is None:
        return "Choose an evaluation.", None, None, []
    try:
        run = s.get_run(a)
        samples = s.samples(a)
    except KeyError as exc:
        return str(exc), None, None, []
    if not samples:
        return f"**#{a} {run.get('name') or ''}** ({run['status']}): no answers judged yet.", None, None, []
    summary = summarize(samples)
    label = f"#{a} {run.get('name') or ''}"
    text = _headline(label, summary, run)
    other = s.samples(b) if b is not None and b != a else []
    if not other:
        return text, heatmap(samples, f"{label}: solved per cell"), bars({label: summary}), grid_table(samples)
    other_run = s.get_run(b)
    other_label = f"#{b} {other_run.get('name') or ''}"
    diff = compare(other, samples)
    summaries = {other_label: summarize(other), label: summary}
    text += "  \n" + _headline(other_label, summaries[other_label], other_run)
    text += (f"  \n**Change from {other_label} to {label}** on the {diff['n']} shared problems: "
             f"{diff['solved_a']} → {diff['solved_b']} solved ({diff['delta']:+d}); "
             f"{len(diff['fixed'])} fixed, {len(diff['broken'])} broken.")
    fig = heatmap(samples, f"change in accuracy: {other_label} → {label}", other=other)
    return text, fig, bars(summaries), grid_table(samples)


def styles_covered(run_a, run_b) -> dict[str, int]:
    """Prompt style -> run: the runs of the chosen evaluation in each of its styles (base-model twins when a
    twin is chosen), and the compared one when it asks in yet another style."""
    s, out = store(), {}
    for rid in map(parse_run, (run_a, run_b)):
        if rid is None:
            continue
        try:
            twin = bool(s.get_run(rid).get("parent"))
            for head in style_runs(s, rid):
                member = next((c for c in s.children(head["id"]) if c["kind"] == "eval"), None) if twin else head
                if member is not None:
                    out.setdefault(member["settings"].get("prompt_style", "contract"), member["id"])
        except KeyError:
            continue
    return out


def style_heatmap(run_a, run_b=None):
    """Solved fraction per prompt style x problem type, when the chosen runs cover several styles (else None):
    how much of a skill survives being asked in other words."""
    runs = styles_covered(run_a, run_b)
    if len(runs) < 2:
        return None
    import plotly.graph_objects as go
    s = store()
    order = sorted(runs, key=lambda style: STYLES.index(style) if style in STYLES else len(STYLES))
    summaries = {style: summarize(samples) for style in order if (samples := s.samples(runs[style]))}
    if len(summaries) < 2:
        return None
    table = style_table(summaries)
    problems = [p for p in PROBLEM_TYPES if p in table["problems"]] + \
        [p for p in table["problems"] if p not in PROBLEM_TYPES]
    z, text = [], []
    for style in table["styles"]:
        got = table["solved"][style]
        z.append([got[p][0] / got[p][1] if p in got and got[p][1] else None for p in problems]
                 + [table["accuracy"][style]])
        text.append([f"{got[p][0]}/{got[p][1]}" if p in got else "" for p in problems]
                    + [f"{summaries[style]['solved']}/{summaries[style]['n']}"])
    labels = [f"{style} (#{runs[style]})" for style in table["styles"]]
    fig = go.Figure(go.Heatmap(z=z, x=problems + ["all"], y=labels, text=text, texttemplate="%{text}",
                               hovertemplate="%{y}, %{x}: %{text} solved<extra></extra>", zmin=0, zmax=1,
                               xgap=2, ygap=2, colorscale=[[0, "#fee2e2"], [0.5, "#fde68a"], [1, "#16a34a"]]))
    fig.update_layout(title="solved per prompt style x problem type", yaxis=dict(autorange="reversed"),
                      height=140 + 45 * len(labels), margin=dict(l=150, r=20, t=40, b=90), template="plotly_white")
    return fig


def _headline(label: str, summary: dict, run: dict) -> str:
    low, high = summary["accuracy_ci"]
    state = "" if run["status"] == "completed" else f" ({run['status']}, partial)"
    cut = (f"; ⚠️ {summary['cut_off']} answer(s) hit the max-new-tokens cap unfinished (raise it)"
           if summary.get("cut_off") else "")
    k = summary.get("pass_at_k") or {}
    ci = k.get("ci", {})
    several = (f"; {k['instances']} instances, {k['samples_per_instance']['max']} samples each: " + ", ".join(
        f"**{m} {v:.1%}**" + (f" ({ci[m][0]:.0%}-{ci[m][1]:.0%})" if m in ci else "")
        for m, v in k.items() if m.startswith("pass@"))) if k.get("samples_per_instance", {}).get("max", 1) > 1 else ""
    return (f"**{label}**{state}: **{summary['solved']}/{summary['n']} solved ({summary['accuracy']:.1%}**, 95% CI "
            f"{low:.0%}-{high:.0%}), partial credit {summary['partial_credit']:.1%}{several}{cut}")


def cell_at(table, row: int, col: int) -> tuple[str | None, int | None]:
    """The (problem, difficulty) of a clicked cell of the grid table (its first column holds the problem
    types, its other headers are ``d<difficulty>``)."""
    if table is None or col < 1 or not 0 <= row < len(table) or col >= len(table.columns):
        return None, None
    return table.iloc[row, 0], int(str(table.columns[col]).lstrip("d"))


def build(gr) -> dict:
    with gr.Accordion("Run an evaluation", open=True):
        with gr.Row():
            model = gr.Dropdown(model_choices(), value=model_choices()[0], allow_custom_value=True, label="Model",
                                elem_id="eval-model")
            adapter = gr.Dropdown(adapter_choices(), value="", allow_custom_value=True,
                                  label="LoRA adapter (a finished training run, or a directory)")
            with_base = gr.Checkbox(value=True, label="Also evaluate the base model on the same problems")
        with gr.Row():
            problems = gr.CheckboxGroup(list(PROBLEM_TYPES), value=list(PROBLEM_TYPES), label="Problem types")
        with gr.Row():
            difficulties = gr.CheckboxGroup([str(d) for d in range(1, 11)],
                                            value=[str(d) for d in REFERENCE_DIFFICULTIES], label="Difficulties")
            per_cell = gr.Number(value=1, precision=0, minimum=1, label="Instances per cell")
            max_new = gr.Number(value=EvalSettings.max_new_tokens, precision=0, label="Max new tokens")
            batch = gr.Number(value=0, precision=0, minimum=0, label="Batch size (0 = automatic)")
        with gr.Row():  # sent as typed: the settings' ranges refuse what cannot be used, in words
            samples = gr.Number(value=1, label="Samples per instance (pass@k; > 1 needs a temperature)",
                                elem_id="eval-samples")
            temperature = gr.Number(value=0.0, label="Temperature (0 = greedy)", elem_id="eval-temperature")
            top_p = gr.Number(value=1.0, label="Top-p (0 to 1]", elem_id="eval-top-p")
            prompt_style = gr.Dropdown(list(STYLES) + [ALL_STYLES], value="contract", elem_id="eval-prompt-style",
                                       label="Prompt style (all: one run per style, and a style x type heatmap)")
        with gr.Row():
            go = gr.Button("Run evaluation", variant="primary", elem_id="eval-start")
            halt = gr.Button("Stop", variant="stop")
            again = gr.Button("Resume", elem_id="eval-resume")
        status = gr.Markdown(elem_id="eval-status")
    with gr.Row():
        run_a = gr.Dropdown(run_choices("eval"), value=None, label="Evaluation", allow_custom_value=True,
                            elem_id="eval-a")
        run_b = gr.Dropdown(run_choices("eval"), value=None, label="Compare with (optional, e.g. the base model)",
                            allow_custom_value=True, elem_id="eval-b")
    headline = gr.Markdown(elem_id="eval-headline")
    heat = gr.Plot(label="Problem type x difficulty", elem_id="eval-heatmap")
    style_heat = gr.Plot(label="Prompt style x problem type", visible=False, elem_id="eval-style-heatmap")
    table = gr.Dataframe(label="Click a cell to inspect its samples", interactive=False, elem_id="eval-grid")
    bar = gr.Plot(label="Accuracy")
    following = gr.State(None)

    def launch(*values):
        text, run_id = start(*values)
        if not run_id:
            return text, None, gr.skip(), gr.skip()
        choices = run_choices("eval")
        twins = [r for r in store().children(run_id) if r["kind"] == "eval"]
        base = twins[0]["id"] if twins else None
        return (f"{text}\n\n{run_status(run_id)}", run_id, gr.update(choices=choices, value=run_id),
                gr.update(choices=choices, value=base))

    go.click(launch, [model, adapter, with_base, problems, difficulties, per_cell, max_new, batch, samples, temperature,
                      top_p, prompt_style],
             [status, following, run_a, run_b], api_name="start_evaluation")
    halt.click(stop, [following], [status], api_name="stop_evaluation")

    def relaunch(run_id, shown):
        text, resumed = resume(run_id, shown)
        return (f"{text}\n\n{run_status(resumed)}" if resumed else text), resumed or run_id

    again.click(relaunch, [following, run_a], [status, following], api_name="resume_evaluation")
    adapter.change(model_for_adapter, [adapter, model], [model], api_visibility="private")

    def poll(run_id, a, b, last_view, last_labels):
        """The status block from the store; the chosen evaluations redrawn only when samples or statuses
        changed; the run lists (their labels carry the status) refreshed only when a label changed."""
        s = store()
        text = run_status(run_id) if followed(run_id) is not None else gr.skip()
        choices = run_choices("eval")
        labels = repr(choices)
        lists = (gr.update(choices=choices),) * 2 if labels != last_labels else (gr.skip(),) * 2
        view = ":".join(f"{r}/{s.get_run(r)['status']}/{len(s.done_keys(r))}" for r in map(parse_run, (a, b))
                        if r is not None and any(r == c[1] for c in choices))
        covered = styles_covered(a, b)  # an evaluation in several prompt styles: its other runs count too
        styles = ":".join(f"{r}/{s.get_run(r)['status']}/{len(s.done_keys(r))}" for r in covered.values()) \
            if len(covered) > 1 else ""
        last_main, _, last_styles = (last_view or "").partition("|")
        drawn = show(a, b) if view != last_main and view else (gr.skip(),) * 4
        styled = style_update(a, b) if styles != last_styles else gr.skip()
        return (text, *drawn, styled, *lists, f"{view}|{styles}", labels)

    def style_update(a, b):
        fig = style_heatmap(a, b)
        return gr.update(value=fig, visible=fig is not None)

    view_key, labels_key = gr.State(""), gr.State("")
    timer = gr.Timer(3.0)
    timer.tick(poll, [following, run_a, run_b, view_key, labels_key],
               [status, headline, heat, bar, table, style_heat, run_a, run_b, view_key, labels_key],
               show_progress="hidden",
               api_visibility="private")
    for control in (run_a, run_b):
        control.change(style_update, [run_a, run_b], [style_heat], api_visibility="private")
        control.change(show, [run_a, run_b], [headline, heat, bar, table], api_name="evaluation_view" if control is run_a else False,
                       api_visibility="public" if control is run_a else "private")
        control.focus(lambda: gr.update(choices=run_choices("eval")), None, [control],
                      api_visibility="private")
    adapter.focus(lambda: gr.update(choices=adapter_choices()), None, [adapter], api_visibility="private")
    return {"run_a": run_a, "run_b": run_b, "table": table, "headline": headline, "heat": heat, "bar": bar,
            "style_heat": style_heat}
