"""Bundles: runs with their samples, curves and adapters in one zip, to download, share, and seed the demo.

A bundle is a zip of open formats (format ``algodistill-bundle``, version 1):

- ``manifest.json``: ``format``, ``version``, ``created`` (UTC, ISO 8601), ``algodistill`` (version, git
  commit when known), ``machine`` (the exporting machine: platform, Python, CPU count, GPU name or null),
  ``export`` (the command or button, the runs asked for, whether adapters and evaluations were added),
  ``counts`` (runs, samples, metrics) and ``adapters`` (the bundle ids of the runs whose adapter is inside).
- ``runs.jsonl``: one run a line, the store's row without what only means something on its machine (pid,
  host): id, kind, name, status, model, adapter, settings and summary (objects), error, created, started,
  finished, parent, progress, eta, message, note. Ids are the exporting store's; ``parent`` and
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
import stat
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .home import home
from .store import FINAL, Store
from .verify import MAX_COMPLETION_CHARS, parse_json_line, scrub

FORMAT, VERSION = "algodistill-bundle", 1
ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo"  # the demo bundle (the first *.zip by name) for a store's first start
DEMO_MARK = "demo"  # the store's meta key once the demo was loaded
DEMO_PREFIX = "[demo] "  # what an imported demo run's name starts with, wherever runs are listed
MANIFEST, RUNS, SAMPLES, METRICS = "manifest.json", "runs.jsonl", "samples.jsonl", "metrics.jsonl"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", "algodistill.json")
REQUIRED_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

# Caps on what an import reads: a bundle over any of them is refused before anything is written.
MAX_BUNDLE_BYTES = 2 * 2**30  # the zip file itself
MAX_TOTAL_BYTES = 4 * 2**30  # all members, uncompressed, as their headers declare (zipfile reads no further)
MAX_MEMBERS = 1_000
MAX_RUNS = 1_000
MAX_MEMBER_BYTES = {MANIFEST: 2**20, RUNS: 64 * 2**20, SAMPLES: 256 * 2**20, METRICS: 256 * 2**20,
                    "adapter_model.safetensors": 2 * 2**30}  # other adapter files: MAX_SMALL_FILE_BYTES
MAX_SMALL_FILE_BYTES = 2**20
_MEMBER = re.compile(rf"({'|'.join(map(re.escape, (MANIFEST, RUNS, SAMPLES, METRICS)))})"
                     rf"|adapters/(\d{{1,15}})/({'|'.join(map(re.escape, ADAPTER_FILES))})")
_FOLDER = re.compile(r"adapters/(\d{1,15}/)?")
_MAX_ID = 2**53


class BundleError(ValueError):
    """A bundle that cannot be exported or imported; the message says why. Nothing was created."""


# ------------------------------------------------------------------------------------------ fields

@dataclass(frozen=True)
class Field:
    """What a field of a bundle line may hold: ``kind`` (int, float, str, dict or list), whether it is
    required (otherwise null or absent), and its bound: (low, high) for a number, a length for a string,
    a size as JSON for an object or list."""
    kind: type
    required: bool = False
    bound: Any = None


_ID = Field(int, True, (1, _MAX_ID))
_NUMBER = Field(float)
RUN_FIELDS = {
    "id": _ID, "kind": Field(str, True, 10), "name": Field(str, False, 500), "status": Field(str, True, 20),
    "model": Field(str, False, 2_000), "adapter": Field(str, False, 4_096), "settings": Field(dict, False, 2**20),
    "summary": Field(dict, False, 4 * 2**20), "error": Field(str, False, 100_000), "created": _NUMBER,
    "started": _NUMBER, "finished": _NUMBER, "parent": Field(int, False, (1, _MAX_ID)), "progress": _NUMBER,
    "eta": _NUMBER, "message": Field(str, False, 10_000), "note": Field(str, False, 2_000),
}
SAMPLE_FIELDS = {
    "run": _ID, "problem": Field(str, True, 100), "difficulty": Field(int, True, (0, 1_000)),
    "seed": Field(int, True, (-2**63, 2**63 - 1)), "idx": Field(int, True, (0, 10**9)),
    "sample": Field(int, False, (0, 10**9)), "prompt": Field(str, False, 1_000_000),
    "completion": Field(str, False, MAX_COMPLETION_CHARS + 1_000),
    "code": Field(str, False, MAX_COMPLETION_CHARS + 1_000),
    "status": Field(str, True, 40), "passed": Field(int, False, (0, 10**6)), "total": Field(int, False, (0, 10**6)),
    "score": _NUMBER, "tests": Field(list, False, 1_900_000), "notes": Field(list, False, 100_000),
    "error": Field(str, False, 100_000), "gen_time": _NUMBER, "tokens": Field(int, False, (0, 10**9)),
    "created": _NUMBER, "cut_off": Field(int, False, (0, 1)), "style": Field(str, False, 40),
}
METRIC_FIELDS = {"run": _ID, "step": Field(int, True, (0, 10**9)), "epoch": _NUMBER, "name": Field(str, True, 100),
                 "value": _NUMBER, "time": _NUMBER}


_KIND_WORDS = {int: "an integer", float: "a finite number", str: "a string", dict: "a JSON object",
               list: "a JSON list"}


def _checked(obj: Any, fields: dict[str, Field], where: str) -> dict:
    """``obj`` as a row with every field of ``fields`` (absent ones null), or BundleError naming the first
    field that is unknown, missing, of the wrong type or out of bounds. Strings become valid UTF-8."""
    if not isinstance(obj, dict):
        raise BundleError(f"{where}: not a JSON object")
    unknown = sorted(set(obj) - set(fields))
    if unknown:
        raise BundleError(f"{where}: unknown field {unknown[0][:40]!r}")
    row = {}
    for key, spec in fields.items():
        value = obj.get(key)
        if value is None:
            if spec.required:
                raise BundleError(f"{where}: {key} is missing")
            row[key] = None
            continue
        if spec.kind is int:
            ok = type(value) is int  # not a bool
        elif spec.kind is float:  # what SQLite stores as a number
            ok = (type(value) is float and math.isfinite(value)) or (type(value) is int and abs(value) < 2**63)
        else:
            ok = isinstance(value, spec.kind)
        if not ok:
            raise BundleError(f"{where}: {key} must be {_KIND_WORDS[spec.kind]}, got {type(value).__name__}")
        if spec.kind is int and not spec.bound[0] <= value <= spec.bound[1]:
            raise BundleError(f"{where}: {key} = {value} is out of range ({spec.bound[0]} to {spec.bound[1]})")
        size = len(value) if spec.kind is str else len(json.dumps(value)) if spec.kind in (dict, list) else 0
        if spec.bound is not None and spec.kind in (str, dict, list) and size > spec.bound:
            raise BundleError(f"{where}: {key} is {size:,} characters; the limit is {spec.bound:,}")
        row[key] = scrub(value)
    return row


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

def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The bundle's members by name, each checked: an expected name (no other path, so no absolute path,
    ``..`` or backslash), a regular file (no symlink), not encrypted, within its size cap, once; in all at
    most ``MAX_MEMBERS`` and ``MAX_TOTAL_BYTES`` declared."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"it has {len(infos):,} members; a bundle has at most {MAX_MEMBERS:,}")
    members, total = {}, 0
    for info in infos:
        name, mode = info.filename, info.external_attr >> 16
        if info.is_dir() and _FOLDER.fullmatch(name):
            continue
        if not _MEMBER.fullmatch(name):
            raise BundleError(f"unexpected member {name[:200]!r} (a bundle holds {MANIFEST}, {RUNS}, {SAMPLES}, "
                              f"{METRICS} and adapters/<run>/ with {', '.join(ADAPTER_FILES)})")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded (writestr, other systems)
            raise BundleError(f"{name} is a link or special file, not a plain file")
        if info.flag_bits & 0x1:
            raise BundleError(f"{name} is encrypted")
        if name in members:
            raise BundleError(f"{name} appears twice")
        cap = MAX_MEMBER_BYTES.get(name, MAX_MEMBER_BYTES.get(Path(name).name, MAX_SMALL_FILE_BYTES))
        if info.file_size > cap:
            raise BundleError(f"{name} is {info.file_size:,} bytes uncompressed; the limit is {cap:,}")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(f"its members add up to more than {MAX_TOTAL_BYTES:,} bytes uncompressed")
        members[name] = info
    missing = [name for name in (MANIFEST, RUNS, SAMPLES, METRICS) if name not in members]
    if missing:
        raise BundleError(f"{missing[0]} is missing: not an algodistill bundle")
    return members


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes: at most its declared size (zipfile stops there), checked against its CRC."""
    try:
        with zf.open(info) as f:
            return f.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
        raise BundleError(f"{info.filename} cannot be read ({exc})") from None


def _json_lines(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterable[tuple[str, Any]]:
    """(where, value) of each non-blank line of a JSON lines member."""
    try:
        text = _read(zf, info).decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{info.filename} is not UTF-8 text") from None
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            where = f"{info.filename} line {number}"
            try:
                yield where, parse_json_line(line)
            except ValueError as exc:
                raise BundleError(f"{where}: {exc}") from None


def _manifest(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict:
    try:
        manifest = json.loads(_read(zf, info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleError(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST} does not say format {FORMAT!r}: not an algodistill bundle")
    if manifest.get("version") != VERSION:
        raise BundleError(f"format version {str(manifest.get('version'))[:20]}; this algodistill reads version "
                          f"{VERSION} (a newer bundle needs a newer algodistill)")
    counts, adapters = manifest.get("counts"), manifest.get("adapters", [])
    if not (isinstance(counts, dict) and all(isinstance(counts.get(k), int) for k in ("runs", "samples", "metrics"))
            and isinstance(adapters, list) and all(isinstance(a, int) and not isinstance(a, bool) for a in adapters)):
        raise BundleError(f"{MANIFEST}: counts (runs, samples, metrics) and adapters (run ids) are malformed")
    return manifest


def _read_rows(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], manifest: dict
               ) -> tuple[list[dict], list[dict], list[dict]]:
    """The runs, samples and metrics of a bundle, every field checked and every reference to a run resolved
    within the bundle; BundleError at the first problem."""
    runs = [_checked(obj, RUN_FIELDS, where) for where, obj in _json_lines(zf, members[RUNS])]
    if not runs:
        raise BundleError(f"{RUNS} has no runs")
    if len(runs) > MAX_RUNS:
        raise BundleError(f"{len(runs):,} runs; a bundle holds at most {MAX_RUNS:,}")
    kinds = {}
    for run in runs:
        where = f"{RUNS}: run {run['id']}"
        if run["id"] in kinds:
            raise BundleError(f"{where} appears twice")
        kinds[run["id"]] = run["kind"]
        if run["kind"] not in ("train", "eval"):
            raise BundleError(f"{where}: kind must be train or eval, got {run['kind']!r}")
        if run["status"] not in FINAL:
            raise BundleError(f"{where}: status must be one of {', '.join(FINAL)} (a bundle holds finished runs), "
                              f"got {run['status']!r}")
        run["settings"], run["summary"] = run["settings"] or {}, run["summary"] or {}
    for run in runs:
        where, group = f"{RUNS}: run {run['id']}", run["settings"].get("style_group")
        if run["parent"] is not None and (run["parent"] not in kinds or run["parent"] == run["id"]):
            raise BundleError(f"{where} names parent {run['parent']}, which is not another run of the bundle")
        if group is not None and (isinstance(group, bool) or group not in kinds):
            raise BundleError(f"{where} names style_group {str(group)[:20]}, which is not a run of the bundle")
    samples, keys = [], set()
    for where, obj in _json_lines(zf, members[SAMPLES]):
        row = _checked(obj, SAMPLE_FIELDS, where)
        if kinds.get(row["run"]) != "eval":
            raise BundleError(f"{where}: run {row['run']} is not an evaluation of the bundle")
        row["sample"] = row["sample"] or 0
        key = tuple(row[k] for k in ("run", "problem", "difficulty", "seed", "idx", "sample"))
        if key in keys:
            raise BundleError(f"{where}: the same sample (run, problem, difficulty, seed, idx, sample) appears twice")
        keys.add(key)
        if any(not (isinstance(t, dict) and isinstance(t.get("status"), str) and isinstance(t.get("args"), list)
                    and "expected" in t) for t in row["tests"] or []):
            raise BundleError(f"{where}: each test must be an object with status, args and expected")
        if any(not isinstance(n, str) for n in row["notes"] or []):
            raise BundleError(f"{where}: notes must be strings")
        samples.append(row)
    metrics = []
    for where, obj in _json_lines(zf, members[METRICS]):
        row = _checked(obj, METRIC_FIELDS, where)
        if row["run"] not in kinds:
            raise BundleError(f"{where}: run {row['run']} is not in the bundle")
        metrics.append(row)
    found = {"runs": len(runs), "samples": len(samples), "metrics": len(metrics)}
    if any(manifest["counts"][k] != n for k, n in found.items()):
        raise BundleError(f"the manifest counts {manifest['counts']} but the bundle holds {found}: it is incomplete")
    return runs, samples, metrics


def _adapter_members(members: dict[str, zipfile.ZipInfo], manifest: dict, kinds: dict[int, str]
                     ) -> dict[int, list[zipfile.ZipInfo]]:
    """The adapter files by bundle run id: only training runs of the bundle, each with the required files,
    exactly the runs the manifest lists."""
    found: dict[int, list[zipfile.ZipInfo]] = {}
    for name, info in members.items():
        if name.startswith("adapters/"):
            found.setdefault(int(name.split("/")[1]), []).append(info)
    for run_id, infos in found.items():
        if kinds.get(run_id) != "train":
            raise BundleError(f"adapters/{run_id}/ belongs to no training run of the bundle")
        names = {Path(i.filename).name for i in infos}
        missing = [n for n in REQUIRED_ADAPTER_FILES if n not in names]
        if missing:
            raise BundleError(f"adapters/{run_id}/ has no {missing[0]}")
    if sorted(found) != sorted(manifest["adapters"]):
        raise BundleError(f"the manifest lists adapters {manifest['adapters']} but the bundle holds {sorted(found)}")
    return found


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Copy a member to ``target``, streamed: at most its declared size, checked against its CRC."""
    try:
        with zf.open(info) as source, target.open("xb") as out:
            shutil.copyfileobj(source, out, 2**20)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BundleError(f"{info.filename} cannot be read ({exc})") from None


def _check_adapter_file(path: Path) -> None:
    """A JSON file must be a JSON object; a safetensors file must start with its header (8-byte length, then
    that much JSON)."""
    if path.suffix == ".json":
        try:
            ok = isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
        except (UnicodeDecodeError, ValueError, RecursionError):
            ok = False
        if not ok:
            raise BundleError(f"{path.parent.name}/{path.name} is not a JSON object")
    elif path.suffix == ".safetensors":
        with path.open("rb") as f:
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else 0
            try:
                ok = 0 < length <= MAX_SMALL_FILE_BYTES * 100 and isinstance(json.loads(f.read(length)), dict)
            except (UnicodeDecodeError, ValueError, RecursionError):
                ok = False
        if not ok:
            raise BundleError(f"{path.parent.name}/{path.name} is not a safetensors file")


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
                    row["name"] = DEMO_PREFIX + (run["name"] or run["model"] or run["kind"])
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
