"""Train tab: LoRA SFT on traces (the reference recipe) or GRPO with the verifier as the reward, launched as
a background job; status, progress, Stop (within seconds, keeping the last completed step) and Resume (an SFT
run, from its last checkpoint). Once the followed run has left an adapter, "Evaluate this adapter" evaluates
it (the handler is ``eval_tab.evaluate_adapter``).

The form is made from the settings classes (``SFTSettings``, ``GRPOSettings``): their fields marked ``form``
are its fields, in field order, grouped in rows by the field's form group, labelled by the field's label, and
the handlers take the values by name. A new setting is one field there."""

from __future__ import annotations

import hashlib
import math

from .. import jobs
from ..grpo import GRPOSettings
from ..problems import DIFFICULTIES, PROBLEM_TYPES
from ..problems.styles import STYLES
from ..settings import form_fields, form_label
from ..train_sft import RESUMABLE, SFTSettings, latest_checkpoint, run_dir
from ..traces import BUNDLED
from . import access
from .choices import adapter_choices, adapter_dir, evaluable, model_choices, starting_model  # noqa: F401
from .common import (accept_upload, checked, dispatch_jobs, download_folder, fast_timer, form_values, gpu_line, is_number,
                     parse_run, restorable, run_choices, status_markdown, store, trace_set, trace_sets, trace_value,
                     waiting_note)

# the form's fields, in the order the public API (/start_training, /start_grpo) takes them
FIELDS = form_fields(SFTSettings)
GRPO_FIELDS = form_fields(GRPOSettings)
DEVICES = ("auto", "cpu", "cuda")
METHODS = {"sft": "SFT on traces", "grpo": "GRPO, the verifier as reward"}
GRPO_LISTS = ("adapter", "problems", "difficulties")  # made into settings here, not by form_values


SHOW_STATUS_JS = """() => { const el = document.getElementById('train-message');
    if (el) el.scrollIntoView({block: 'start', behavior: 'smooth'}); }"""


def settings_from_form(form: dict) -> SFTSettings:
    """The one place the SFT form's values (field -> value) become settings. Numbers are checked here, by the
    same field ranges as everywhere (NaN, infinities, fractions of a whole number). An empty number is refused
    (``form_number``); empty text (model, traces, device) and a field not given at all mean the default."""
    clean = form_values(SFTSettings, {key: form[key] for key in FIELDS if key in form})  # absent: the default
    clean["traces"] = trace_set(clean.get("traces"))
    return checked(SFTSettings.from_dict(clean))


def grpo_settings_from_form(form: dict) -> GRPOSettings:
    """The GRPO form's values (field -> value) as settings: numbers and text as for SFT; the adapter a finished
    training run's (``eval_tab.adapter_dir``: '#7', or locally a directory) or none; problem types and
    difficulties as chosen (none chosen is refused by the settings' check)."""
    clean = form_values(GRPOSettings, {key: form[key] for key in GRPO_FIELDS if key in form and key not in GRPO_LISTS})
    clean["adapter"] = adapter_dir(form.get("adapter")) or ""
    clean["problems"] = [str(p) for p in form.get("problems") or []]
    try:
        clean["difficulties"] = [int(str(d)) for d in form.get("difficulties") or []]
    except ValueError:
        raise ValueError(f"difficulties must be whole numbers from 1 to 10, got {form.get('difficulties')!r}") from None
    return checked(GRPOSettings.from_dict(clean))


def saved_values(saved) -> dict:
    """The Train form's values saved in this browser that it may show now: numbers and the experiment name as
    they were, a trace set, device or method only when offered, a model as typed (hosted: only one on the
    list); the GRPO group's under "grpo", checked the same way."""
    traces = [value for _, value in trace_sets()]
    offered = model_choices() if access.hosted() else None  # locally a model may be typed
    common = dict(experiment=lambda v: isinstance(v, str), device=lambda v: v in DEVICES,
                  model=lambda v: isinstance(v, str) and v.strip() != "" and (offered is None or v in offered),
                  accuracy_style=lambda v: v in STYLES, keep_best=lambda v: isinstance(v, bool))
    sft = {field: is_number for field in FIELDS if is_number(getattr(SFTSettings(), field))}
    kept = restorable(saved, dict(sft, traces=lambda v: v in traces, method=lambda v: v in METHODS, **common))
    grpo = {field: is_number for field in GRPO_FIELDS if is_number(getattr(GRPOSettings(), field))}
    grpo.update(accuracy_style=common["accuracy_style"], keep_best=common["keep_best"])
    grpo.update(problems=lambda v: isinstance(v, list) and set(v) <= set(PROBLEM_TYPES),
                difficulties=lambda v: isinstance(v, list) and set(v) <= {str(d) for d in DIFFICULTIES})
    inner = restorable(saved.get("grpo") if isinstance(saved, dict) else None, grpo)
    if inner:
        kept["grpo"] = inner
    return kept


def _launch(form: dict, what: str, settings_of, launch) -> tuple[str, int | None, object]:
    """The owner's launch of a training job of kind ``what``: the model on the allow list, the form's values as
    settings (``settings_of``), queued or started (``launch``). (message, run id or None, settings or None)."""
    access.require_owner(f"start a {what} run")
    try:
        access.check_model(form.get("model"))
        settings = settings_of(form)
        run_id = launch(store(), settings)
    except (ValueError, jobs.JobRefused) as exc:
        return access.public(f"⚠️ Not started: {exc}"), None, None
    return waiting_note(run_id) or "", run_id, settings


def start(form: dict) -> tuple[str, int | None]:
    """Launch an SFT job from the form's values (field -> value), or queue it behind the running one:
    (message, run id to follow)."""
    wait, run_id, _ = _launch(form, "training", settings_from_form, jobs.start_train)
    if run_id is None:
        return wait, None
    return (f"Run #{run_id} {wait}." if wait else f"Started run #{run_id}."), run_id


def start_grpo(form: dict) -> tuple[str, int | None]:
    """Launch (or queue) a GRPO job from the GRPO form's values: (message, run id to follow)."""
    wait, run_id, settings = _launch(form, "GRPO", grpo_settings_from_form, jobs.start_grpo)
    if run_id is None:
        return wait, None
    start_from = "its SFT adapter" if settings.adapter else "a new LoRA"
    return (f"GRPO run #{run_id} (from {start_from}) {wait}." if wait
            else f"Started GRPO run #{run_id} (from {start_from})."), run_id


def resume(run_id) -> tuple[str, int | None]:
    """Continue the followed run (interrupted, stopped or failed) from its last checkpoint, as a job."""
    access.require_owner("resume a training run")
    run_id = parse_run(run_id)
    if run_id is None:
        return "Choose the run to resume under Follow run.", None
    try:
        jobs.resume_train(store(), run_id)
        run = store().get_run(run_id)
    except (ValueError, KeyError, jobs.JobRefused) as exc:
        return access.public(f"⚠️ Not resumed: {exc.args[0] if exc.args else exc}"), None
    checkpoint, logged = latest_checkpoint(run_dir(run)), store().last_step(run_id) or 0
    step = checkpoint[0] if checkpoint else 0
    redo = f"; steps {step + 1}-{logged} run again (they came after it)" if logged > step else ""
    wait = waiting_note(run_id)
    return f"Resuming run #{run_id} from its checkpoint at step {step}{redo}" + (f"; {wait}." if wait else "."), run_id


def stop(run_id) -> str:
    access.require_owner("stop a run")
    run_id = parse_run(run_id)
    if run_id is None:
        return "No run to stop."
    return access.public(jobs.stop(store(), run_id))


def poll(run_id) -> tuple[str, str]:
    """(status markdown, log tail) of the followed run, or of the newest training run."""
    run_id = parse_run(run_id)
    s = store()
    if run_id is None:
        runs = s.runs(kind="train", limit=1)
        run_id = runs[0]["id"] if runs else None
    if run_id is None:
        return "No training run yet.", ""
    try:
        run = s.get_run(run_id)
    except KeyError as exc:
        return str(exc), ""
    text = status_markdown(run)
    if run["kind"] == "train" and run["status"] in RESUMABLE and (checkpoint := latest_checkpoint(run_dir(run))):
        text += f"  \nA checkpoint at step {checkpoint[0]} is kept: **Resume** continues from it."
    return access.public(text), access.public(jobs.clean_log(jobs.log_tail(s, run_id, 20_000))[-3000:])


def full_log_copy(run_id) -> str | None:
    """A copy of the followed run's whole log in a fresh temporary directory (what the browser may fetch)."""
    import shutil
    run_id = parse_run(run_id)
    if run_id is None:
        return None
    source = jobs.log_path(store(), run_id)
    if not source.is_file():
        return None
    target = download_folder(f"algodistill-log{run_id}-") / source.name
    shutil.copy2(source, target)
    return str(target)


def _number_rows(gr, cls, names) -> dict:
    """A widget per field of ``names`` (a form of ``cls``) outside the "run" group, a row per form group,
    labelled by the field's label: {field: component}. A number is a gr.Number (no minimum/precision: the
    browser would round 2.5 or block -1 with its own message; the form handlers refuse them in words, like every
    other check), a yes/no a gr.Checkbox, a field with choices a gr.Dropdown of them."""
    from dataclasses import fields
    defaults, groups = cls(), {}
    prefix = "grpo" if cls is GRPOSettings else "train"
    known = {f.name: f for f in fields(cls)}
    for f in fields(cls):
        if f.name in names and f.metadata.get("form") != "run":
            groups.setdefault(f.metadata.get("form"), []).append(f.name)
    widgets = {}
    for group in groups.values():
        per_row = math.ceil(len(group) / math.ceil(len(group) / 3))  # at most 3 a row, rows evenly filled
        for start in range(0, len(group), per_row):
            with gr.Row():
                for name in group[start:start + per_row]:
                    value, label = getattr(defaults, name), form_label(cls, name)
                    elem_id = f"{prefix}-{name.replace('_', '-')}"
                    choices = known[name].metadata.get("choices")
                    if isinstance(value, bool):
                        widgets[name] = gr.Checkbox(value=value, label=label, elem_id=elem_id)
                    elif choices:
                        widgets[name] = gr.Dropdown(list(choices), value=value, label=label, elem_id=elem_id)
                    else:
                        widgets[name] = gr.Number(value=value, label=label, elem_id=elem_id)
    return widgets


def build(gr, saved) -> dict:
    """The tab; ``saved`` is where the form keeps its last used values (``remembered``, made outside the tabs:
    a hidden tab's is not read when the page loads)."""
    gr.Markdown(gpu_line())
    with gr.Row():
        with access.owner_area(scale=2):
            if starting_model()[1]:
                gr.Markdown(starting_model()[1], elem_id="train-model-note")
            method = gr.Radio([(label, key) for key, label in METHODS.items()], value="sft", label="Method",
                              elem_id="train-method")
            model = gr.Dropdown(model_choices(), value=model_choices()[0], allow_custom_value=not access.hosted(),
                                label="Model (hub id, local directory, .gguf file, or an offline model)"
                                if not access.hosted() else "Model (this hosted app's allow list)",
                                elem_id="train-model")
            with gr.Column(visible=True) as sft_box:
                with gr.Row(equal_height=True):
                    traces = gr.Dropdown(trace_sets(), value=trace_value(BUNDLED), scale=3,
                                         label="Traces (a bundled set, a kept upload, or a Hub dataset id USER/NAME)",
                                         allow_custom_value=True, elem_id="train-traces")
                    upload = gr.UploadButton("Upload JSONL", file_types=[".jsonl"], type="filepath", scale=1)
                sft_numbers = _number_rows(gr, SFTSettings, FIELDS)
            with gr.Column(visible=False) as grpo_box:
                gr.Markdown("GRPO samples answers to generated problems (training seed) and rewards each with the "
                            "fraction of hidden tests it passes, from the sandbox: no traces needed. On a CPU keep it "
                            "small (a few steps, short answers).", elem_id="grpo-note")
                adapter = gr.Dropdown(adapter_choices(), value="", label="Start from (an SFT run's adapter, or a new "
                                      "LoRA on the base model)", allow_custom_value=not access.hosted(),
                                      elem_id="grpo-adapter")
                with gr.Row():
                    problems = gr.CheckboxGroup(list(PROBLEM_TYPES), value=list(PROBLEM_TYPES),
                                                label="Problem types", scale=3, elem_id="grpo-problems")
                    difficulties = gr.CheckboxGroup([str(d) for d in DIFFICULTIES],
                                                    value=[str(d) for d in DIFFICULTIES], label="Difficulties",
                                                    scale=2, elem_id="grpo-difficulties")
                grpo_numbers = _number_rows(gr, GRPOSettings, GRPO_FIELDS)
            with gr.Row():
                experiment = gr.Textbox(value=SFTSettings().experiment, label="Experiment name", scale=2)
                device = gr.Dropdown(list(DEVICES), value="auto", label="Device", elem_id="train-device", scale=1)
            with gr.Row():
                go = gr.Button("Start training", variant="primary", elem_id="train-start")
                go_grpo = gr.Button("Start GRPO", variant="primary", visible=False, elem_id="grpo-start")
                halt = gr.Button("Stop", variant="stop", elem_id="train-stop")
                again = gr.Button("Resume", elem_id="train-resume")
        with gr.Column(scale=2):
            message = gr.Markdown(elem_id="train-message")
            status = gr.Markdown("No training run yet.", elem_id="train-status")
            follow = gr.Dropdown(run_choices("train"), value=None, label="Follow run", allow_custom_value=True)
            with access.owner_area():
                evaluate = gr.Button("Evaluate this adapter", visible=False, size="md", elem_id="train-evaluate")
            log = gr.Textbox(label="Log (the run's own lines and the live progress bar; the full log downloads below)", lines=12,
                             max_lines=12, autoscroll=True, interactive=False, elem_id="train-log")
            with gr.Row():
                get_log = gr.Button("Download the full log", size="sm")
                full_log = gr.File(label="Full log", visible=False, interactive=False)
    shared = {"model": model, "experiment": experiment, "device": device}
    sft_form = {**shared, "traces": traces, **sft_numbers}
    grpo_form = {**shared, "adapter": adapter, "problems": problems, "difficulties": difficulties, **grpo_numbers}
    inputs = [sft_form[field] for field in FIELDS]  # the public API's argument order
    grpo_inputs = [grpo_form[field] for field in GRPO_FIELDS]
    grpo_own = [field for field in GRPO_FIELDS if field not in ("adapter", *shared)]  # what the browser keeps of GRPO

    def choose_method(chosen, name):
        """SFT or GRPO: its own fields and Start button; a default experiment name follows the method."""
        grpo = chosen == "grpo"
        defaults = {SFTSettings().experiment, GRPOSettings().experiment}
        return (gr.update(visible=not grpo), gr.update(visible=grpo), gr.update(visible=not grpo),
                gr.update(visible=grpo),
                (GRPOSettings if grpo else SFTSettings)().experiment if name in defaults else gr.skip())

    method.change(choose_method, [method, experiment], [sft_box, grpo_box, go, go_grpo, experiment],
                  api_visibility="private")
    adapter.focus(lambda: gr.update(choices=adapter_choices()), None, [adapter], api_visibility="private")

    def launched(text, run_id, kept):
        """The message, the run followed, and (when it started) the form's values kept in this browser."""
        if not run_id:
            return text, gr.update(), gr.skip()
        return text, gr.update(choices=run_choices("train"), value=run_id), kept

    def launch(*values):
        """Start (or queue) an SFT run; a started one's form values are kept in this browser for the next visit."""
        form = dict(zip(FIELDS, values))
        return launched(*start(form), {**form, "method": "sft"})

    def launch_grpo(*values):
        form = dict(zip(GRPO_FIELDS, values))
        return launched(*start_grpo(form), {**{k: form[k] for k in shared}, "method": "grpo",
                                            "grpo": {k: form[k] for k in grpo_own}})

    launches = [go.click(launch, inputs, [message, follow, saved], api_name="start_training"),
                go_grpo.click(launch_grpo, grpo_inputs, [message, follow, saved], api_name="start_grpo")]
    restored = [method, *inputs, *[grpo_form[field] for field in grpo_own]]

    def restore(values):
        """A (re)loaded page shows the form as last used in this browser, where the lists still offer it."""
        kept = saved_values(values)
        inner = kept.get("grpo", {})
        out = [kept.get("method", gr.skip())]
        out += [(gr.update(choices=trace_sets(), value=kept[field]) if field == "traces" else kept[field])
                if field in kept else gr.skip() for field in FIELDS]
        out += [inner.get(field, gr.skip()) for field in grpo_own]
        return out

    def uploaded(path):  # a file with no verified trace is refused, not offered as a trace set
        kept, text = accept_upload(path)
        return (gr.update(choices=trace_sets(), value=trace_value(kept)) if kept else gr.skip()), text

    upload.upload(uploaded, [upload], [traces, message], api_visibility="private")
    traces.focus(lambda: gr.update(choices=trace_sets()), None, [traces], api_visibility="private")
    halt.click(stop, [follow], [message], api_name="stop_training")

    def relaunch(run_id):
        text, resumed = resume(run_id)
        return text, gr.update(choices=run_choices("train"), value=resumed) if resumed else gr.update()

    launches.append(again.click(relaunch, [follow], [message, follow], api_name="resume_training"))
    # the buttons sit at the foot of a long form: what they start (or stop) is shown where they were pressed
    for button in (go, go_grpo, halt, again):
        button.click(None, None, None, js=SHOW_STATUS_JS)
    def download_log(run_id):
        path = full_log_copy(run_id)
        return gr.update(value=path, visible=path is not None)

    get_log.click(download_log, [follow], [full_log], api_visibility="private")
    timer = fast_timer(gr)
    for launched_event in launches:  # the status follows a launch at once, not at the watcher's next look
        launched_event.then(lambda: gr.Timer(active=True), None, [timer], api_visibility="private")
    drawn = gr.State("")  # what status and log show: a tick that would show the same redraws nothing

    def refresh(run_id, last):
        text, tail = poll(run_id)
        key = hashlib.sha256(f"{text}\0{tail}".encode()).hexdigest()
        return (gr.skip(), gr.skip(), last) if key == last else (text, tail, key)

    timer.tick(refresh, [follow, drawn], [status, log, drawn], show_progress="hidden", api_visibility="private")
    follow.change(poll, [follow], [status, log], show_progress="hidden", api_name="training_status")
    timer.tick(dispatch_jobs, None, None, show_progress="hidden", api_visibility="private")
    shown = gr.State([])  # the run labels this page shows: refreshed when a status changes, not every tick

    def relabel(run_id, choices_shown):
        """The run list and the Evaluate button, when a status changed (a run's label carries its status)."""
        choices = run_choices("train")
        if choices == choices_shown:
            return gr.skip(), choices_shown, gr.skip()
        return gr.update(choices=choices), choices, gr.update(visible=evaluable(run_id) is not None)

    timer.tick(relabel, [follow, shown], [follow, shown, evaluate], show_progress="hidden", api_visibility="private")
    follow.change(lambda run_id: gr.update(visible=evaluable(run_id) is not None), [follow], [evaluate],
                  api_visibility="private")
    follow.focus(lambda: gr.update(choices=run_choices("train")), None, [follow], api_visibility="private")
    return {"follow": follow, "message": message, "evaluate": evaluate, "restore": (restore, [saved], restored),
            "timer": timer}
