"""Loss tab: live loss, learning rate, grad norm, tokens/s and token accuracy of one or more training runs,
against steps, epochs or time, from runs.db; below them, shown only when a selected run logged them, the grid
accuracy measured during training (``accuracy.py``) and a GRPO run's reward, pass rate, share of groups with
no reward spread (they teach nothing) and completion length. When several runs are overlaid, the settings in
which they differ are listed under the loss plot and carried briefly in each run's legend label (``settings_diff``).

The timer asks the store a cheap question first (each selected run's last step and status); the figures
are rebuilt only when that answer changed, so an idle dashboard redraws nothing. Reloading the page
loses nothing: every point comes from the store.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import access
from .common import fast_timer, parse_run, run_choices, store

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
# shown only when a selected run has them
EXTRA_PANELS = {"grid_accuracy": "Grid accuracy during training (22 evaluation problems, greedy)",
                "reward": "GRPO: mean reward (tests passed + format bonus)",
                "pass_rate": "GRPO: share of answers passing every test",
                "frac_reward_zero_std": "GRPO: share of groups with no reward spread (no signal)",
                "completions/mean_length": "GRPO: mean completion length (tokens)"}
SHARES = ("grid_accuracy", "pass_rate", "frac_reward_zero_std", "mean_token_accuracy")  # plotted in %


# naming and bookkeeping, not the recipe: two runs differing only there trained the same way
NOT_RECIPE = ("experiment", "output_dir", "checkpoint_steps", "checkpoint_minutes", "accuracy_every",
              "accuracy_max_new_tokens",
              "imported", "demo")  # provenance of an imported run: shown once, in the Runs tab's detail
SHORT_NAMES = {"learning_rate": "lr", "effective_batch": "batch", "batch_size": "device batch", "lora_r": "r",
               "lora_alpha": "alpha", "lora_dropout": "dropout", "warmup_ratio": "warmup", "max_length": "max len"}


def shown_value(key: str, value) -> str:
    """A setting as the diff shows it: small numbers in short scientific form (2e-4, not 0.0002), whole floats
    without '.0', the trace set by its file name; missing (a run stored before the setting existed) as '–'."""
    if value is None:
        return "–"
    if isinstance(value, dict):  # never a Python dict in the legend: its keys, briefly
        return ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, (dict, list)))[:40] or "–"
    if key == "max_steps" and isinstance(value, int) and value <= 0:
        return "off"
    if key in ("batch_size",) and value == 0:
        return "auto"
    if key == "traces":
        return Path(str(value)).name
    if isinstance(value, float) and value and abs(value) < 0.01:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(value, float):
        return f"{value:g}"
    return access.public(str(value))


def settings_diff(runs: list[dict]) -> list[tuple[str, list[str]]]:
    """The training settings in which ``runs`` differ, as (setting, its shown value in each run), in the order
    the settings are stored; nothing for fewer than two runs."""
    if len(runs) < 2:
        return []
    keys = list(dict.fromkeys(k for run in runs for k in run.get("settings") or {} if k not in NOT_RECIPE))
    rows = []
    for key in keys:
        values = [shown_value(key, (run.get("settings") or {}).get(key)) for run in runs]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


def diff_markdown(labels: list[str], diff: list[tuple[str, list[str]]]) -> str:
    """The settings diff as a markdown table (setting | one column per run), or '' when there is none."""
    if not diff:
        return ""
    head = "| setting | " + " | ".join(label.replace("|", "/") for label in labels) + " |"
    rule = "|---" * (len(labels) + 1) + "|"
    body = [f"| {key.replace('_', ' ')} | " + " | ".join(f"`{v}`" for v in values) + " |" for key, values in diff]
    return "\n".join(["**Settings that differ**", "", head, rule, *body])


def legend_note(diff: list[tuple[str, list[str]]], column: int, most: int = 3) -> str:
    """One run's differing settings, briefly, for its legend label: ' (lr 1e-3, r 8)', the first ``most`` of
    them, a model or file by the last part of its path; '' when none."""
    parts = [f"{SHORT_NAMES.get(key, key.replace('_', ' '))} {Path(values[column]).name[:24]}"
             for key, values in diff[:most]]
    more = ", …" if len(diff) > most else ""
    return f" ({', '.join(parts)}{more})" if parts else ""


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
    """(loss, learning rate, grad norm, tokens/s, token accuracy figures, summary markdown, settings diff
    markdown, then one figure per ``EXTRA_PANELS`` entry, None where no selected run logged it)."""
    import plotly.graph_objects as go

    s = store()
    figs = {name: go.Figure() for name in (*PANELS, *EXTRA_PANELS)}
    lines = []
    top = 0
    runs = []
    for run_id in run_ids:
        try:
            runs.append(s.get_run(run_id))
        except KeyError:
            continue
    names = [f"#{run['id']} {run.get('name') or ''}".strip() for run in runs]
    diff = settings_diff(runs)
    models = [d for d in diff if d[0] == "model"]
    diff = [d for d in diff if d[0] != "model"]  # the model is in every label already
    for n, run in enumerate(runs):
        run_id = run["id"]
        color = PALETTE[n % len(PALETTE)]
        model = models[0][1][n] if models else shown_value("model", run.get("model") or "")
        label = f"{names[n]} · {Path(model).name[:32]}" if model and model != "–" else names[n]
        label += legend_note(diff, n)
        rows = s.metrics(run_id, list(figs))
        xs = _x(rows, x_axis)
        for name, fig in figs.items():
            points = [(xs[r["step"]], r["value"], r["step"]) for r in rows
                      if r["name"] == name and math.isfinite(r["value"]) and r["step"] in xs]
            if not points:
                continue
            steps, values, at = zip(*points)
            top = max(top, max(steps))
            name_shown, hover = label, f"{x_axis} %{{x:.4g}}<br>%{{y:.4g}}"
            if name == "loss":  # the last raw value, whatever the smoothing shows
                name_shown = f"{label} · last {values[-1]:.4g} at step {at[-1]}"
            raw = values
            if name == "loss" and smoothing > 0:
                fig.add_scatter(x=steps, y=values, mode="lines", line=dict(color=color, width=1), opacity=0.3,
                                name=f"{label} (raw)", showlegend=False, hoverinfo="skip")
                values = smooth(list(values), smoothing)
                hover = f"{x_axis} %{{x:.4g}}<br>smoothed %{{y:.4g}}<br>raw %{{customdata:.4g}}"
            fig.add_scatter(x=steps, y=values, customdata=list(raw), mode="lines+markers", marker=dict(size=4),
                            line=dict(color=color), name=name_shown, hovertemplate=f"{hover}<extra>{label}</extra>")
        losses = [r["value"] for r in rows if r["name"] == "loss"]
        speeds = [r["value"] for r in rows if r["name"] == "tokens_per_s" and math.isfinite(r["value"])]
        if losses:
            speed = f", {sum(speeds) / len(speeds):.0f} tokens/s" if speeds else ""
            grid = [r for r in rows if r["name"] == "grid_accuracy"]
            accuracy = (f", grid accuracy {grid[0]['value']:.0%} at step {grid[0]['step']} -> {grid[-1]['value']:.0%} "
                        f"at step {grid[-1]['step']}" if len(grid) > 1 else "")
            lines.append(f"**{names[n]}** ({run['status']}): step {max(r['step'] for r in rows)}, "
                         f"last loss {losses[-1]:.4f}, lowest {min(losses):.4f}{speed}{accuracy}")
    titles = {**PANELS, **EXTRA_PANELS}
    for name, fig in figs.items():
        if name in SHARES:
            fig.update_yaxes(tickformat=".0%", rangemode="tozero")
        fig.update_layout(title=dict(text=titles[name], x=0, xanchor="left"), xaxis_title=X_AXES[x_axis],
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
    extras = [figs[name] if figs[name].data else None for name in EXTRA_PANELS]
    return (*(figs[name] for name in PANELS), summary, diff_markdown(names, diff), *extras)


def refresh(selected, smoothing, log_scale, last_key, x_axis="step"):
    """Timer handler: new figures only if something changed since ``last_key``; else leave them be."""
    import gradio as gr
    run_ids = [r for r in (parse_run(v) for v in (selected or [])) if r is not None] or default_selection()
    x_axis = x_axis if x_axis in X_AXES else "step"
    key = state_key(run_ids, smoothing, bool(log_scale), x_axis)
    if key == last_key:
        return (*(gr.skip(),) * (len(PANELS) + 2), last_key, *(gr.skip(),) * len(EXTRA_PANELS))
    *shown, = figures(run_ids, smoothing, bool(log_scale), x_axis)
    main, extras = shown[:len(PANELS) + 2], shown[len(PANELS) + 2:]
    return (*main, key, *(gr.update(value=fig, visible=fig is not None) for fig in extras))


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
    diff = gr.Markdown(elem_id="loss-settings-diff")
    with gr.Row():
        lr = gr.Plot(label="Learning rate")
        grad = gr.Plot(label="Grad norm")
    with gr.Row():
        speed = gr.Plot(label="Tokens/s")
        accuracy = gr.Plot(label="Token accuracy")
    extras = {}
    for row in (("grid_accuracy",), ("reward", "pass_rate"), ("frac_reward_zero_std", "completions/mean_length")):
        with gr.Row():
            for name in row:
                extras[name] = gr.Plot(label=EXTRA_PANELS[name], visible=False,
                                       elem_id="loss-" + name.replace("/", "-").replace("_", "-"))
    key = gr.State("")
    outputs = [loss, lr, grad, speed, accuracy, summary, diff, key, *(extras[name] for name in EXTRA_PANELS)]
    timer = fast_timer(gr)
    timer.tick(refresh, [runs, smoothing, log_scale, key, x_axis], outputs, show_progress="hidden",
               api_name="loss_curves")
    for control in (runs, smoothing, log_scale, x_axis):
        control.change(refresh, [runs, smoothing, log_scale, gr.State(""), x_axis], outputs, show_progress="hidden",
                       api_visibility="private")
    runs.focus(lambda: gr.update(choices=run_choices("train")), None, [runs], api_visibility="private")
    # drawn while the tab was hidden, plotly takes a default width (the loss plot filled ~55%, the others were
    # clipped): redraw when the tab is shown
    redraw = (refresh, [runs, smoothing, log_scale, gr.State(""), x_axis], outputs)
    return {"runs": runs, "redraw": redraw, "timer": timer}
