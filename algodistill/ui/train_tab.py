"""Train tab: a form with the reference recipe, launched as a background job; status, progress, Stop (within
seconds, keeping the last completed step) and Resume (from the last checkpoint). Once the followed run has
left an adapter, "Evaluate this adapter" evaluates it (the handler is ``eval_tab.evaluate_adapter``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .. import jobs
from ..models import DEFAULT_MODEL, offline_models, usable_default
from ..settings import number_problems, whole_numbers
from ..train_sft import RESUMABLE, SFTSettings, latest_checkpoint, run_dir
from ..traces import BUNDLED
from . import access
from .common import (accept_upload, dispatch_jobs, download_folder, form_number, gpu_line, is_number, parse_run,
                     restorable, run_choices, status_markdown, store, trace_set, trace_sets, trace_value,
                     waiting_note)

# form fields, in the order the inputs are passed to the handlers
FIELDS = ("model", "traces", "experiment", "epochs", "learning_rate", "lora_r", "lora_alpha", "lora_dropout",
          "effective_batch", "batch_size", "max_length", "warmup_ratio", "max_steps", "device")
DEVICES = ("auto", "cpu", "cuda")


def model_choices() -> list[str]:
    """The usable default first (the hub model, or an offline one when the Hub is out of reach), then the
    rest of the hub default and the offline models present; hosted, only what the allow list has."""
    choices = list(dict.fromkeys([starting_model()[0], DEFAULT_MODEL, *offline_models()]))
    if access.hosted():
        allowed = access.allowed_models()
        choices = [m for m in choices if m in allowed] + [m for m in allowed if m not in choices]
    return choices


@lru_cache(maxsize=1)
def starting_model() -> tuple[str, str | None]:
    return usable_default()  # checks the Hub once per app process (2 s at most when it is out of reach)


def settings_from_form(*values) -> SFTSettings:
    """The one place form values become settings. Numbers are checked here, by the same field ranges as
    everywhere (NaN, infinities, fractions of a whole number). An empty number is refused (``form_number``);
    empty text (model, traces, device) means the default."""
    form = dict(zip(FIELDS, values))
    defaults = SFTSettings()
    clean = {}
    for key, value in form.items():
        default = getattr(defaults, key)
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            clean[key] = form_number(key.replace("_", " "), value, default)
        elif value is not None and value != "":
            clean[key] = str(value).strip()
    clean["traces"] = trace_set(clean.get("traces"))
    settings = SFTSettings.from_dict(clean)
    whole_numbers(settings)
    problems = number_problems(settings)
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def saved_values(saved) -> dict:
    """The Train form's values saved in this browser that it may show now: numbers and the experiment name as
    they were, a trace set or device only when offered, a model as typed (hosted: only one on the list)."""
    defaults = SFTSettings()
    traces = [value for _, value in trace_sets()]
    fits = {field: is_number for field in FIELDS if is_number(getattr(defaults, field))}
    offered = model_choices() if access.hosted() else None  # locally a model may be typed
    fits.update(experiment=lambda v: isinstance(v, str), traces=lambda v: v in traces, device=lambda v: v in DEVICES,
                model=lambda v: isinstance(v, str) and v.strip() != "" and (offered is None or v in offered))
    return restorable(saved, fits)


def start(*values) -> tuple[str, int | None]:
    """Launch a training job, or queue it behind the running one: (message, run id to follow)."""
    access.require_owner("start a training run")
    try:
        access.check_model(dict(zip(FIELDS, values)).get("model"))
        settings = settings_from_form(*values)
        run_id = jobs.start_train(store(), settings)
    except (ValueError, jobs.JobRefused) as exc:
        return f"⚠️ Not started: {exc}", None
    wait = waiting_note(run_id)
    return (f"Run #{run_id} {wait}." if wait else f"Started run #{run_id}."), run_id


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
        return f"⚠️ Not resumed: {exc.args[0] if exc.args else exc}", None
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
    return jobs.stop(store(), run_id)


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


def evaluable(run_id) -> dict | None:
    """The followed training run (or the newest, as the status shows) when it left an adapter to evaluate:
    completed, or stopped after a step (its adapter directory has the adapter's config); else None."""
    run_id = parse_run(run_id)
    if run_id is None:
        newest = store().runs(kind="train", limit=1)
        run_id = newest[0]["id"] if newest else None
    try:
        run = store().get_run(run_id) if run_id is not None else None
    except KeyError:
        return None
    if not run or run["kind"] != "train" or run["status"] not in ("completed", "stopped") or not run.get("adapter"):
        return None
    return run if (Path(run["adapter"]) / "adapter_config.json").is_file() else None


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


def build(gr, saved) -> dict:
    """The tab; ``saved`` is where the form keeps its last used values (``remembered``, made outside the tabs:
    a hidden tab's is not read when the page loads)."""
    d = SFTSettings()
    gr.Markdown(gpu_line())
    with gr.Row():
        with access.owner_area(scale=2):
            if starting_model()[1]:
                gr.Markdown(starting_model()[1], elem_id="train-model-note")
            model = gr.Dropdown(model_choices(), value=model_choices()[0], allow_custom_value=not access.hosted(),
                                label="Model (hub id, local directory, .gguf file, or an offline model)"
                                if not access.hosted() else "Model (this hosted app's allow list)",
                                elem_id="train-model")
            with gr.Row(equal_height=True):
                traces = gr.Dropdown(trace_sets(), value=trace_value(BUNDLED), scale=3,
                                     label="Traces (the bundled set or a kept upload)",
                                     elem_id="train-traces")
                upload = gr.UploadButton("Upload JSONL", file_types=[".jsonl"], type="filepath", scale=1)
                experiment = gr.Textbox(value=d.experiment, label="Experiment name", scale=2)
            with gr.Row():
                # no minimum/precision on these: the browser would round 2.5 or block -1 with its own
                # message; settings_from_form refuses them in words, like every other check
                epochs = gr.Number(value=d.epochs, label="Epochs")
                lr = gr.Number(value=d.learning_rate, label="Learning rate")
                warmup = gr.Number(value=d.warmup_ratio, label="Warmup ratio")
                max_steps = gr.Number(value=d.max_steps, label="Max steps (-1: epochs decide)")
            with gr.Row():
                lora_r = gr.Number(value=d.lora_r, label="LoRA r")
                lora_alpha = gr.Number(value=d.lora_alpha, label="LoRA alpha")
                dropout = gr.Number(value=d.lora_dropout, label="LoRA dropout")
            with gr.Row():
                eff = gr.Number(value=d.effective_batch, label="Effective batch")
                batch = gr.Number(value=d.batch_size, label="Per-device batch (rest: accumulation)")
                max_len = gr.Number(value=d.max_length, label="Max length (tokens)")
                device = gr.Dropdown(list(DEVICES), value="auto", label="Device", elem_id="train-device")
            with gr.Row():
                go = gr.Button("Start training", variant="primary", elem_id="train-start")
                halt = gr.Button("Stop", variant="stop", elem_id="train-stop")
                again = gr.Button("Resume", elem_id="train-resume")
        with gr.Column(scale=2):
            message = gr.Markdown(elem_id="train-message")
            status = gr.Markdown("No training run yet.", elem_id="train-status")
            follow = gr.Dropdown(run_choices("train"), value=None, label="Follow run", allow_custom_value=True)
            with access.owner_area():
                evaluate = gr.Button("Evaluate this adapter", visible=False, size="md", elem_id="train-evaluate")
            log = gr.Textbox(label="Log (the end; progress bars and library warnings left out)", lines=12,
                             max_lines=12, autoscroll=True, interactive=False, elem_id="train-log")
            with gr.Row():
                get_log = gr.Button("Download the full log", size="sm")
                full_log = gr.File(label="Full log", visible=False, interactive=False)
    inputs = [model, traces, experiment, epochs, lr, lora_r, lora_alpha, dropout, eff, batch, max_len, warmup,
              max_steps, device]

    def launch(*values):
        """Start (or queue) the run; a started one's form values are kept in this browser for the next visit."""
        text, run_id = start(*values)
        if not run_id:
            return text, gr.update(), gr.skip()
        return text, gr.update(choices=run_choices("train"), value=run_id), dict(zip(FIELDS, values))

    go.click(launch, inputs, [message, follow, saved], api_name="start_training")

    def restore(values):
        """A (re)loaded page shows the form as last used in this browser, where the lists still offer it."""
        kept = saved_values(values)
        return [(gr.update(choices=trace_sets(), value=kept[field]) if field == "traces" else kept[field])
                if field in kept else gr.skip() for field in FIELDS]

    def uploaded(path):  # a file with no verified trace is refused, not offered as a trace set
        kept, text = accept_upload(path)
        return (gr.update(choices=trace_sets(), value=trace_value(kept)) if kept else gr.skip()), text

    upload.upload(uploaded, [upload], [traces, message], api_visibility="private")
    traces.focus(lambda: gr.update(choices=trace_sets()), None, [traces], api_visibility="private")
    halt.click(stop, [follow], [message], api_name="stop_training")

    def relaunch(run_id):
        text, resumed = resume(run_id)
        return text, gr.update(choices=run_choices("train"), value=resumed) if resumed else gr.update()

    again.click(relaunch, [follow], [message, follow], api_name="resume_training")
    def download_log(run_id):
        path = full_log_copy(run_id)
        return gr.update(value=path, visible=path is not None)

    get_log.click(download_log, [follow], [full_log], api_visibility="private")
    timer = gr.Timer(2.0)
    timer.tick(poll, [follow], [status, log], show_progress="hidden", api_name="training_status")
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
    return {"follow": follow, "message": message, "evaluate": evaluate, "restore": (restore, [saved], inputs)}
