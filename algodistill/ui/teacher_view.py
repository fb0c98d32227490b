"""Data tab, "Generate traces with a teacher": a form that queues a trace generation as a job
(``jobs.start_traces``; ``teacher.py`` does the work), its status with Stop, and once it ends the teacher's pass
rate per problem type x difficulty. The trace set it writes is a kept upload (``uploads/teacher-...jsonl``), so the
Data and Train tabs list it; a generation that kept no trace leaves none.

Hosted, only the owner starts or stops one, a local teacher must be on the allow list (``access.check_model``),
and an endpoint teacher is refused: its requests would leave from the server, carrying a key from the server's
environment, for an address typed into the form. The command line (``traces generate``) has neither limit.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .. import jobs
from ..problems import DIFFICULTIES, PROBLEM_TYPES, REFERENCE_DIFFICULTIES
from ..problems.styles import STYLES
from ..settings import whole_numbers
from ..teacher import ENDPOINT, TeacherSettings, headline, no_pass_line, pass_rate_table, sampling_line
from . import access
from .common import fast_timer, form_number, parse_run, status_markdown, store, trace_value, uploads_dir, waiting_note

SOURCES = ("local model", "OpenAI-compatible endpoint")
NUMBERS = ("per_cell", "samples", "temperature", "top_p", "max_new_tokens", "concurrency")


def settings_from_form(source: str, model: str, endpoint_model: str, base_url: str, key_env: str, problems,
                       difficulties, *rest) -> TeacherSettings:
    """The form's values as checked settings, writing to a new file among the kept uploads: ``rest`` is the
    ``NUMBERS`` in order, then the prompt styles (absent: the contract wording alone). ValueError says what is
    wrong, an endpoint on a hosted app included."""
    numbers, styles = rest[:len(NUMBERS)], (rest[len(NUMBERS)] if len(rest) > len(NUMBERS) else ["contract"])
    if source == SOURCES[1]:
        if access.hosted():
            raise ValueError("an endpoint teacher is not offered on a hosted app: its requests would leave from the "
                             "server with a key from the server's environment. Use the command line (python -m "
                             "algodistill traces generate) or run the app yourself")
        teacher = ENDPOINT + (endpoint_model or "").strip()
    else:
        access.check_model(model)
        teacher = (model or "").strip()
    defaults = TeacherSettings()
    values = {name: form_number(name.replace("_", " "), value, getattr(defaults, name))
              for name, value in zip(NUMBERS, numbers)}
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", teacher.removeprefix(ENDPOINT).rsplit("/", 1)[-1]).strip("-")[:40]
    out = uploads_dir() / f"teacher-{slug or 'model'}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    settings = TeacherSettings(teacher=teacher, out=str(out), base_url=(base_url or "").strip() or None,
                               api_key_env=(key_env or "").strip() or defaults.api_key_env,
                               problems=list(problems or []), difficulties=[int(d) for d in difficulties or []],
                               prompt_styles=[str(st) for st in styles or []], **values)
    whole_numbers(settings)
    settings.check()
    return settings


def _room_left() -> None:
    """Generated sets count against the kept uploads' quota, like uploaded ones."""
    quota = access.upload_limits()[1]
    kept = sum(p.stat().st_size for p in uploads_dir().glob("*.jsonl")) if uploads_dir().is_dir() else 0
    if kept >= quota:
        raise ValueError(f"the kept trace sets fill their {quota / 2**20:.0f} MB quota; delete some first")


def start(*values) -> tuple[str, int | None]:
    """Queue a trace generation (it starts at once when no job runs): (message, run id to follow)."""
    access.require_owner("generate traces")
    try:
        settings = settings_from_form(*values)
        _room_left()
        run_id = jobs.start_traces(store(), settings)
    except (ValueError, jobs.JobRefused) as exc:
        return access.public(f"⚠️ Not started: {exc}"), None
    wait = waiting_note(run_id)
    return (f"Trace generation #{run_id} {wait}." if wait else f"Started trace generation #{run_id}."), run_id


def followed(run_id) -> int | None:
    """The generation shown: the one started from this page, else the newest."""
    if parse_run(run_id) is not None:
        return parse_run(run_id)
    newest = store().runs(kind="traces", limit=1)
    return newest[0]["id"] if newest else None


def stop(run_id) -> str:
    access.require_owner("stop a trace generation")
    run_id = followed(run_id)
    if run_id is None:
        return "No trace generation to stop."
    return jobs.stop(store(), run_id)


def show(run_id) -> tuple[str, str, dict]:
    """(status, outcome, pass-rate table) of the followed generation; the outcome and table once it has ended."""
    run_id = followed(run_id)
    if run_id is None:
        return "No trace generation yet.", "", {"data": [], "headers": ["problem"]}
    try:
        run = store().get_run(run_id)
    except KeyError as exc:
        return str(exc.args[0]), "", {"data": [], "headers": ["problem"]}
    report = run.get("summary") or {}
    if not report.get("cells"):
        return status_markdown(run), "", {"data": [], "headers": ["problem"]}
    header, rows = pass_rate_table(report)
    lines = [headline(report)] + ([f"**{no_pass_line(report)}**"] if report.get("no_pass") else [])
    alike = sampling_line(report)
    lines += [f"**{alike}**"] if alike else []
    lines.append(f"Kept as the trace set `{Path(report['out']).name}`: choose it above to verify it, or in Train."
                 if report.get("out") else "No trace was kept, so no trace set was added.")
    return status_markdown(run), access.public("  \n".join(lines)), {"data": rows, "headers": header}


def _key_note(name: str) -> str:
    """Whether the app's environment holds the key (never its value). Hosted, nothing: a caller could learn which
    variables the server's environment has."""
    name = (name or "").strip()
    if not name or access.hosted():
        return ""
    return f"${name} is set in the app's environment." if os.environ.get(name) else \
        f"${name} is not set in the app's environment (a local server that needs no key does not mind)."


def build(gr, chosen, sets):
    """The section, under the trace sets: ``chosen`` (the trace set dropdown) and ``sets`` (their table) are
    refreshed when a generation ends, so its trace set is listed at once."""
    from .common import trace_sets
    from .common import trace_set_rows
    from .choices import model_choices
    d = TeacherSettings()
    gr.Markdown("### Generate traces with a teacher")
    gr.Markdown("Rejection sampling: the teacher answers each training instance (seed 42) of the chosen types and "
                "difficulties several times; every answer is run against the instance's hidden tests in the sandbox "
                "and the passing ones are kept, once each (exact duplicates dropped), with their provenance. The "
                "teacher's pass rate per cell shows what it can teach: where no sample passed, the student will not "
                "learn from these traces.")
    with access.owner_area():
        with gr.Row(equal_height=True):
            source = gr.Radio(list(SOURCES) if not access.hosted() else [SOURCES[0]], value=SOURCES[0],
                              label="Teacher", elem_id="teacher-source")
            model = gr.Dropdown(model_choices(), value=model_choices()[0], allow_custom_value=not access.hosted(),
                                label="Local model (hub id, local directory, .gguf file, or an offline model)"
                                if not access.hosted() else "Local model (this hosted app's allow list)",
                                elem_id="teacher-model")
            endpoint_model = gr.Textbox(label="Endpoint model", placeholder="e.g. gpt-4o-mini", visible=False)
            base_url = gr.Textbox(label="Base URL", placeholder="http://localhost:8000/v1 (empty: OpenAI's)",
                                  visible=False)
            key_env = gr.Textbox(d.api_key_env, label="API key environment variable", visible=False,
                                 info=_key_note(d.api_key_env))
        with gr.Row():
            problems = gr.CheckboxGroup(list(PROBLEM_TYPES), value=list(PROBLEM_TYPES), label="Problem types")
            difficulties = gr.CheckboxGroup(list(DIFFICULTIES), value=list(REFERENCE_DIFFICULTIES),
                                            label="Difficulties")
            styles = gr.CheckboxGroup(list(STYLES), value=["contract"], elem_id="teacher-styles",
                                      label="Prompt wordings (each instance asked in each; several teach the skill, "
                                      "not one template)")
        with gr.Row():
            per_cell = gr.Number(value=d.per_cell, label="Instances per cell")
            samples = gr.Number(value=d.samples, label="Samples per instance (K)")
            temperature = gr.Number(value=d.temperature, label="Temperature")
            top_p = gr.Number(value=d.top_p, label="Top-p")
            max_new_tokens = gr.Number(value=d.max_new_tokens, label="Max new tokens")
            concurrency = gr.Number(value=d.concurrency, label="Concurrent requests (endpoint)", visible=False)
        with gr.Row():
            go = gr.Button("Generate traces", variant="primary", elem_id="teacher-start")
            halt = gr.Button("Stop", variant="stop", elem_id="teacher-stop")
    message = gr.Markdown(elem_id="teacher-message")
    status = gr.Markdown(elem_id="teacher-status")
    outcome = gr.Markdown(elem_id="teacher-outcome")
    table = gr.Dataframe(headers=["problem"], label="Teacher pass rate (samples passed / drawn) per type x difficulty",
                         interactive=False, elem_id="teacher-pass-rate")
    follow = gr.State(None)
    seen = gr.State(None)  # what the page shows of the followed run, so that ticks redraw only on a change

    def switched(choice):
        endpoint = choice == SOURCES[1]
        return (gr.update(visible=not endpoint), *(gr.update(visible=endpoint) for _ in range(4)))

    source.change(switched, [source], [model, endpoint_model, base_url, key_env, concurrency],
                  api_visibility="private")
    key_env.change(lambda name: gr.update(info=_key_note(name)), [key_env], [key_env], api_visibility="private")

    def launch(*values):
        text, run_id = start(*values)
        return text, run_id if run_id is not None else gr.skip()

    launched_event = go.click(launch, [source, model, endpoint_model, base_url, key_env, problems, difficulties, per_cell, samples,
                      temperature, top_p, max_new_tokens, concurrency, styles], [message, follow],
             api_name="generate_traces")
    halt.click(stop, [follow], [message], api_name="stop_trace_generation")

    def tick(run_id, last):
        run_id = followed(run_id)
        try:
            run = store().get_run(run_id) if run_id is not None else None
        except KeyError:  # deleted in the Runs tab
            run = None
        key = (run_id, run["status"], run.get("progress"), run.get("message")) if run else None
        if key == last:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        shown = show(run_id)
        ended = run is not None and last is not None and last[0] == run_id and last[1] in ("queued", "running") \
            and run["status"] not in ("queued", "running")
        kept = (run.get("summary") or {}).get("out") if ended else None
        listed = gr.update(choices=trace_sets(), value=trace_value(kept)) if kept else gr.skip()
        return (*shown, listed, trace_set_rows() if kept else gr.skip(), key)

    timer = fast_timer(gr)
    launched_event.then(lambda: gr.Timer(active=True), None, [timer], api_visibility="private")
    timer.tick(tick, [follow, seen], [status, outcome, table, chosen, sets, seen], show_progress="hidden",
               api_visibility="private")
    return timer
