"""Eval tab: launch the grid as a job; heatmap, failure breakdown, per-type and per-difficulty bars, two
evaluations compared.

The heatmap is a table of coloured cells (eval_figures.py draws it): clicking a cell opens its samples in the
Inspect tab, both evaluations when two are compared (each cell then reads 'B → A (change)'); clicking a part
of the failure breakdown opens the samples of that verdict. One status block, read from the store every few
seconds, shows each run of the followed evaluation (the adapter run and its base-model twin) with its own
counts and ETA; the view and the run lists are redrawn when the store says something changed. When the chosen
evaluation was asked in several prompt styles (``--prompt-style all``), a style x type heatmap shows how much
of each skill survives other wording. Above the evaluation lists, 'Learned vs forgot' (learned_view.py) sets an
adapter's change on the grid in each prompt style beside its change on HumanEval. The Train tab's "Evaluate
this adapter" starts the form's default evaluation of a finished run's adapter (``evaluate_adapter``).
"""

from __future__ import annotations

from .. import jobs
from ..evaluate import EvalSettings, compare, summarize
from ..problems import PROBLEM_TYPES, REFERENCE_DIFFICULTIES
from ..problems.styles import ALL as ALL_STYLES, STYLES
from ..settings import whole_numbers
from ..store import ACTIVE
from . import access
from . import learned_view
from .common import fast_timer, form_number, is_number, parse_run, restorable, run_choices, store, waiting_note
from .eval_figures import (BREAKDOWN_JS, bars, breakdown, cell_at, grid_table, headline, legend, planned_cells,  # noqa: F401
                           style_heatmap, styles_covered)
from .eval_jobs import controls, followed, resume, run_group, run_status, stop, stop_followed  # noqa: F401
from .choices import adapter_choices, adapter_dir, evaluable, model_choices  # noqa: F401

# the form's fields, in the order ``start`` takes them
FIELDS = ("model", "adapter", "with_base", "problems", "difficulties", "per_cell", "max_new_tokens", "batch_size",
          "samples", "temperature", "top_p", "prompt_style")


def form_defaults() -> dict:
    """The form's values on a fresh page, by field: the first model offered, no adapter, every problem type at
    the reference difficulties, one greedy answer per instance, the contract prompt."""
    return {"model": model_choices()[0], "adapter": "", "with_base": False, "problems": list(PROBLEM_TYPES),
            "difficulties": [str(d) for d in REFERENCE_DIFFICULTIES], "per_cell": 1,
            "max_new_tokens": EvalSettings.max_new_tokens, "batch_size": 0, "samples": 1, "temperature": 0.0,
            "top_p": 1.0, "prompt_style": "contract"}


def model_for_adapter(adapter: str, model: str) -> str:
    """Picking a training run's adapter picks its base model too."""
    try:
        path = adapter_dir(adapter)
    except ValueError:
        return model
    for run in store().runs(kind="train"):
        if path and run.get("adapter") == path:
            return run["model"]
    return model


def start(model, adapter, with_base, problems, difficulties, per_cell, max_new_tokens, batch_size, samples=1,
          temperature=0.0, top_p=1.0, prompt_style="contract") -> tuple[str, int | None]:
    access.require_owner("start an evaluation")
    try:
        access.check_model(model)
        adapter = adapter_dir(adapter)
        settings = EvalSettings(problems=list(problems or []), difficulties=[int(d) for d in difficulties or []],
                                per_cell=int(per_cell or 1), max_new_tokens=int(max_new_tokens or EvalSettings.max_new_tokens),
                                batch_size=int(batch_size or 0), model=(model or "").strip() or None,
                                adapter=(adapter or "").strip() or None,
                                samples=form_number("samples per instance", samples, 1),
                                temperature=form_number("temperature", temperature, 0.0),
                                top_p=form_number("top-p", top_p, 1.0), prompt_style=prompt_style or "contract")
        whole_numbers(settings)  # 3.0 samples from the form is 3; 2.5 stays and is refused by check()
        ids = jobs.start_eval(store(), settings, compare_base=bool(with_base) and bool(settings.adapter))
    except (ValueError, jobs.JobRefused) as exc:
        return f"⚠️ Not started: {exc}", None
    if settings.prompt_style == ALL_STYLES:
        what = f"#{ids[0]} in {len(STYLES)} prompt styles (runs {', '.join(f'#{i}' for i in ids)})"
    else:
        what = f"#{ids[0]}" + (f" and #{ids[1]} (base model, same problems)" if len(ids) > 1 else "")
    wait = waiting_note(*ids)
    return (f"Evaluation {what} {wait}." if wait else f"Started evaluation {what}."), ids[0]


def saved_values(saved) -> dict:
    """The Eval form's values saved in this browser that it may show now: numbers and the base-model box as they
    were, problem types, difficulties and prompt style only when offered, a model or adapter as typed (hosted:
    only one on the lists)."""
    hosted = access.hosted()
    models = model_choices() if hosted else None
    adapters = [value for _, value in adapter_choices()] if hosted else None
    difficulties = [str(d) for d in range(1, 11)]
    fits = {field: is_number for field in ("per_cell", "max_new_tokens", "batch_size", "samples", "temperature",
                                           "top_p")}
    fits.update(model=lambda v: isinstance(v, str) and v.strip() != "" and (models is None or v in models),
                adapter=lambda v: isinstance(v, str) and (adapters is None or v in adapters),
                with_base=lambda v: isinstance(v, bool),
                problems=lambda v: isinstance(v, list) and bool(v) and all(p in PROBLEM_TYPES for p in v),
                difficulties=lambda v: isinstance(v, list) and bool(v) and all(d in difficulties for d in v),
                prompt_style=lambda v: v in list(STYLES) + [ALL_STYLES])
    return restorable(saved, fits)


def evaluate_adapter(run_id) -> tuple[str, int | None]:
    """The Train tab's "Evaluate this adapter": the followed training run's adapter with the base model alongside,
    on the form's defaults and the run's own model, started or queued like the form's: (message, evaluation).
    The adapter is found from the run id here, never from a path the page sends."""
    access.require_owner("start an evaluation")
    run = evaluable(run_id)
    if run is None:
        return "⚠️ Not started: the followed run has no adapter to evaluate (yet)", None
    form = dict(form_defaults(), model=run["model"], adapter=f"#{run['id']}", with_base=True)
    return start(*(form[field] for field in FIELDS))


def launched(text: str, run_id: int | None) -> tuple:
    """What a launch shows: (status block, evaluation followed, Evaluation list, Compare list), the new
    evaluation shown with its base-model twin; the message alone when nothing started."""
    import gradio as gr
    if not run_id:
        return text, None, gr.skip(), gr.skip()
    choices = run_choices("eval")
    twins = [r for r in store().children(run_id) if r["kind"] == "eval"]
    base = twins[0]["id"] if twins else None
    return (f"{text}\n\n{run_status(run_id)}", run_id, gr.update(choices=choices, value=run_id),
            gr.update(choices=choices, value=base))


def show(run_a, run_b):
    """(headline markdown, coloured clickable grid, its legend, failure breakdown, bars) for one evaluation,
    or two compared: then each grid cell reads 'B → A (change)'."""
    s = store()
    a, b = parse_run(run_a), parse_run(run_b)
    empty = (None, "", "", None)
    if a is None:
        return ("Choose an evaluation.", *empty)
    try:
        run = s.get_run(a)
        samples = s.samples(a)
    except KeyError as exc:
        return (str(exc), *empty)
    planned = planned_cells(run)
    if not samples and not planned:
        return (f"**#{a} {run.get('name') or ''}** ({run['status']}): no answers judged yet.", *empty)
    if not samples:  # under way, nothing judged yet: the whole grid, every cell waiting
        return (f"**#{a} {run.get('name') or ''}** ({run['status']}): no answers judged yet; the grid fills as "
                "verdicts arrive.", grid_table([], None, planned), legend(False),
                breakdown([], waiting=f"#{a} {run.get('name') or ''}".strip()), None)
    summary = summarize(samples)
    label = f"#{a} {run.get('name') or ''}"
    text = headline(label, summary, run)
    other = s.samples(b) if b is not None and b != a else []
    if not other:
        waiting = ""
        if b is not None and b != a:  # B chosen and under way, nothing of it judged yet: say so
            try:
                pending = s.get_run(b)
                waiting = f"#{b} {pending.get('name') or ''}".strip() if pending["status"] in ACTIVE else ""
            except KeyError:
                pass
        return (text, grid_table(samples, None, planned), legend(False),
                breakdown([("a", label, samples)], waiting=waiting), bars({label: summary}))
    other_run = s.get_run(b)
    other_label = f"#{b} {other_run.get('name') or ''}"
    diff = compare(other, samples)
    summaries = {other_label: summarize(other), label: summary}
    text += "  \n" + headline(other_label, summaries[other_label], other_run)
    text += (f"  \n**Change from {other_label} to {label}** on the {diff['n']} shared problems: "
             f"{diff['solved_a']} → {diff['solved_b']} solved ({diff['delta']:+d}); "
             f"{len(diff['fixed'])} fixed, {len(diff['broken'])} broken.")
    if run.get("adapter") and not other_run.get("adapter"):  # an adapter against the base model: the verdict
        text += "  \n" + verdict_line(run["adapter"])
    return (text, grid_table(samples, other, planned, planned_cells(other_run)), legend(True, label, other_label),
            breakdown([("a", label, samples), ("b", other_label, other)]), bars(summaries))


def verdict_line(adapter: str) -> str:
    """One line on what the adapter in ``adapter`` learned and forgot, from its learned-vs-forgot rows, and what to
    do next; '' when the store has no such rows."""
    from ..learned import learned_vs_forgot, verdict
    try:
        rows = learned_vs_forgot(store(), adapter)
    except ValueError:
        return ""
    return (f"**Verdict:** {verdict(rows)}.  \nNext: click a cell to inspect its samples, open *Learned vs "
            "forgot* below for every style, evaluate another adapter, or train your own (Train).")


def base_option(adapter) -> dict:
    """The 'also evaluate the base model' box follows the adapter: without one there is nothing to compare,
    so it is unticked and locked, and says why."""
    if (adapter or "").strip():
        return dict(interactive=True, value=True, info="the base model answers the very same problems")
    return dict(interactive=False, value=False, info="choose a LoRA adapter first: without one the base model "
                                                     "is the model evaluated")


def build(gr, saved) -> dict:
    """The tab; ``saved`` is where the form keeps its last used values (``remembered``, made outside the tabs:
    a hidden tab's is not read when the page loads)."""
    form = form_defaults()
    # open on an empty store; folded once there are results to show (the page load decides); a visitor, who can
    # start nothing, never sees it
    with access.owner_only(gr.Accordion("Run an evaluation", open=True, elem_id="eval-form")) as form_box:
        with access.owner_area():
            with gr.Row():
                model = gr.Dropdown(model_choices(), value=form["model"], allow_custom_value=not access.hosted(),
                                    label="Model", elem_id="eval-model")
                adapter = gr.Dropdown(adapter_choices(), value=form["adapter"], allow_custom_value=not access.hosted(),
                                      label="LoRA adapter (a finished training run, or a directory)",
                                      elem_id="eval-adapter")
                with_base = gr.Checkbox(label="Also evaluate the base model on the same problems",
                                        **base_option(form["adapter"]), elem_id="eval-with-base")
            with gr.Row():
                problems = gr.CheckboxGroup(list(PROBLEM_TYPES), value=form["problems"], label="Problem types")
            with gr.Row():
                difficulties = gr.CheckboxGroup([str(d) for d in range(1, 11)], value=form["difficulties"],
                                                label="Difficulties")
                per_cell = gr.Number(value=form["per_cell"], precision=0, minimum=1, label="Instances per cell")
                max_new = gr.Number(value=form["max_new_tokens"], precision=0, label="Max new tokens")
                batch = gr.Number(value=form["batch_size"], precision=0, minimum=0, label="Batch size (0 = automatic)")
            with gr.Row():  # sent as typed: the settings' ranges refuse what cannot be used, in words
                samples = gr.Number(value=form["samples"], elem_id="eval-samples",
                                    label="Samples per instance (pass@k; > 1 needs a temperature)")
                temperature = gr.Number(value=form["temperature"], label="Temperature (0 = greedy)",
                                        elem_id="eval-temperature")
                top_p = gr.Number(value=form["top_p"], label="Top-p (0 to 1]", elem_id="eval-top-p")
                prompt_style = gr.Dropdown(list(STYLES) + [ALL_STYLES], value=form["prompt_style"],
                                           elem_id="eval-prompt-style",
                                           label="Prompt style (all: one run per style, and a style x type heatmap)")
            with gr.Row():
                go = gr.Button("Run evaluation", variant="primary", elem_id="eval-start")
    status = gr.Markdown(elem_id="eval-status")  # outside the form: a folded form still shows what runs
    with access.owner_only(gr.Row(elem_id="eval-controls")):  # and Stop and Resume stay next to it, folded or not
        halt = gr.Button("Stop the evaluation", variant="stop", size="sm", elem_id="eval-stop", visible=False)
        again = gr.Button("Resume", size="sm", elem_id="eval-resume", visible=False)  # shown when they apply
    learned = learned_view.build(gr)
    with gr.Row():
        run_a = gr.Dropdown(run_choices("eval"), value=None, label="Evaluation", allow_custom_value=True,
                            elem_id="eval-a")
        run_b = gr.Dropdown(run_choices("eval"), value=None, label="Compare with (optional, e.g. the base model)",
                            allow_custom_value=True, elem_id="eval-b")
    learned_view.connect(gr, learned, run_a, run_b)
    headline = gr.Markdown(elem_id="eval-headline")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            key = gr.HTML(elem_id="eval-legend")
            table = gr.Dataframe(label="Problem type x difficulty: click a cell to inspect its samples",
                                 interactive=False, max_height=720, column_widths=["160px"] + ["132px"] * 10, elem_id="eval-grid")
        with gr.Column(scale=1, min_width=280):
            failures = gr.HTML(js_on_load=BREAKDOWN_JS, elem_id="eval-breakdown")
    style_heat = gr.Plot(label="Prompt style x problem type", visible=False, elem_id="eval-style-heatmap")
    bar = gr.Plot(label="Accuracy")
    view = [headline, table, key, failures, bar]  # what show() returns, in order
    following = gr.State(None)

    inputs = [model, adapter, with_base, problems, difficulties, per_cell, max_new, batch, samples, temperature, top_p,
              prompt_style]

    def launch(*values):
        """Start (or queue) the evaluation; a started one's form values are kept in this browser."""
        text, run_id = start(*values)
        return (*launched(text, run_id), dict(zip(FIELDS, values)) if run_id else gr.skip())

    launches = [go.click(launch, inputs, [status, following, run_a, run_b, saved], api_name="start_evaluation")]

    def restore(values):
        """A (re)loaded page shows the form as last used in this browser, where the lists still offer it; the
        base-model box stays locked without an adapter."""
        kept = saved_values(values)
        shown = {field: kept[field] if field in kept else gr.skip() for field in FIELDS}
        shown["with_base"] = gr.skip()  # it follows the adapter
        if "adapter" in kept:
            shown["adapter"] = gr.update(choices=adapter_choices(), value=kept["adapter"])
            shown["with_base"] = gr.update(**dict(base_option(kept["adapter"]),
                                                 value=kept.get("with_base", True) and bool(kept["adapter"].strip())))
        return [shown[field] for field in FIELDS]

    def halted(run_id):
        """Stop; the page then follows the stopped run, so its status block ends on what was kept (a page that
        launched nothing follows the newest active run, and once stopped there is none)."""
        text, stopped = stop_followed(run_id)
        return text, stopped if stopped is not None else run_id

    halt.click(halted, [following], [status, following], api_name="stop_evaluation")

    def buttons(run_id, shown):
        """Stop and Resume, each shown only when it applies (``controls``)."""
        can_stop, can_resume = controls(run_id, shown)
        return gr.update(visible=can_stop), gr.update(visible=can_resume)

    def relaunch(run_id, shown):
        text, resumed = resume(run_id, shown)
        return (f"{text}\n\n{run_status(resumed)}" if resumed else text), resumed or run_id

    launches.append(again.click(relaunch, [following, run_a], [status, following], api_name="resume_evaluation"))
    # on the user's choice only: a restored form keeps its own model and base-model box
    adapter.input(model_for_adapter, [adapter, model], [model], api_visibility="private")
    adapter.input(lambda a: gr.update(**base_option(a)), [adapter], [with_base], api_visibility="private")

    def poll(run_id, a, b, last_view, last_labels):
        """The status block from the store; the chosen evaluations redrawn only when samples or statuses
        changed; the run lists (their labels carry the status) refreshed only when a label changed."""
        s = store()
        text = run_status(run_id) if followed(run_id) is not None else gr.skip()
        choices = run_choices("eval")
        labels = repr(choices)
        lists = (gr.update(choices=choices),) * 2 if labels != last_labels else (gr.skip(),) * 2
        main_key = ":".join(f"{r}/{s.get_run(r)['status']}/{len(s.done_keys(r))}" for r in map(parse_run, (a, b))
                            if r is not None and any(r == c[1] for c in choices))
        covered = styles_covered(a, b)  # an evaluation in several prompt styles: its other runs count too
        styles = ":".join(f"{r}/{s.get_run(r)['status']}/{len(s.done_keys(r))}" for r in covered.values()) \
            if len(covered) > 1 else ""
        last_main, _, last_styles = (last_view or "").partition("|")
        drawn = show(a, b) if main_key != last_main and main_key else (gr.skip(),) * len(view)
        styled = style_update(a, b) if styles != last_styles else gr.skip()
        return (text, *drawn, styled, *lists, f"{main_key}|{styles}", labels, *buttons(run_id, a))

    def style_update(a, b):
        fig = style_heatmap(a, b)
        return gr.update(value=fig, visible=fig is not None)

    view_key, labels_key = gr.State(""), gr.State("")
    timer = fast_timer(gr)
    for launched_event in launches:  # the status follows a launch at once, not at the watcher's next look
        launched_event.then(lambda: gr.Timer(active=True), None, [timer], api_visibility="private")
    timer.tick(poll, [following, run_a, run_b, view_key, labels_key],
               [status, *view, style_heat, run_a, run_b, view_key, labels_key, halt, again],
               show_progress="hidden",
               api_visibility="private")
    for event in (run_a.change, following.change):
        event(buttons, [following, run_a], [halt, again], show_progress="hidden", api_visibility="private")
    for control in (run_a, run_b):
        control.change(style_update, [run_a, run_b], [style_heat], api_visibility="private")
        control.change(show, [run_a, run_b], view, api_name="evaluation_view" if control is run_a else False,
                       api_visibility="public" if control is run_a else "private")
        control.focus(lambda: gr.update(choices=run_choices("eval")), None, [control],
                      api_visibility="private")
    adapter.focus(lambda: gr.update(choices=adapter_choices()), None, [adapter], api_visibility="private")
    return {"form": form_box, "run_a": run_a, "run_b": run_b, "table": table, "breakdown": failures, "view": view, "timer": timer,
            "style_heat": style_heat, "following": following, "status": status, "restore": (restore, [saved], inputs)}
