"""What the Eval tab draws from samples: the problem type x difficulty grid as a coloured, clickable table
(one evaluation, or the change between two per cell), its colour legend in %, the failure breakdown as
clickable stacked bars, per-type and per-difficulty bars, the prompt style x type heatmap and the headline.
Plain functions of samples (the style heatmap reads the store for the chosen runs' other styles)."""

from __future__ import annotations

from html import escape

from ..evaluate import style_runs, style_table, summarize
from ..problems import PROBLEM_TYPES
from ..problems.styles import STYLES
from .common import parse_run, store
from .failures import CAUSES, LABELS, failure_breakdown

SOLVED_SCALE = ((0.0, "#fecaca"), (0.5, "#fde68a"), (1.0, "#86efac"))  # 0% .. 100% solved
CHANGE_SCALE = ((0.0, "#f87171"), (0.5, "#f8fafc"), (1.0, "#4ade80"))  # -100% .. +100% change
CAUSE_COLORS = {"passed": "#16a34a", "no_code": "#94a3b8", "syntax_error": "#a855f7", "missing_function": "#6366f1",
                "exception": "#f97316", "wrong_answer": "#dc2626", "timeout": "#ca8a04", "crash": "#7f1d1d",
                "cut_off": "#0ea5e9"}
PALETTE = ("#636efa", "#00cc96", "#ef553b", "#ab63fa")
# a delegated listener on the component: it outlives every redraw of the bars inside it
BREAKDOWN_JS = ("element.addEventListener('click', (e) => { const s = e.target.closest('[data-cause]'); "
                "if (s) trigger('click', {cause: s.dataset.cause, side: s.dataset.side}); });")


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


def _mix(scale, x: float) -> str:
    """The colour at ``x`` (0..1) between the stops of ``scale``."""
    x = min(max(x, 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(scale, scale[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            rgb = [round(int(c0[i:i + 2], 16) * (1 - t) + int(c1[i:i + 2], 16) * t) for i in (1, 3, 5)]
            return "#" + "".join(f"{v:02x}" for v in rgb)
    return scale[-1][1]


def grid_table(samples: list[dict], other: list[dict] | None = None):
    """The heatmap as a table of coloured, clickable cells: rows = problem types, columns ``d<difficulty>``.
    One evaluation: 'solved/n (tests passed/tests)', coloured by the solved fraction. With ``other`` (B), the change from
    B to these samples (A) per cell, 'B → A (±k)', coloured by the change in solved fraction."""
    import pandas as pd
    problems, difficulties = _axes(samples, other or [])
    mine, base = cells(samples), cells(other or [])
    rows, colors = [], []
    for p in problems:
        row, color = [p], ["font-size: 13px"]
        for d in difficulties:
            c, b = mine.get((p, d)), base.get((p, d))
            if other is None:
                row.append(f"{c['solved']}/{c['n']} ({c['passed']}/{c['total']})" if c else "")
                value, scale = (c["solved"] / c["n"] if c else None), SOLVED_SCALE
            else:
                before = f"{b['solved']}/{b['n']}" if b else "–"
                after = f"{c['solved']}/{c['n']}" if c else "–"
                change = f" ({c['solved'] - b['solved']:+d})" if c and b else ""
                row.append(f"{before} → {after}{change}" if c or b else "")
                value = (1 + c["solved"] / c["n"] - b["solved"] / b["n"]) / 2 if c and b else None
                scale = CHANGE_SCALE
            color.append("font-size: 13px" if value is None else
                         f"background-color: {_mix(scale, value)}; color: #111827; font-size: 13px")
        rows.append(row), colors.append(color)
    columns = ["problem"] + [f"d{d}" for d in difficulties]
    frame = pd.DataFrame(rows, columns=columns)
    styles = pd.DataFrame(colors, columns=columns)
    return frame.style.apply(lambda _: styles, axis=None)


def cell_at(table, row: int, col: int) -> tuple[str | None, int | None]:
    """The (problem, difficulty) of a clicked cell of the grid table (its first column holds the problem
    types, its other headers are ``d<difficulty>``)."""
    table = table.data if type(table).__name__ == "Styler" else table
    if table is None or col < 1 or not 0 <= row < len(table) or col >= len(table.columns):
        return None, None
    return table.iloc[row, 0], int(str(table.columns[col]).lstrip("d"))


def legend(compare: bool, label_a: str = "", label_b: str = "") -> str:
    """The colour key of the grid, in %, and what a cell says."""
    scale, ends, what = ((CHANGE_SCALE, ("-100%", "0", "+100%"), f"change in solved, {escape(label_b)} → "
                          f"{escape(label_a)}; a cell reads 'B → A (change in problems solved)'") if compare else
                         (SOLVED_SCALE, ("0%", "50%", "100%"), "solved; a cell reads 'solved/instances (tests passed/tests)'"))
    stops = ", ".join(f"{c} {x:.0%}" for x, c in scale)
    marks = "".join(f"<span>{e}</span>" for e in ends)
    return (f"<div class='eval-legend' style='display:flex;align-items:center;gap:10px;font-size:13px'>"
            f"<div style='width:180px'><div style='height:12px;border-radius:3px;background:linear-gradient(to right,"
            f" {stops})'></div><div style='display:flex;justify-content:space-between'>{marks}</div></div>"
            f"<span>{what}.</span></div>")


def breakdown(groups: list[tuple[str, str, list[dict]]]) -> str:
    """Stacked bars, one per evaluation ``(side, label, samples)``: its samples by cause (failures.py); every
    segment and key entry carries ``data-side``/``data-cause``, so a click opens those samples in Inspect."""
    out = ["<div class='eval-breakdown' style='font-size:13px'><b>Why answers failed</b> "
           "<span style='opacity:.7'>(click a part to inspect those samples)</span>"]
    for side, label, samples in groups:
        counts, total = failure_breakdown(samples), max(len(samples), 1)
        segments, keys = [], []
        for name in CAUSES:
            n = counts[name]
            if not n:
                continue
            tip = f"{LABELS[name]}: {n} of {len(samples)}"
            data = f"data-side='{side}' data-cause='{name}' title='{tip}'"
            text = str(n) if n / total >= 0.06 else ""
            segments.append(f"<div {data} style='width:{100 * n / total:.2f}%;background:{CAUSE_COLORS[name]};"
                            f"color:#fff;text-align:center;cursor:pointer;overflow:hidden'>{text}</div>")
            keys.append(f"<span {data} style='cursor:pointer;white-space:nowrap'><span style='display:inline-block;"
                        f"width:10px;height:10px;background:{CAUSE_COLORS[name]};margin-right:3px'></span>"
                        f"{LABELS[name]} {n}</span>")
        out.append(f"<div style='margin-top:10px'>{escape(label)}: {len(samples)} samples</div>"
                   f"<div style='display:flex;height:24px;line-height:24px;border-radius:4px;overflow:hidden'>"
                   f"{''.join(segments)}</div><div style='display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px'>"
                   f"{''.join(keys)}</div>")
    return "".join(out) + "</div>"


def bars(summaries: dict[str, dict]):
    """Per-type and per-difficulty accuracy bars (one series per evaluation) with 95% intervals."""
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=("per problem type", "per difficulty"))
    for n, (label, summary) in enumerate(summaries.items()):  # one colour per evaluation in both panels
        for col, key in ((1, "per_problem"), (2, "per_difficulty")):
            groups = summary[key]
            xs = list(groups)
            ys = [g["accuracy"] for g in groups.values()]
            lo = [g["accuracy"] - g["accuracy_ci"][0] for g in groups.values()]
            hi = [g["accuracy_ci"][1] - g["accuracy"] for g in groups.values()]
            fig.add_bar(x=xs, y=ys, name=label, legendgroup=label, showlegend=col == 1, marker_color=PALETTE[n % 4],
                        error_y=dict(type="data", array=hi, arrayminus=lo, thickness=1),
                        customdata=[[g["solved"], g["n"], g["partial_credit"]] for g in groups.values()],
                        hovertemplate="%{x}: %{customdata[0]}/%{customdata[1]} solved, partial credit "
                                      "%{customdata[2]:.0%}<extra>" + label + "</extra>", row=1, col=col)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    fig.update_layout(barmode="group", height=380, template="plotly_white", margin=dict(l=50, r=20, t=40, b=80),
                      legend=dict(orientation="h", y=-0.3))
    return fig


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
                               xgap=2, ygap=2, colorscale=[[x, c] for x, c in SOLVED_SCALE],
                               colorbar=dict(title="solved", tickformat=".0%")))
    fig.update_layout(title="solved per prompt style x problem type", yaxis=dict(autorange="reversed"),
                      height=140 + 45 * len(labels), margin=dict(l=150, r=20, t=40, b=90), template="plotly_white")
    return fig


def headline(label: str, summary: dict, run: dict) -> str:
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
