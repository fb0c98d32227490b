"""Bundles: runs with their samples, curves and adapters in one zip, to download, share, and seed the demo.

A bundle is a zip of open formats (format ``algodistill-bundle``, version 1):

- ``manifest.json``: ``format``, ``version``, ``created`` (UTC, ISO 8601), ``algodistill`` (version, git
  commit when known), ``machine`` (the exporting machine: platform, Python, CPU count, GPU name or null),
  ``export`` (the command or button, the runs asked for, whether adapters and evaluations were added),
  ``counts`` (runs, samples, metrics) and ``adapters`` (the bundle ids of the runs whose adapter is inside).
- ``runs.jsonl``: one run a line, the store's row without what only means something on its machine (pid,
  host): id, kind, name, status, model, adapter, settings and summary (objects), error, created, started,
  finished, parent, progress, eta, message, note, worked (seconds of work, the waits between Stop and
  Resume left out). Ids are the exporting store's; ``parent`` and
  ``settings.style_group`` refer to runs in the same bundle.
- ``samples.jsonl``: one scored sample a line (``run`` is a bundle id; tests and notes as lists).
- ``metrics.jsonl``: the loss and other training curves, one logged value a line (run, step, epoch, name,
  value, time).
- ``adapters/<run>/``: a training run's PEFT adapter (``adapter_config.json``, ``adapter_model.safetensors``,
  its model card ``README.md`` and ``algodistill.json``), when asked for: ``PeftModel.from_pretrained``
  loads the folder as it is.

An export takes the runs asked for and everything they belong with: an evaluation brings its group (the
base-model twin or the adapter run it was compared with, the other prompt styles and their twins); a
training run brings the evaluations of its adapter when asked (``with_evals``). Only finished runs travel.

An import is untrusted input, checked before anything is written and then added in one transaction: every
member's name, kind and size, every line's JSON, every field's type and bounds, every reference to a run.
The runs get fresh ids with every reference remapped; nothing in the store is overwritten; an imported
adapter goes to a new folder under the home's ``outputs/``. Any failure raises ``BundleError`` with the
reason, and nothing is left behind: no row, no folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .bundle_check import (ADAPTER_FILES, FORMAT, MANIFEST, MAX_BUNDLE_BYTES, MAX_MEMBER_BYTES, MAX_RUNS,  # noqa: F401
                           MAX_SMALL_FILE_BYTES, METRIC_FIELDS, METRICS, REQUIRED_ADAPTER_FILES, RUN_FIELDS, RUNS,
                           SAMPLE_FIELDS, SAMPLES, VERSION, BundleError, _adapter_members, _check_adapter_file,
                           _extract, _manifest, _members, _read_rows)
from .home import home
from .store import FINAL, Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo"  # the demo bundle (the first *.zip by name) for a store's first start
DEMO_MARK = "demo"  # the store's meta key once the demo was loaded
DEMO_PREFIX = "[demo] "  # what an imported demo run's name starts with, wherever runs are listed

# ------------------------------------------------------------------------------------------ export

def related(store: Store, run_ids: Iterable[int], with_evals: bool = False) -> list[dict]:
    """The runs an export of ``run_ids`` carries, by id: those runs; for an evaluation, every run of its
    group (its base-model twin or the adapter run it was compared with, the other prompt styles of the same
    evaluation and their twins); with ``with_evals``, for a training run, every evaluation of its adapter
    (with their groups). KeyError names a run that does not exist."""
    chosen: dict[int, dict] = {}
    todo = [int(r) for r in run_ids]
    evals: list[dict] = []

    def evaluations() -> list[dict]:
        if not evals:
            evals.extend(store.runs(kind="eval", limit=10**9))
        return evals

    while todo:
        run_id = todo.pop()
        if run_id in chosen:
            continue
        run = chosen[run_id] = store.get_run(run_id)
        if run["kind"] == "eval":
            todo += ([run["parent"]] if run.get("parent") else []) + [r["id"] for r in store.children(run_id)]
            group = run["settings"].get("style_group")
            if group is not None:
                todo += [r["id"] for r in evaluations() if r["settings"].get("style_group") == group]
        elif with_evals and run.get("adapter"):
            todo += [r["id"] for r in evaluations() if _same_folder(r.get("adapter"), run["adapter"])]
    return [chosen[k] for k in sorted(chosen)]


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: a NaN or infinite float becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line(row: dict) -> bytes:
    return (json.dumps(_plain(row), allow_nan=False) + "\n").encode("utf-8")


def _same_folder(a: str | None, b: str | None) -> bool:
    """Whether two adapter paths name one folder (an evaluation's may be relative to where it ran)."""
    return bool(a and b) and (a == b or Path(a).resolve() == Path(b).resolve())


def _run_line(run: dict, exported: list[dict]) -> dict:
    """A run's line: its row's portable fields. A ``style_group`` naming a run that is not exported (the
    first style's run was deleted) becomes the smallest exported id of that group: the group stays whole. An
    evaluation of an exported training run's adapter names it as the training run does, so that an import
    can point it at the imported copy."""
    row = {key: run.get(key) for key in RUN_FIELDS}
    settings = row["settings"] = dict(run["settings"])
    ids = [r["id"] for r in exported]
    group = settings.get("style_group")
    if group is not None and group not in ids:
        settings["style_group"] = min(r["id"] for r in exported if r["settings"].get("style_group") == group)
    if run.get("parent") not in ids:
        row["parent"] = None
    trained = [r["adapter"] for r in exported
               if r["kind"] == "train" and _same_folder(r.get("adapter"), run["adapter"])]
    if run["kind"] == "eval" and trained:
        row["adapter"] = settings["adapter"] = trained[0]
    return row


# an absolute path in free text (POSIX or Windows, or ~/...): what an exporting machine's messages name
_FOREIGN_PATH = re.compile(r"(?:(?<![\w.:/])~|(?<![\w.:/])[A-Za-z]:|(?<![\w.:/~]))(?:[/\\][^\s/\\'\"`,;()\[\]]+){2,}[/\\]?")


def _strip_paths(text: str) -> str:
    """``text`` with every absolute path of another machine replaced by its last part (``.../1-sft``)."""
    def last(match: re.Match) -> str:
        parts = [p for p in re.split(r"[/\\]", match.group(0)) if p]
        return ".../" + parts[-1] if parts else "..."
    return _FOREIGN_PATH.sub(last, text)


def _without_paths(value: Any) -> Any:
    """Settings or summary of an imported run with no path of the exporting machine: each string that is an
    absolute path becomes its file name (``traces``: ``reference.jsonl``), each path inside text its last part."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    if isinstance(value, str):
        if re.fullmatch(r"(?:~|[A-Za-z]:)?[/\\]\S*", value) and len(re.split(r"[/\\]", value.strip("/\\"))) > 1:
            return re.split(r"[/\\]", value.rstrip("/\\"))[-1]
        return _strip_paths(value)
    return value


def imported_message(run: dict, bundle: str, adapter_included: bool) -> str:
    """What an imported run's status line says, in place of the exporting machine's (which names its paths)."""
    said = f"{run['status']}; imported from {bundle}"
    if run["kind"] != "train":
        return said
    return said + ("; its adapter is included (download it in Runs)" if adapter_included
                   else "; its adapter is not included in the bundle")


def _adapter_files(run: dict) -> list[Path]:
    """The PEFT files of a training run's adapter folder, or [] when it has none (or not both required)."""
    folder = Path(run["adapter"]) if run["kind"] == "train" and run.get("adapter") else None
    if folder is None or not all((folder / name).is_file() for name in REQUIRED_ADAPTER_FILES):
        return []
    files = [folder / name for name in ADAPTER_FILES if (folder / name).is_file()]
    for f in files:
        cap = MAX_MEMBER_BYTES.get(f.name, MAX_SMALL_FILE_BYTES)
        if f.stat().st_size > cap:
            raise BundleError(f"run {run['id']}'s {f.name} is {f.stat().st_size:,} bytes; a bundle carries at "
                              f"most {cap:,} (an import would refuse it)")
    return files


def _commit() -> str | None:
    """This checkout's git commit, or None (no git, or not a checkout: e.g. a Space's files)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() if out.returncode == 0 else ""
    return commit or None


def _gpu() -> str | None:
    """The first GPU's name from nvidia-smi (no torch import), or None."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def export_bundle(store: Store, run_ids: Iterable[int], out: str | Path, *, adapters: bool = False,
                  with_evals: bool = False, command: str = "") -> dict:
    """Write the bundle of ``run_ids`` (and the runs they belong with, see ``related``) to ``out``, with the
    training runs' adapters when ``adapters``. ``command`` says in the manifest how it was made. Returns the
    path, the runs written (id, kind, name) and the manifest. BundleError when a run is still active or an
    adapter file is over the import's caps; KeyError for a run that does not exist."""
    asked = [int(r) for r in run_ids]
    if not asked:
        raise BundleError("name at least one run to export")
    runs = related(store, asked, with_evals)
    other = [r for r in runs if r["kind"] not in ("train", "eval")]
    if other:  # a trace generation's result is its trace set, a file the Data tab keeps and lists
        raise BundleError(f"run {other[0]['id']} is a {other[0]['kind']} run: a bundle holds trainings and evaluations")
    active = [r for r in runs if r["status"] not in FINAL]
    if active:
        raise BundleError(f"run {active[0]['id']} is {active[0]['status']}: a bundle holds finished runs; wait for "
                          "it to end or stop it")
    if len(runs) > MAX_RUNS:
        raise BundleError(f"{len(runs)} runs; a bundle holds at most {MAX_RUNS}")
    files = {r["id"]: _adapter_files(r) for r in runs} if adapters else {}
    files = {run_id: found for run_id, found in files.items() if found}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    counts = {"runs": len(runs), "samples": 0, "metrics": 0}
    try:
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(RUNS, b"".join(_line(_run_line(r, runs)) for r in runs))
            with zf.open(SAMPLES, "w", force_zip64=True) as f:
                for r in runs:
                    for s in store.samples(r["id"]):
                        f.write(_line({key: s.get(key) for key in SAMPLE_FIELDS}))
                        counts["samples"] += 1
            with zf.open(METRICS, "w", force_zip64=True) as f:
                for r in runs:
                    for m in store.metrics(r["id"]):
                        f.write(_line({key: m.get(key) for key in METRIC_FIELDS}))
                        counts["metrics"] += 1
            for run_id, found in files.items():
                for path in found:  # float weights barely compress: stored as they are
                    zf.write(path, f"adapters/{run_id}/{path.name}",
                             zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED)
            manifest = {
                "format": FORMAT, "version": VERSION,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "algodistill": {"version": __version__, "commit": _commit()},
                "machine": {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "gpu": _gpu()},
                "export": {"command": command, "runs": asked, "adapters": adapters, "with_evals": with_evals},
                "counts": counts, "adapters": sorted(files),
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    return {"path": str(out), "runs": [{"id": r["id"], "kind": r["kind"], "name": r.get("name")} for r in runs],
            "manifest": manifest}


# ------------------------------------------------------------------------------------------ import

def _folder_name(run: dict) -> str:
    """The tail of an imported adapter's folder name: the experiment's name, in safe characters."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(run["settings"].get("experiment") or "")).strip(".-")[:60]
    return name or "imported"


def import_bundle(store: Store, path: str | Path, *, demo: bool = False, mark: str | None = None) -> dict | None:
    """Add the runs of the bundle at ``path`` to ``store`` under fresh ids (see the module's docstring), with
    their adapters under the home's ``outputs/``. ``demo`` marks them as the demo (``settings["demo"]`` and
    a ``[demo]`` name); ``mark`` adds them only into a store with no runs, once (``Store.add_runs``).
    Returns what was imported (bundle, runs with their old and new ids, counts, adapters by new id), or None
    when ``mark`` said no. BundleError says why a bundle was refused; then nothing was created."""
    path = Path(path)
    try:
        return _import(store, path, demo=demo, mark=mark)
    except BundleError as exc:
        raise BundleError(f"{path.name} was not imported, nothing was created: {exc}") from None


def _import(store: Store, path: Path, *, demo: bool, mark: str | None) -> dict | None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"it cannot be read ({exc.strerror})") from None
    if size > MAX_BUNDLE_BYTES:
        raise BundleError(f"it is {size:,} bytes; a bundle has at most {MAX_BUNDLE_BYTES:,}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BundleError("it is not a zip file") from None
    with zf:
        members = _members(zf)
        manifest = _manifest(zf, members[MANIFEST])
        runs, samples, metrics = _read_rows(zf, members, manifest)
        kinds = {r["id"]: r["kind"] for r in runs}
        adapters = _adapter_members(members, manifest, kinds)
        outputs = home(store.path) / "outputs"
        made_outputs = not outputs.exists()  # removed again should the import fail
        staging = None  # adapters are unpacked here (under outputs/: moved, not copied, once the runs exist)
        placed: dict[int, Path] = {}  # bundle run id -> its adapter's folder under outputs/
        ids = None
        try:
            if adapters:
                outputs.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=".import-", dir=outputs))
            for run_id, infos in adapters.items():
                (staging / str(run_id)).mkdir()
                for info in infos:
                    target = staging / str(run_id) / Path(info.filename).name
                    _extract(zf, info, target)
                    _check_adapter_file(target)
            by_path = {r["adapter"]: r["id"] for r in runs if r["id"] in adapters and r["adapter"]}
            origin = {"bundle": path.name[:200], "created": str(manifest.get("created"))[:40],
                      "commit": str((manifest.get("algodistill") or {}).get("commit"))[:40]}

            def adapter_dir(run_id: int, ids: dict[int, int]) -> Path:
                """The folder of bundle run ``run_id``'s adapter: moved from staging on first use, never onto
                an existing folder."""
                if run_id not in placed:
                    stem = outputs / f"{ids[run_id]}-{_folder_name(next(r for r in runs if r['id'] == run_id))}"
                    target, n = stem, 1
                    while target.exists():
                        n += 1
                        target = stem.with_name(f"{stem.name}-{n}")
                    (staging / str(run_id)).rename(target)
                    placed[run_id] = target
                return placed[run_id]

            def relink(run: dict, ids: dict[int, int]) -> dict:
                """The row stored for a bundle run: references to runs through ``ids``; adapter paths to the
                imported folders (a training run without one keeps none: the exporting machine's paths mean
                nothing here); provenance in ``settings["imported"]``."""
                # nothing of the exporting machine's file system survives: paths become names, and the
                # status line says what was imported instead of where the adapter lay there
                settings = dict(_without_paths(run["settings"]), imported=dict(origin, run=run["id"]))
                if settings.get("style_group") is not None:
                    settings["style_group"] = ids[settings["style_group"]]
                summary = _without_paths(run.get("summary") or {})
                row = dict(run, parent=ids[run["parent"]] if run["parent"] is not None else None, settings=settings,
                           summary=summary, error=_strip_paths(run["error"]) if run.get("error") else run.get("error"),
                           message=imported_message(run, origin["bundle"], run["id"] in adapters),
                           model=_without_paths(run["model"]) if run.get("model") else run.get("model"))
                if run["kind"] == "train":
                    folder = adapter_dir(run["id"], ids) if run["id"] in adapters else None
                    row["adapter"] = str(folder) if folder else None
                    settings["output_dir"] = str(folder or outputs / f"{ids[run['id']]}-{_folder_name(run)}")
                    if "out" in summary:
                        summary["out"] = str(folder) if folder else None
                elif run["adapter"] in by_path:
                    row["adapter"] = settings["adapter"] = str(adapter_dir(by_path[run["adapter"]], ids))
                elif run.get("adapter"):  # an adapter that did not travel: its name, not the other machine's path
                    row["adapter"] = settings["adapter"] = _without_paths(run["adapter"])
                if demo:
                    settings["demo"] = True
                    name = run["name"] or run["model"] or run["kind"]  # a demo run exported again keeps one prefix
                    row["name"] = name if name.startswith(DEMO_PREFIX) else DEMO_PREFIX + name
                return row

            ids = store.add_runs(runs, samples, metrics, relink, mark=mark)
        except sqlite3.Error as exc:
            raise BundleError(f"the store refused it ({exc})") from None
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if ids is None:  # it failed, or the mark said no: nothing stays
                for folder in placed.values():
                    shutil.rmtree(folder, ignore_errors=True)
                if made_outputs and outputs.is_dir() and not any(outputs.iterdir()):
                    outputs.rmdir()
    if ids is None:
        return None
    return {"bundle": path.name, "demo": demo, "db": store.path,
            "runs": [{"from": r["id"], "id": ids[r["id"]], "kind": r["kind"],
                      "name": store.get_run(ids[r["id"]]).get("name")} for r in runs],
            "samples": len(samples), "metrics": len(metrics),
            "adapters": {ids[run_id]: str(folder) for run_id, folder in placed.items()},
            "manifest": {k: manifest.get(k) for k in ("created", "algodistill", "machine", "export")}}


def load_demo(store: Store, folder: Path = DEMO) -> dict | None:
    """The demo on a first visit: the first bundle in ``folder`` (``assets/demo/*.zip``) imported as the
    demo into a store with no runs, once per store (the store's ``meta`` remembers it, so runs deleted later
    do not come back). A broken bundle is reported on stderr and the app starts without it. Returns what
    was imported, or None."""
    bundles = sorted(folder.glob("*.zip")) if folder.is_dir() else []
    if not bundles or store.meta(DEMO_MARK) is not None or store.runs(limit=1):
        return None
    try:
        return import_bundle(store, bundles[0], demo=True, mark=DEMO_MARK)
    except BundleError as exc:
        print(f"warning: the demo was not loaded: {exc}", file=sys.stderr)
        return None


def summary_line(report: dict) -> str:
    """An import's result in words, without server paths: which new run each bundle run became."""
    runs = ", ".join(f"#{r['from']} as #{r['id']} ({r['kind']}, {r['name']})" for r in report["runs"])
    adapters = (f"; with the adapter of {', '.join(f'#{k}' for k in report['adapters'])}" if report["adapters"]
                else "")
    return (f"Imported {len(report['runs'])} run(s) from {report['bundle']}: {runs}; {report['samples']} samples, "
            f"{report['metrics']} curve points{adapters}.")
