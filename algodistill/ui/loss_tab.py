"""Loss tab: live loss, learning rate and grad norm of one or more training runs, from runs.db.

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


def state_key(run_ids: list[int], smoothing: float, log_scale: bool) -> str:
    s = store()
    parts = []
    for run_id in run_ids:
        try:
            status = s.get_run(run_id)["status"]
        except KeyError:
            status = "missing"
        parts.append(f"{run_id}:{s.last_step(run_id)}:{status}")
    return "|".join(parts) + f"|{smoothing}|{log_scale}"


def figures(run_ids: list[int], smoothing: float = 0.0, log_scale: bool = False):
    """(loss figure, learning-rate figure, grad-norm figure, summary markdown)."""
    import plotly.graph_objects as go

    s = store()
    figs = {name: go.Figure() for name in ("loss", "learning_rate", "grad_norm")}
    lines = []
    for n, run_id in enumerate(run_ids):
        try:
            run = s.get_run(run_id)
        except KeyError:
            continue
        color = PALETTE[n % len(PALETTE)]
        label = f"#{run_id} {run.get('name') or ''}".strip()
        rows = s.metrics(run_id, ["loss", "learning_rate", "grad_norm"])
        for name, fig in figs.items():
            points = [(r["step"], r["value"]) for r in rows if r["name"] == name and math.isfinite(r["value"])]
            if not points:
                continue
            steps, values = zip(*points)
            if name == "loss" and smoothing > 0:
                fig.add_scatter(x=steps, y=values, mode="lines", line=dict(color=color, width=1), opacity=0.3,
                                name=f"{label} (raw)", showlegend=False, hoverinfo="skip")
                values = smooth(list(values), smoothing)
            fig.add_scatter(x=steps, y=values, mode="lines+markers", marker=dict(size=4), line=dict(color=color),
                            name=label, hovertemplate="step %{x}<br>%{y:.4g}<extra>" + label + "</extra>")
        losses = [r["value"] for r in rows if r["name"] == "loss"]
        if losses:
            lines.append(f"**{label}** ({run['status']}): step {max(r['step'] for r in rows)}, "
                         f"last loss {losses[-1]:.4f}, lowest {min(losses):.4f}")
    titles = {"loss": "Training loss", "learning_rate": "Learning rate", "grad_norm": "Gradient norm"}
    for name, fig in figs.items():
        fig.update_layout(title=titles[name], xaxis_title="step", height=360 if name == "loss" else 260,
                          margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25),
                          template="plotly_white", uirevision="keep")  # keep the user's zoom across updates
    if log_scale:
        figs["loss"].update_yaxes(type="log")
    summary = "  \n".join(lines) or "No logged steps yet for the selected runs."
    return figs["loss"], figs["learning_rate"], figs["grad_norm"], summary


def refresh(selected, smoothing, log_scale, last_key):
    """Timer handler: new figures only if something changed since ``last_key``; else leave them be."""
    import gradio as gr
    run_ids = [r for r in (parse_run(v) for v in (selected or [])) if r is not None] or default_selection()
    key = state_key(run_ids, smoothing, bool(log_scale))
    if key == last_key:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last_key
    return (*figures(run_ids, smoothing, bool(log_scale)), key)


def default_selection() -> list[int]:
    runs = store().runs(kind="train", limit=1)
    return [runs[0]["id"]] if runs else []


def build(gr) -> dict:
    with gr.Row():
        runs = gr.Dropdown(run_choices("train"), value=default_selection(), multiselect=True,
                           label="Training runs (several overlay; none chosen = the newest)", scale=3, elem_id="loss-runs")
        smoothing = gr.Slider(0, 0.99, value=0.0, step=0.01, label="Smoothing", scale=1)
        log_scale = gr.Checkbox(value=False, label="Log scale", scale=1)
    summary = gr.Markdown()
    loss = gr.Plot(label="Loss", elem_id="loss-plot")
    with gr.Row():
        lr = gr.Plot(label="Learning rate")
        grad = gr.Plot(label="Grad norm")
    key = gr.State("")
    outputs = [loss, lr, grad, summary, key]
    timer = gr.Timer(2.0)
    timer.tick(refresh, [runs, smoothing, log_scale, key], outputs, show_progress="hidden", api_name="loss_curves")
    for control in (runs, smoothing, log_scale):
        control.change(refresh, [runs, smoothing, log_scale, gr.State("")], outputs, show_progress="hidden",
                       api_visibility="private")
    runs.focus(lambda: gr.update(choices=run_choices("train")), None, [runs], api_visibility="private")
    return {"runs": runs}
