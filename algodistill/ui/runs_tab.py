"""Runs tab: every training, evaluation and trace generation in one table; rename, note, delete, download.

The table says what a user compares runs by: kind, name, model, adapter, status, start, duration, final
loss or accuracy, and the settings that differ from the defaults (lr 2e-4 vs 1e-3 must be visible).
Deleting needs the run's number typed again; it removes the run's rows, its log, and its adapter when the
adapter lies in this store's ``outputs/`` (a directory the user chose elsewhere is never deleted). Downloads
are written to a fresh temporary directory: the adapter as a zip in PEFT layout with its model card
(``PeftModel.from_pretrained`` loads the unzipped folder), an evaluation's samples as JSON lines or CSV, and a
bundle (``bundle``): the run with the runs it belongs with, curves and samples, optionally the adapter. An
uploaded bundle is imported under new ids.
"""

import contextlib
import csv
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ..store import worked_s
from . import access
from .common import HEAVY, download_folder, duration, parse_run, store

COLUMNS = ["#", "kind", "name", "model", "adapter", "status", "started", "took", "result", "changed",
           "note"]
# each column's share of the table, and the characters that fit in it at a 1440-px window (a monospace cell of
# ~8.5 px a character plus its padding); a longer text is cut to fit in Python, so no cell is cut by the browser
# in the middle of a word. Names, models and adapters keep their ends (the "[stub]" that tells two evaluations
# apart, a model's size, an adapter's recipe) and lose their middle; settings and notes lose their ends.
COLUMN_WIDTHS = ["3.2%", "4.8%", "25.2%", "12.2%", "9%", "6.7%", "9.3%", "5.5%", "9.8%", "10%", "4.3%"]
FITS = {"name": 38, "model": 18, "adapter": 12, "result": 14, "changed": 14, "note": 5}
MIDDLE = {"name", "model", "adapter"}
MAX_CHARS = None  # Gradio's own cut (at the end) is off: fit() has cut already
# shown elsewhere or always different
_SKIP = {"traces", "output_dir", "sandbox", "problems", "difficulties", "teacher", "out"}


def _defaults(run: dict) -> dict:
    if run["kind"] == "train" and run["settings"].get("method") == "grpo":
        from ..grpo import GRPOSettings
        return asdict(GRPOSettings())
    if run["kind"] == "train":
        from ..train_sft import SFTSettings
        return asdict(SFTSettings())
    if run["kind"] == "traces":
        from ..teacher import TeacherSettings
        return asdict(TeacherSettings())
    from ..evaluate import EvalSettings
    return asdict(EvalSettings())


# the Runs table's short names of settings (the run's detail gives the full ones)
SHORT = {"learning_rate": "lr", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout",
         "effective_batch": "batch", "batch_size": "device batch", "prompt_style": "", "benchmark": "",
         "max_new_tokens": "max new", "max_length": "max len", "warmup_ratio": "warmup", "epochs": "epochs",
         "gradient_checkpointing": "grad ckpt", "accuracy_every": "acc every", "accuracy_style": "acc style",
         "keep_best": "keep best", "temperature": "temp", "samples": "k", "per_cell": "per cell"}


def changed_settings(run: dict, short: bool = False) -> str:
    """The settings of a run that differ from its kind's defaults (a GRPO run's: GRPO's), as 'name=value' pairs;
    ``short``: 'lr 0.001, r 8, stdio' (``SHORT``), for the Runs table."""
    defaults = _defaults(run)
    changed = [(k, v) for k, v in run["settings"].items()
               if k in defaults and k not in _SKIP and v != defaults[k] and k not in ("model", "adapter", "experiment")]
    if not short:
        return ", ".join(f"{k}={v}" for k, v in changed)
    named = ((SHORT.get(k, k.replace("_", " ")), v) for k, v in changed)
    return ", ".join(f"{name} {v}" if name else str(v) for name, v in named)


def result(run: dict, short: bool = False) -> str:
    """What a run came to; ``short``: the Runs table's cell (a training's without its step count, a generation's
    traces kept without its pass rate)."""
    summary = run.get("summary") or {}
    steps = "" if short else f" after {summary.get('steps')} steps"
    if run["kind"] == "train" and isinstance(summary.get("final_loss"), (int, float)):
        return f"loss {summary['final_loss']:.4f}{steps}"
    if run["kind"] == "train" and isinstance(summary.get("final_reward"), (int, float)):  # GRPO
        return f"reward {summary['final_reward']:.3f}{steps}"
    if run["kind"] == "eval" and summary.get("n"):
        return f"{summary['solved']}/{summary['n']} ({summary['accuracy']:.1%})"
    if run["kind"] == "traces" and summary.get("judged"):
        if short:
            return f"{summary['kept']} traces kept"
        return f"{summary['passed']}/{summary['judged']} samples passed, {summary['kept']} traces kept"
    return ""


def detail(run_id) -> str:
    """Everything about one run that the table cuts short: its name, status and message, the full settings that
    differ from the defaults, the note, and where an imported run came from (shown once, here)."""
    run_id = parse_run(run_id)
    if run_id is None:
        return ""
    try:
        run = store().get_run(run_id)
    except KeyError:
        return f"There is no run #{run_id}."
    lines = [f"**#{run['id']} {run.get('name') or ''}** ({run['kind']}, {run.get('model') or '–'}): **{run['status']}**"]
    if run.get("adapter"):
        lines.append(f"adapter `{Path(run['adapter']).name}`")
    for text in (result(run), run.get("message")):
        if text:
            lines.append(text)
    changed = changed_settings(run)
    lines.append(f"settings that differ from the defaults: {changed}" if changed else "default settings")
    imported = (run.get("settings") or {}).get("imported")
    if isinstance(imported, dict):
        made = ", ".join(f"{k} {v}" for k, v in imported.items() if k in ("commit", "date", "machine") and v)
        lines.append(f"imported from `{imported.get('bundle')}` (run {imported.get('run')} there" +
                     (f"; {made})" if made else ")"))
    if run.get("note"):
        lines.append(f"note: {run['note']}")
    return access.public("  \n".join(lines))


def fit(text: str, chars: int, middle: bool = False) -> str:
    """``text`` on one line in at most ``chars`` characters: cut in the middle (``middle``, both ends kept) or at
    the end, the cut marked with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= chars:
        return text
    if middle:
        tail = (chars - 1) // 2
        return text[:chars - 1 - tail].rstrip() + "…" + text[len(text) - tail:].lstrip()
    return text[:chars - 1].rstrip() + "…"


def runs_rows() -> list[list]:
    """One line a run, each text cut to fit its column (``FITS``); the run's detail holds all of it."""
    rows = []
    for run in store().runs(limit=1000):
        started = time.strftime("%b %d %H:%M", time.localtime(run["started"])) if run.get("started") else ""
        worked = worked_s(run)  # its working time: the wait in the queue or between Stop and Resume left out
        took = duration(worked) if worked is not None else ""
        row = [run["id"], run["kind"], run.get("name") or "", run.get("model") or "",
               Path(run["adapter"]).name if run.get("adapter") else "", run["status"], started, took,
               result(run, short=True), changed_settings(run, short=True), run.get("note") or ""]
        rows.append([fit(value, FITS[column], column in MIDDLE) if column in FITS else value
                     for column, value in zip(COLUMNS, row)])
    return rows


def rename(run_id, name: str) -> str:
    access.require_owner("rename runs")
    run_id = parse_run(run_id)
    name = (name or "").strip()
    if run_id is None or not name:
        return "Choose a run and type its new name."
    if len(name) > 120:
        return "A name has at most 120 characters."
    store().update_run(run_id, name=name)
    return f"Run #{run_id} is now called {name!r}."


def annotate(run_id, note: str) -> str:
    access.require_owner("write notes")
    run_id = parse_run(run_id)
    if run_id is None:
        return "Choose a run first."
    note = (note or "").strip()
    if len(note) > 2000:
        return "A note has at most 2,000 characters."
    store().update_run(run_id, note=note or None)
    return f"Note saved for run #{run_id}." if note else f"Note removed from run #{run_id}."


def _owned_adapter(run: dict) -> Path | None:
    """The run's adapter directory when it lies in this store's outputs/ (created by this app), else None."""
    if run["kind"] != "train" or not run.get("adapter"):
        return None
    adapter = Path(run["adapter"]).resolve()
    outputs = (Path(store().path).resolve().parent / "outputs").resolve()
    return adapter if adapter.parent == outputs and adapter.is_dir() else None


def delete(run_id, typed: str) -> str:
    """Delete a finished run once its number is typed again: rows, log, and the adapter this app created."""
    access.require_owner("delete runs")
    from .. import jobs
    run_id = parse_run(run_id)
    if run_id is None:
        return "Choose a run first."
    if str(typed or "").strip().lstrip("#") != str(run_id):
        return f"To delete run #{run_id} with its samples, metrics and adapter, type {run_id} in the box first."
    s = store()
    try:
        run = s.get_run(run_id)
        adapter = _owned_adapter(run)
        log = jobs.log_path(s, run_id)
        s.delete_run(run_id)
    except KeyError:
        return f"⚠️ Not deleted: there is no run #{run_id}."
    except ValueError as exc:
        return f"⚠️ Not deleted: {exc}"
    removed = []
    if adapter is not None:
        shutil.rmtree(adapter, ignore_errors=True)
        removed.append("its adapter")
    if log.is_file():
        log.unlink()
        removed.append("its log")
    kept = f"; the adapter in {run['adapter']} was not created here and is kept" if run.get("adapter") and \
        adapter is None and run["kind"] == "train" else ""
    return f"Deleted run #{run_id}" + (f" and {' and '.join(removed)}" if removed else "") + kept + "."


def download(run_id, what: str) -> tuple[str | None, str]:
    """(file path or None, message): 'adapter' (zip), 'jsonl' or 'csv' (an evaluation's samples)."""
    run_id = parse_run(run_id)
    if run_id is None:
        return None, "Choose a run first."
    try:
        run = store().get_run(run_id)
    except KeyError:
        return None, f"There is no run #{run_id}."  # the store's own message names its path on the server
    folder = download_folder(f"algodistill-run{run_id}-")
    if what == "adapter":
        adapter = Path(run["adapter"]) if run.get("adapter") else None
        if run["kind"] != "train" or adapter is None or not (adapter / "adapter_config.json").is_file():
            return None, f"Run #{run_id} has no saved adapter."
        files = [p for p in adapter.iterdir() if p.is_file()]  # the PEFT layout, not its checkpoints
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / adapter.name
            target.mkdir()
            for f in files:
                shutil.copy2(f, target / f.name)
            path = shutil.make_archive(str(folder / f"run{run_id}-{adapter.name}"), "zip", tmp, adapter.name)
        return path, f"Adapter of run #{run_id}: unzip it and load it with PeftModel.from_pretrained."
    if run["kind"] != "eval":
        return None, "Samples are downloadable for evaluations; for a training run, download its adapter."
    samples = store().samples(run_id)
    if what == "csv":
        path = folder / f"run{run_id}-samples.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["problem", "difficulty", "seed", "index", "sample", "status", "passed", "total",
                             "cut_off", "error", "code"])
            for s in samples:
                writer.writerow([s["problem"], s["difficulty"], s["seed"], s["idx"], s.get("sample", 0), s["status"],
                                 s["passed"], s["total"], s.get("cut_off") or 0, s.get("error") or "", s.get("code") or ""])
        return str(path), f"{len(samples)} samples of run #{run_id} as CSV (one row per sample)."
    path = folder / f"run{run_id}-samples.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps({k: v for k, v in s.items() if k != "run"}) + "\n")
    return str(path), f"{len(samples)} samples of run #{run_id} as JSON lines (prompt, completion, code, tests)."


def export_bundle(run_id, with_adapter: bool = False) -> tuple[str | None, str]:
    """(bundle zip or None, message): the run with the runs it belongs with (an evaluation's base-model twin
    and prompt styles; a training run's evaluations) and, when asked, the training runs' adapters; see
    ``bundle``. Written to a fresh temporary directory like the other downloads."""
    from ..bundle import BundleError, export_bundle as write_bundle
    run_id = parse_run(run_id)
    if run_id is None:
        return None, "Choose a run first."
    path = download_folder(f"algodistill-run{run_id}-") / f"algodistill-run{run_id}.zip"
    command = f"Runs tab: Download bundle of run {run_id}" + (" with the adapter" if with_adapter else "")
    try:
        result = write_bundle(store(), [run_id], path, adapters=bool(with_adapter), with_evals=True, command=command)
    except KeyError:
        return None, f"There is no run #{run_id}."  # the store's own message names its path on the server
    except BundleError as exc:
        return None, f"⚠️ No bundle: {exc}"
    runs = ", ".join(f"#{r['id']}" for r in result["runs"])
    adapters = result["manifest"]["adapters"]
    extra = (f", with the adapter of {', '.join(f'#{a}' for a in adapters)}" if adapters
             else ", without an adapter (none is saved)" if with_adapter else "")
    return str(path), (f"Bundle of run(s) {runs}{extra}. Import it with Import bundle here, on another machine, or "
                       "with `python -m algodistill import FILE`.")


def push_to_hub(run_id, repo_id, private=False, login_token: str | None = None) -> str:
    """Push the chosen training run's adapter to the Hugging Face Hub as ``repo_id`` (the owner's; a write), with
    its model card (``hub.push_adapter``). The token is the owner's Hugging Face login (``login_token``, on
    Spaces) or the server's ``HF_TOKEN``; never typed into the page."""
    from ..hub import HubError, push_adapter
    access.require_owner("push adapters to the Hugging Face Hub")
    run_id = parse_run(run_id)
    if run_id is None:
        return "Choose a training run first (click its row)."
    try:
        result = push_adapter(store(), run_id, repo_id, private=bool(private), hub_token=login_token)
    except HubError as exc:
        return access.public(f"⚠️ Not pushed: {exc}")
    notes = "".join(f"  \n⚠️ {w}" for w in result["warnings"])
    return access.public(f"Pushed the adapter of run #{run_id} to [{result['repo']}]({result['url']}) "
                         f"({len(result['files'])} files, with its model card).{notes}")


def import_bundle_upload(path) -> tuple[str, list[list]]:
    """Import an uploaded bundle: its runs are added under new ids, nothing is changed (a write). Returns the
    message (what was imported, or why nothing was) and the table's rows."""
    from ..bundle import BundleError, import_bundle, summary_line
    if not access.is_owner():
        with contextlib.suppress(OSError, TypeError):
            Path(path).unlink()  # a visitor's file is not kept, not even in Gradio's temporary copy
        access.require_owner("import runs")
    if not path:
        return "Choose a bundle (zip) to import.", runs_rows()
    try:
        report = import_bundle(store(), path)
    except BundleError as exc:
        return f"⚠️ {exc}", runs_rows()
    return summary_line(report) + " The other tabs list them once the page is reloaded.", runs_rows()


def build(gr) -> dict:
    # one line a run (long cells cut to fit their column; the chosen run's detail below has everything), sized to
    # fit the window without a sideways scroll
    label = 'All runs (click a row to choose it and see it all; "changed": the settings that differ from the defaults)'
    table = gr.Dataframe(headers=COLUMNS, value=runs_rows, label=label, interactive=False, wrap=False,
                         max_chars=MAX_CHARS, max_height=560, column_widths=COLUMN_WIDTHS, elem_id="runs-table")
    about = gr.Markdown(elem_id="runs-detail")  # the chosen run in full
    with gr.Row():
        chosen = gr.Textbox(label="Run", placeholder="click a row above", elem_id="runs-chosen", scale=1)
        name = gr.Textbox(label="Name", scale=2)
        note = gr.Textbox(label="Note", scale=3)
    refresh = gr.Button("Refresh", size="sm")
    with access.owner_area():
        with gr.Row():
            save_name = gr.Button("Rename")
            save_note = gr.Button("Save note")
        with gr.Row():
            typed = gr.Textbox(label="Type the run's number to confirm deleting it", scale=2)
            remove = gr.Button("Delete run", variant="stop", scale=1)
    with gr.Row():
        get_adapter = gr.Button("Download adapter (zip)")
        get_jsonl = gr.Button("Download samples (JSON lines)")
        get_csv = gr.Button("Download samples (CSV)")
    with gr.Row(equal_height=True):
        get_bundle = gr.Button("Download bundle (zip)", scale=2)
        with_adapter = gr.Checkbox(label="include the adapter", value=False, scale=1, elem_id="runs-bundle-adapter")
        with access.owner_area(scale=2, min_width=0):
            put_bundle = gr.UploadButton("Import bundle (zip)", file_types=[".zip"], type="filepath",
                                         elem_id="runs-import")
    with access.owner_area():
        with gr.Row(equal_height=True):
            hub_repo = gr.Textbox(label="Push the adapter to the Hugging Face Hub as (USER/NAME)", scale=3,
                                  placeholder="alice/qwen-coder-rpn-lora", elem_id="runs-hub-repo")
            hub_private = gr.Checkbox(label="private", value=True, scale=1, elem_id="runs-hub-private")
            push = gr.Button("Push to the Hub", scale=1, elem_id="runs-hub-push")
    file = gr.File(label="Download", interactive=False, visible=False, elem_id="runs-file")  # shown once there is one
    message = gr.Markdown(elem_id="runs-message")

    def choose(evt: gr.SelectData):
        run_id = parse_run(evt.row_value[0])  # the cells are cut to fit: the name and note come from the store
        try:
            run = store().get_run(run_id) if run_id is not None else {}
        except KeyError:
            return f"#{run_id}", "", ""
        return f"#{run_id}", run.get("name") or "", run.get("note") or ""

    table.select(choose, None, [chosen, name, note], api_visibility="private").then(
        detail, [chosen], [about], api_visibility="private", show_progress="hidden")
    save_name.click(lambda r, n: (rename(r, n), runs_rows()), [chosen, name], [message, table], api_name="rename_run")
    save_note.click(lambda r, n: (annotate(r, n), runs_rows()), [chosen, note], [message, table], api_name="note_run")
    refresh.click(runs_rows, None, [table], api_visibility="private")
    remove.click(lambda r, t: (delete(r, t), runs_rows(), ""), [chosen, typed], [message, table, typed],
                 api_name="delete_run")
    def downloader(what: str):
        def get(run_id):
            path, text = download(run_id, what)
            return gr.update(value=path, visible=path is not None), text
        return get

    for button, what in ((get_adapter, "adapter"), (get_jsonl, "jsonl"), (get_csv, "csv")):
        button.click(downloader(what), [chosen], [file, message], api_name=f"download_{what}", **HEAVY)

    def bundle_download(run_id, adapter):
        path, text = export_bundle(run_id, adapter)
        return gr.update(value=path, visible=path is not None), text

    get_bundle.click(bundle_download, [chosen, with_adapter], [file, message], api_name="download_bundle",
                     **HEAVY)
    put_bundle.upload(import_bundle_upload, [put_bundle], [message, table], api_name="import_bundle")

    def pushed(run_id, repo_id, private, oauth_token: gr.OAuthToken | None = None):
        # the owner's Hugging Face login, when the Space asks for it (hf_oauth); else the server's HF_TOKEN
        return push_to_hub(run_id, repo_id, private, getattr(oauth_token, "token", None))

    push.click(pushed, [chosen, hub_repo, hub_private], [message], api_name="push_to_hub", **HEAVY)
    return {"table": table}
