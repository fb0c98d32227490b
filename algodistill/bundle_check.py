"""What a bundle may hold, and the checks an untrusted one passes before an import creates anything.

The format (bundle.py's docstring describes each member): the member names, the caps on sizes and counts, the
type and bounds of every field of a run, sample and metric line, and the readers that enforce them: a member
list with only known names, plain files, no duplicates and declared sizes under the caps (``_members``); UTF-8
JSON lines (``_json_lines``); a manifest of this format and version (``_manifest``); runs, samples and metrics
whose fields are checked one by one and whose references stay inside the bundle (``_read_rows``); adapter folders
the manifest lists (``_adapter_members``), each file a JSON object or a safetensors header
(``_check_adapter_file``). Every refusal is a ``BundleError`` saying why.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .store import FINAL
from .verify import MAX_COMPLETION_CHARS, parse_json_line, scrub

FORMAT, VERSION = "algodistill-bundle", 1
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
    "worked": _NUMBER,
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
