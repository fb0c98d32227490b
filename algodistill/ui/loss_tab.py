"""Loss tab: live loss, learning rate, grad norm, tokens/s and token accuracy of one or more training runs,
against steps, epochs or time, from runs.db.

The timer asks the store a cheap question first (each selected run's last step and status); the figures
are rebuilt only when that answer changed, so an idle dashboard redraws nothing. Reloading the page
loses nothing: every point comes from the store.
"""

from __future__ import annotations

import math

from .common import parse_run, run_choices, store

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d")


def smooth(values: list[float], weight: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's), so early points are not pulled to zero."""
    if not 0 < weight < 1:
        return list(values)
    out, last, n = [], 0.0, 0
    for v in values:
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


X_AXES = {"step": "optimizer step", "epoch": "epoch", "time": "minutes since the run's first step"}
PANELS = {"loss": "Training loss", "learning_rate": "Learning rate", "grad_norm": "Gradient norm",
          "tokens_per_s": "Tokens per second", "mean_token_accuracy": "Token accuracy (answer tokens)"}


def state_key(run_ids: list[int], smoothing: float, log_scale: bool, x_axis: str = "step") -> str:
    s = store()
    parts = []
    for run_id in run_ids:
        try:
            status = s.get_run(run_id)["status"]
        except KeyError:
            status = "missing"
        parts.append(f"{run_id}:{s.last_step(run_id)}:{status}")
    return "|".join(parts) + f"|{smoothing}|{log_scale}|{x_axis}"


def _x(rows: list[dict], x_axis: str) -> dict[int, float]:
    """step -> the x value of that step on the chosen axis."""
    if x_axis == "epoch":
        return {r["step"]: r["epoch"] for r in rows if r.get("epoch") is not None}
    if x_axis == "time":
        first = min((r["time"] for r in rows), default=0.0)
        return {r["step"]: (r["time"] - first) / 60 for r in rows}
    return {r["step"]: r["step"] for r in rows}


def figures(run_ids: list[int], smoothing: float = 0.0, log_scale: bool = False, x_axis: str = "step"):
    """(loss, learning rate, grad norm, tokens/s, token accuracy figures, summary markdown)."""
    import plotly.graph_objects as go

    s = store()
    figs = {name: go.Figure() for name in PANELS}
    lines = []
    top = 0
    for n, run_id in enumerate(run_ids):
        try:
            run = s.get_run(run_id)
        except KeyError:
            continue
        color = PALETTE[n % len(PALETTE)]
        label = f"#{run_id} {run.get('name') or ''}".strip()
        rows = s.metrics(run_id, list(PANELS))
        xs = _x(rows, x_axis)
        for name, fig in figs.items():
            points = [(xs[r["step"]], r["value"]) for r in rows
                      if r["name"] == name and math.isfinite(r["value"]) and r["step"] in xs]
            if not points:
                continue
            steps, values = zip(*points)
            top = max(top, max(steps))
            if name == "loss" and smoothing > 0:
                fig.add_scatter(x=steps, y=values, mode="lines", line=dict(color=color, width=1), opacity=0.3,
                                name=f"{label} (raw)", showlegend=False, hoverinfo="skip")
                values = smooth(list(values), smoothing)
            fig.add_scatter(x=steps, y=values, mode="lines+markers", marker=dict(size=4), line=dict(color=color),
                            name=label, hovertemplate=f"{x_axis} %{{x:.4g}}<br>%{{y:.4g}}<extra>{label}</extra>")
        losses = [r["value"] for r in rows if r["name"] == "loss"]
        speeds = [r["value"] for r in rows if r["name"] == "tokens_per_s" and math.isfinite(r["value"])]
        if losses:
            speed = f", {sum(speeds) / len(speeds):.0f} tokens/s" if speeds else ""
            lines.append(f"**{label}** ({run['status']}): step {max(r['step'] for r in rows)}, "
                         f"last loss {losses[-1]:.4f}, lowest {min(losses):.4f}{speed}")
    for name, fig in figs.items():
        fig.update_layout(title=dict(text=PANELS[name], x=0, xanchor="left"), xaxis_title=X_AXES[x_axis],
                          height=360 if name == "loss" else 250, autosize=True,
                          margin=dict(l=50, r=20, t=40, b=40),
                          # above the plot, right-aligned: below it, it sat on the axis title
                          legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
                          template="plotly_white", uirevision="keep")  # keep the user's zoom across updates
        if x_axis == "step":  # whole steps only: no 1.5 between step 1 and step 2
            fig.update_xaxes(tickformat="d", dtick=max(1, math.ceil(top / 10)) if top else 1)
    if log_scale:
        figs["loss"].update_yaxes(type="log")
    summary = "  \n".join(lines) or "No logged steps yet for the selected runs."
    return (*figs.values(), summary)


def refresh(selected, smoothing, log_scale, last_key, x_axis="step"):
    """Timer handler: new figures only if something changed since ``last_key``; else leave them be."""
    import gradio as gr
    run_ids = [r for r in (parse_run(v) for v in (selected or [])) if r is not None] or default_selection()
    x_axis = x_axis if x_axis in X_AXES else "step"
    key = state_key(run_ids, smoothing, bool(log_scale), x_axis)
    if key == last_key:
        return (*(gr.skip(),) * (len(PANELS) + 1), last_key)
    return (*figures(run_ids, smoothing, bool(log_scale), x_axis), key)


def default_selection() -> list[int]:
    runs = store().runs(kind="train", limit=1)
    return [runs[0]["id"]] if runs else []


def build(gr) -> dict:
    with gr.Row():
        runs = gr.Dropdown(run_choices("train"), value=default_selection(), multiselect=True,
                           label="Training runs (several overlay; none chosen = the newest)", scale=3, elem_id="loss-runs")
        x_axis = gr.Radio(list(X_AXES), value="step", label="x axis", scale=1)
        smoothing = gr.Slider(0, 0.99, value=0.0, step=0.01, label="Smoothing", scale=1)
        log_scale = gr.Checkbox(value=False, label="Log scale", scale=1)
    summary = gr.Markdown()
    loss = gr.Plot(label="Loss", elem_id="loss-plot")
    with gr.Row():
        lr = gr.Plot(label="Learning rate")
        grad = gr.Plot(label="Grad norm")
    with gr.Row():
        speed = gr.Plot(label="Tokens/s")
        accuracy = gr.Plot(label="Token accuracy")
    key = gr.State("")
    outputs = [loss, lr, grad, speed, accuracy, summary, key]
    timer = gr.Timer(2.0)
    timer.tick(refresh, [runs, smoothing, log_scale, key, x_axis], outputs, show_progress="hidden",
               api_name="loss_curves")
    for control in (runs, smoothing, log_scale, x_axis):
        control.change(refresh, [runs, smoothing, log_scale, gr.State(""), x_axis], outputs, show_progress="hidden",
                       api_visibility="private")
    runs.focus(lambda: gr.update(choices=run_choices("train")), None, [runs], api_visibility="private")
    # drawn while the tab was hidden, plotly takes a default width (the loss plot filled ~55%, the others were
    # clipped): redraw when the tab is shown
    redraw = (refresh, [runs, smoothing, log_scale, gr.State(""), x_axis], outputs)
    return {"runs": runs, "redraw": redraw}
