"""What the Eval tab draws from samples: the problem type x difficulty grid as a coloured, clickable table
(one evaluation, or the change between two per cell), its colour legend in %, the failure breakdown as
clickable stacked bars, per-type and per-difficulty bars, the prompt style x type heatmap, the headline, and
the 'learned vs forgot' table and figure of an adapter. Plain functions of samples, or of learned.py's rows
(the style heatmap reads the store for the chosen runs' other styles)."""

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


def _axes(*sample_sets, planned: dict | None = None) -> tuple[list[str], list[int]]:
    present = {s["problem"] for samples in sample_sets for s in samples} | set((planned or {}).get("problems", []))
    problems = [p for p in PROBLEM_TYPES if p in present] + sorted(present - set(PROBLEM_TYPES))
    difficulties = sorted({s["difficulty"] for samples in sample_sets for s in samples}
                          | {int(d) for d in (planned or {}).get("difficulties", [])})
    return problems, difficulties


def planned_cells(run: dict) -> dict | None:
    """What a grid evaluation still under way will fill: its problem types and difficulties and the samples a cell
    holds when done; None for a finished run or another benchmark (its grid is what its samples cover)."""
    from ..store import ACTIVE
    settings = run.get("settings") or {}
    if run.get("status") not in ACTIVE or settings.get("benchmark", "grid") != "grid":
        return None
    return {"problems": settings.get("problems") or list(PROBLEM_TYPES),
            "difficulties": settings.get("difficulties") or [],
            "n": int(settings.get("per_cell") or 1) * int(settings.get("samples") or 1)}


PENDING = "color: #9ca3af; font-size: 13px"  # a cell whose answers are still being written


def _mix(scale, x: float) -> str:
    """The colour at ``x`` (0..1) between the stops of ``scale``."""
    x = min(max(x, 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(scale, scale[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            rgb = [round(int(c0[i:i + 2], 16) * (1 - t) + int(c1[i:i + 2], 16) * t) for i in (1, 3, 5)]
            return "#" + "".join(f"{v:02x}" for v in rgb)
    return scale[-1][1]


def grid_table(samples: list[dict], other: list[dict] | None = None, planned: dict | None = None,
               planned_other: dict | None = None):
    """The heatmap as a table of coloured, clickable cells: rows = problem types, columns ``d<difficulty>``.
    One evaluation: 'solved/n (tests passed/tests)', coloured by the solved fraction. With ``other`` (B), the change from
    B to these samples (A) per cell, 'B → A (±k)', coloured by the change in solved fraction. ``planned`` (A's) and
    ``planned_other`` (B's), from ``planned_cells``, for runs still under way: the whole grid is drawn from the start,
    a cell not begun reads '…' in grey and one partly judged 'k/n so far, of N' (compared: 'k/n …'), so the grid
    fills as verdicts arrive."""
    import pandas as pd
    problems, difficulties = _axes(samples, other or [], planned=planned or planned_other)
    mine, base = cells(samples), cells(other or [])

    def short(c, plan) -> str:  # ' …' on a cell still filling
        return " …" if plan and c and c["n"] < plan["n"] else ""

    rows, colors = [], []
    for p in problems:
        row, color = [p], ["font-size: 13px"]
        for d in difficulties:
            c, b = mine.get((p, d)), base.get((p, d))
            if other is None:
                if c:
                    text = f"{c['solved']}/{c['n']} ({c['passed']}/{c['total']})"
                    row.append(f"{c['solved']}/{c['n']} so far, of {planned['n']}" if short(c, planned) else text)
                else:
                    row.append("…" if planned else "")
                value, scale = (c["solved"] / c["n"] if c else None), SOLVED_SCALE
            else:
                before = f"{b['solved']}/{b['n']}{short(b, planned_other)}" if b else ("…" if planned_other else "–")
                after = f"{c['solved']}/{c['n']}{short(c, planned)}" if c else ("…" if planned else "–")
                filling = short(c, planned) or short(b, planned_other)
                change = f" ({c['solved'] - b['solved']:+d})" if c and b and not filling else ""
                row.append(f"{before} → {after}{change}" if c or b or planned or planned_other else "")
                value = (1 + c["solved"] / c["n"] - b["solved"] / b["n"]) / 2 if c and b else None
                scale = CHANGE_SCALE
            color.append((PENDING if planned or planned_other else "font-size: 13px") if value is None else
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


def breakdown(groups: list[tuple[str, str, list[dict]]], waiting: str = "") -> str:
    """Stacked bars, one per evaluation ``(side, label, samples)``: its samples by cause (failures.py); every
    segment and key entry carries ``data-side``/``data-cause``, so a click opens those samples in Inspect.
    ``waiting``: an evaluation under way with nothing judged yet, named (the panel says so, not blank)."""
    out = ["<div class='eval-breakdown' style='font-size:13px'><b>Why answers failed</b> "
           "<span style='opacity:.7'>(click a part to inspect those samples)</span>"]
    if waiting:
        out.append(f"<div style='margin-top:10px;opacity:.7'>{escape(waiting)}: no answer judged yet. Each "
                   "verdict is counted here as it arrives.</div>")
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


def learned_table(rows: list[dict]):
    """The 'learned vs forgot' rows (learned.py) as a table, the change coloured on the -100..+100 points
    scale of the compared grid; rows without final numbers stay white."""
    import pandas as pd

    from ..learned import COLUMNS, table_rows
    frame = pd.DataFrame(table_rows(rows), columns=COLUMNS)
    plain = "font-size: 13px"
    colors = [[plain] * len(COLUMNS) for _ in rows]
    for color, row in zip(colors, rows):
        if row["final"]:
            shade = _mix(CHANGE_SCALE, (1 + row["change"] / 100) / 2)
            color[COLUMNS.index("change")] = f"background-color: {shade}; color: #111827; {plain}"
    styles = pd.DataFrame(colors, columns=COLUMNS)
    return frame.style.apply(lambda _: styles, axis=None)


def learned_figure(rows: list[dict]):
    """Base and adapter pass@1 per row, with 95% intervals, joined by a line green when the adapter gained and
    red when it lost; a row without both runs completed says why instead of plotting a number."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for side, color, shift in (("base", "#94a3b8", 0.14), ("adapter", PALETTE[0], -0.14)):
        shown = [(k, r[side]) for k, r in enumerate(rows) if r[side] and "pass@1" in r[side]]
        fig.add_scatter(x=[s["pass@1"] for _, s in shown], y=[k + shift for k, _ in shown], mode="markers",
                        name=f"{side} (run)", marker=dict(color=color, size=11),
                        error_x=dict(type="data", array=[s["ci"][1] - s["pass@1"] for _, s in shown],
                                     arrayminus=[s["pass@1"] - s["ci"][0] for _, s in shown], thickness=1.2),
                        customdata=[[rows[k]["row"], s["run"], s["solved"], s["n"]] for k, s in shown],
                        hovertemplate="%{customdata[0]}: %{x:.1%} (%{customdata[2]}/%{customdata[3]}), run "
                                      "#%{customdata[1]}<extra>" + side + "</extra>")
    for k, row in enumerate(rows):
        if row["final"]:
            fig.add_shape(type="line", x0=row["base"]["pass@1"], x1=row["adapter"]["pass@1"], y0=k + 0.14,
                          y1=k - 0.14, line=dict(color="#16a34a" if row["change"] >= 0 else "#dc2626", width=2))
        text = f"{row['change']:+.1f} pts" if row["final"] else _pending(row)
        fig.add_annotation(x=1.02, y=k, xref="paper", text=text, showarrow=False, xanchor="left",
                           font=dict(size=12, color="#111827" if row["final"] else "#64748b"))
    fig.update_xaxes(range=[-0.02, 1.02], tickformat=".0%", title="pass@1")
    fig.update_yaxes(tickvals=list(range(len(rows))), ticktext=[f"{r['row']} ({r['measures']})" for r in rows],
                     autorange="reversed")
    fig.update_layout(height=110 + 40 * len(rows), template="plotly_white", margin=dict(l=200, r=150, t=30, b=50),
                      legend=dict(orientation="h", y=1.12, x=0))
    return fig


def _pending(row: dict) -> str:
    """Why a row of the figure has no change: no adapter run, no base run, or one not completed."""
    if row["adapter"] is None:
        return "not evaluated"
    if row["base"] is None:
        return "no base run"
    return ", ".join(f"{side} {row[side]['status']}" for side in ("adapter", "base") if "pass@1" not in row[side])
