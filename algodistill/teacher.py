"""Teacher traces by rejection sampling: K answers per training instance from a teacher, the verified ones kept.

A teacher is either
- an OpenAI-compatible chat-completions endpoint, ``openai:MODEL`` at ``base_url`` (through the ``openai`` client;
  the key is read from the environment variable named by ``api_key_env`` and is never stored or logged):
  ``concurrency`` requests at a time, each retried with exponential backoff, or after the server's Retry-After,
  on 429, 408, 409, 5xx and timeouts. An authentication error, an unknown model, a refused request, an endpoint
  that cannot be reached, or one that keeps failing after ``retries`` retries ends the run (``TeacherError``);
- or any model spec the app loads (hub id, directory, .gguf file, offline name), generating in batches with
  ``generation.Generator``, each sample seeded by (instance, sample number) as in the evaluation, so the same
  settings draw the same answers.
(Both samplers are in teacher_sources.py; this module judges, keeps, writes and reports.)

The K samples of an instance are judged together by the verifier in the sandbox, as the evaluation judges them;
those that pass every hidden test are kept, less exact duplicates (the same code after extraction, per
instance), each with its provenance: the ``generation`` object of the trace schema (``traces.py``) says which
teacher, the sampling settings, when, the tokens (prompt and completion) and the cost when the endpoint reports
one. Instances come from the training seed: the evaluation seed is refused, and an instance of the evaluation
grid is never asked (``traces.check`` would reject its trace anyway).

The output is a trace set in the usual format. The kept lines of each instance are appended to ``OUT.part`` as
soon as it is judged (flushed and synced to disk), and ``OUT.part`` becomes ``OUT`` in one rename when the run
ends, completed, stopped or failed; after a crash ``OUT.part`` holds every instance judged until then. The
report gives the teacher's pass rate (samples passed / drawn) per problem type x difficulty and the cells in
which no sample passed: the student will not learn from these.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from .models import ModelUnavailable, resolve
from .problems import (EVAL_SEED, PROBLEM_TYPES, REFERENCE_DIFFICULTIES, TRAIN_SEED, Instance, choice_problem,
                       grid)
from .problems.styles import STYLES, styled
from .sandbox import Limits
from .settings import bounded, number_problems, stored
from .stopping import StopTraining, StopWatch
from .store import Store
from .traces import eval_fingerprints
from .teacher_sources import (MAX_RETRY_AFTER_S, TeacherError, _Endpoint, _Local, asked, public_url,  # noqa: F401
                              retry_after)
from .verify import fenced, verify, verify_many

ENDPOINT = "openai:"  # a teacher spec that starts so names an endpoint's model
NO_PASS = "no sample passed: the student will not learn from these"


@dataclass
class TeacherSettings:
    teacher: str = ""  # "openai:MODEL" (an endpoint) or a model spec (hub id, directory, .gguf file, offline name)
    out: str = ""  # the trace set to write (replaced if it exists)
    base_url: str | None = None  # the endpoint's; None: the client's default ($OPENAI_BASE_URL or OpenAI's)
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the endpoint's key
    problems: list[str] = field(default_factory=lambda: list(PROBLEM_TYPES))
    difficulties: list[int] = bounded(lo=1, hi=10, each=True, default_factory=lambda: list(REFERENCE_DIFFICULTIES))
    # each instance is asked in every one of these wordings (``problems.styles``), K samples each: traces in
    # several wordings teach the skill rather than one template
    prompt_styles: list[str] = field(default_factory=lambda: ["contract"])
    seed: int = bounded(TRAIN_SEED, 0, 2**32 - 1)
    per_cell: int = bounded(1, 1, 10_000, label="instances per cell")
    samples: int = bounded(4, 1, 1000, label="samples per instance")
    temperature: float = bounded(0.7, 0, 100, label="temperature")
    top_p: float = bounded(1.0, 0, 1, above=True, label="top-p")
    max_new_tokens: int = bounded(1024, 1, 1 << 20, label="max new tokens")
    concurrency: int = bounded(4, 1, 256, label="concurrent requests")  # endpoint only
    retries: int = bounded(6, 0, 100, label="retries per request")  # endpoint only
    request_timeout: float = bounded(300.0, 0, 3600, above=True, label="request timeout (seconds)")  # endpoint only
    timeout_s: float = bounded(Limits.timeout_s, 0, 3600, above=True, label="timeout (seconds per test)")
    batch_size: int = bounded(0, 0, 65536, label="batch size (0: automatic)")  # local model only
    backend: str = "auto"  # local model only: "auto", "hf" or "vllm"
    device: str = "auto"  # local model only

    @classmethod
    def from_dict(cls, data: dict) -> "TeacherSettings":
        return stored(cls, data)

    @property
    def endpoint_model(self) -> str | None:
        """The endpoint's model name for an ``openai:MODEL`` teacher; None for a local model."""
        return self.teacher.strip()[len(ENDPOINT):].strip() if self.teacher.strip().startswith(ENDPOINT) else None

    def check(self) -> None:
        """Refuse, in one message, what would only fail later: numbers, problem types, the evaluation seed, K
        samples that greedy decoding would make identical, the output path, the endpoint's options or a local
        model spec that does not resolve. Cheap: nothing is loaded or asked."""
        numbers = number_problems(self)
        problems = list(numbers)
        if wrong := choice_problem(self.problems):
            problems.append(wrong)
        if not self.difficulties:
            problems.append("choose at least one difficulty (1 to 10)")
        odd = [st for st in self.prompt_styles if st not in STYLES]
        if odd or not self.prompt_styles:
            problems.append(f"unknown prompt style(s) {odd}; choose from {', '.join(STYLES)}" if odd else
                            "choose at least one prompt style")
        if self.seed == EVAL_SEED:
            problems.append(f"seed {EVAL_SEED} is the evaluation seed: teacher traces come from training instances "
                            f"(seed {TRAIN_SEED}), never from the problems the student is tested on")
        if self.samples != 1 and self.temperature == 0 and not numbers:
            problems.append(f"{self.samples} samples per instance need a temperature > 0 (at 0 every sample is the "
                            "same answer)")
        if not str(self.out or "").strip():
            problems.append("name the trace file to write (--out)")
        if self.backend not in ("auto", "hf", "vllm"):
            problems.append("backend must be auto, hf or vllm")
        model = self.endpoint_model
        if model is not None:
            if not model:
                problems.append(f"name the endpoint's model: {ENDPOINT}MODEL")
            if self.base_url and urlsplit(self.base_url).scheme not in ("http", "https"):
                problems.append(f"the base URL must start with http:// or https://, got {public_url(self.base_url)!r}")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env or ""):
                problems.append(f"the API key's environment variable must be a name such as OPENAI_API_KEY, got "
                                f"{self.api_key_env!r} (the key itself is never given on the command line)")
        elif not self.teacher.strip():
            problems.append(f"choose a teacher: {ENDPOINT}MODEL with a base URL, or a model spec")
        else:
            try:
                resolve(self.teacher)
            except ModelUnavailable as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))

    def instances(self) -> tuple[list[Instance], list[Instance]]:
        """(the instances to ask the teacher, each in every prompt style, and those refused because they are
        problems of the evaluation grid)."""
        every = grid(dict.fromkeys(self.problems), dict.fromkeys(self.difficulties), self.seed, self.per_cell)
        taken = eval_fingerprints()
        return ([styled(i, style) for i in every if i.fingerprint() not in taken
                 for style in dict.fromkeys(self.prompt_styles)],
                [i for i in every if i.fingerprint() in taken])

    def sampling(self, sample: int, seed: int | None) -> dict:
        """The provenance fields every sample shares with its settings."""
        return {"sample": sample, "samples": self.samples, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "seed": seed}


# ------------------------------------------------------------------------------------------ judging and writing

class _Tally:
    """The counts of a generation, per cell and in all, updated from the drawing and the judging threads."""

    def __init__(self, settings: TeacherSettings, todo: list[Instance], refused: list[Instance]):
        self.settings, self.refused = settings, refused
        self.lock = threading.Lock()
        self.cells = {(p, d): {"instances": 0, "drawn": 0, "passed": 0, "kept": 0, "duplicates": 0}
                      for p in dict.fromkeys(settings.problems) for d in dict.fromkeys(settings.difficulties)}
        for inst in todo:
            self.cells[(inst.problem, inst.difficulty)]["instances"] += 1
        self.styles = {style: {"drawn": 0, "passed": 0, "kept": 0} for style in dict.fromkeys(settings.prompt_styles)}
        self.instances, self.total = len(todo), len(todo) * settings.samples
        self.drawn = self.judged = self.passed = self.kept = self.duplicates = self.retries = 0
        self.alike = self.compared = 0  # instances whose K > 1 samples were all the same text, of those with K > 1
        self.tokens = {"prompt": 0, "completion": 0}
        self.cost: float | None = None

    def drew(self, instance: Instance, meta: dict) -> None:
        with self.lock:
            self.cells[(instance.problem, instance.difficulty)]["drawn"] += 1
            self.styles[instance.style]["drawn"] += 1
            self.drawn += 1
            self.retries += meta.get("retries") or 0
            for part in self.tokens:
                self.tokens[part] += meta["tokens"].get(part) or 0
            if meta.get("cost") is not None:
                self.cost = (self.cost or 0.0) + meta["cost"]

    def judged_instance(self, instance: Instance, judged: int, passed: int, kept: int, duplicates: int,
                        alike: bool | None = None) -> None:
        with self.lock:
            if alike is not None:
                self.compared += 1
                self.alike += alike
            cell = self.cells[(instance.problem, instance.difficulty)]
            cell["passed"] += passed
            cell["kept"] += kept
            cell["duplicates"] += duplicates
            self.styles[instance.style]["passed"] += passed
            self.styles[instance.style]["kept"] += kept
            self.judged += judged
            self.passed += passed
            self.kept += kept
            self.duplicates += duplicates

    def state(self) -> dict:
        """What progress shows: samples drawn, judged, passed and kept, of the total to draw."""
        with self.lock:
            return {"drawn": self.drawn, "judged": self.judged, "passed": self.passed, "kept": self.kept,
                    "total": self.total}

    def report(self, status: str, error: str | None) -> dict:
        s = self.settings
        cells = [{"problem": p, "difficulty": d, **c, "pass_rate": c["passed"] / c["drawn"] if c["drawn"] else None}
                 for (p, d), c in self.cells.items()]
        return {
            "teacher": s.teacher, "endpoint": public_url(s.base_url) if s.base_url else None,
            "out": s.out if self.kept else None,  # nothing kept: no file written
            "status": status, "error": error, "seed": s.seed, "samples": s.samples, "temperature": s.temperature,
            "top_p": s.top_p, "max_new_tokens": s.max_new_tokens, "instances": self.instances,
            "refused": [{"problem": i.problem, "difficulty": i.difficulty, "seed": i.seed, "index": i.index,
                         "reason": "a problem of the evaluation grid"} for i in self.refused],
            "total": self.total, "drawn": self.drawn, "judged": self.judged, "passed": self.passed, "kept": self.kept,
            "duplicates": self.duplicates, "pass_rate": self.passed / self.judged if self.judged else None,
            "same_text": {"instances": self.alike, "of": self.compared},
            "tokens": dict(self.tokens), "cost": self.cost, "retries": self.retries, "cells": cells,
            "prompt_styles": {style: {**c, "pass_rate": c["passed"] / c["drawn"] if c["drawn"] else None}
                              for style, c in self.styles.items()},
            "no_pass": [{"problem": c["problem"], "difficulty": c["difficulty"]} for c in cells
                        if c["drawn"] and not c["passed"]],
            "no_pass_means": NO_PASS,
        }


class _Writer:
    """Appends the kept lines of each judged instance to ``OUT.part``, flushed and synced; ``close`` renames it
    to ``OUT`` in one step, so ``OUT`` is never half written. With nothing kept, ``OUT`` is left as it was (an
    earlier file of that name is not replaced by an empty one) and the part file is removed."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.part = self.out.with_name(self.out.name + ".part")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.part, "w", encoding="utf-8")
        self.lines = 0

    def append(self, records: list[dict]) -> None:
        if records:
            self.lines += len(records)
            self.file.write("".join(json.dumps(r) + "\n" for r in records))
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()
        if self.lines:
            os.replace(self.part, self.out)
        else:
            self.part.unlink(missing_ok=True)


def trace_record(settings: TeacherSettings, instance: Instance, sample: int, text: str, meta: dict,
                 tests: int) -> dict:
    """A kept sample as a trace line (``traces.py``'s schema), its provenance in words and in ``generation``."""
    how = (f"sample {sample + 1} of {settings.samples} from {settings.teacher}"
           + (f" at temperature {settings.temperature:g}, top-p {settings.top_p:g}" if settings.temperature else
              ", greedy"))
    style = {} if instance.style == "contract" else {"style": instance.style}
    return {"id": f"{instance.problem}-d{instance.difficulty}-s{instance.seed}-i{instance.index}"
                  + (f"-{instance.style}" if style else "") + f"-k{sample}",
            "problem": instance.problem, "difficulty": instance.difficulty, "seed": instance.seed,
            "index": instance.index, **style, "prompt": instance.prompt, "response": text, "teacher": settings.teacher,
            "provenance": f"rejection sampling (python -m algodistill traces generate): {how}; it passed all {tests} "
                          "hidden tests in the sandbox",
            "generation": meta}


class _Judge:
    """Collects each instance's samples as they are drawn; once all K are in, judges them on the verifier thread
    and appends the kept ones. ``finish`` judges what a stopped run drew of its unfinished instances."""

    def __init__(self, settings: TeacherSettings, tally: _Tally, writer: _Writer, verifier: ThreadPoolExecutor,
                 progress: Callable[[dict], None] | None):
        self.settings, self.tally, self.writer, self.verifier = settings, tally, writer, verifier
        self.progress = progress or (lambda state: None)
        self.limits = Limits(timeout_s=settings.timeout_s)
        self.waiting: dict[tuple, list[tuple]] = {}
        self.futures: list[Future] = []
        self.hold = contextlib.nullcontext  # the stop watch's ``hold`` while drawing: a stop waits for ``add``

    def add(self, instance: Instance, sample: int, text: str, meta: dict) -> None:
        with self.hold():
            for future in [f for f in self.futures if f.done()]:  # a verifier failure ends the run now
                future.result()
                self.futures.remove(future)
            self.tally.drew(instance, meta)
            bucket = self.waiting.setdefault(asked(instance), [])
            bucket.append((instance, sample, text, meta))
            if len(bucket) == self.settings.samples:
                self.futures.append(self.verifier.submit(self._judge, self.waiting.pop(asked(instance))))
        self.progress(self.tally.state())

    def finish(self) -> None:
        for bucket in self.waiting.values():
            self.futures.append(self.verifier.submit(self._judge, bucket))
        self.waiting.clear()
        for future in self.futures:
            future.result()

    def _judge(self, bucket: list[tuple]) -> None:
        bucket = sorted(bucket, key=lambda item: item[1])
        verdicts = verify_many([(instance, text) for instance, _, text, _ in bucket], limits=self.limits)
        seen, records, passed = set(), [], 0
        for (instance, sample, text, meta), verdict in zip(bucket, verdicts):
            if verdict.solved:
                passed += 1
                if verdict.code not in seen:
                    seen.add(verdict.code)
                    records.append(trace_record(self.settings, instance, sample, text, meta, verdict.total))
        self.writer.append(records)
        texts = [text for _, _, text, _ in bucket]
        alike = len(set(texts)) == 1 if len(texts) > 1 else None
        self.tally.judged_instance(bucket[0][0], len(bucket), passed, len(records), passed - len(records), alike)
        self.progress(self.tally.state())


def _check_verifier(instance: Instance, limits: Limits) -> None:
    """The verifier must pass a reference solution here before any teacher is asked (and paid)."""
    verdict = verify(instance, fenced(instance.reference), limits=limits)
    if not verdict.solved:
        raise ValueError(f"the verifier fails the reference solution of {instance.problem} here ({verdict.status}: "
                         f"{verdict.error}); samples cannot be judged")


def generate_traces(settings: TeacherSettings, *, should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[dict], None] | None = None, log: Callable[[str], None] = print) -> dict:
    """Draw, judge and keep (see the module's docstring); returns the report. A stop (``should_stop``, SIGTERM or
    Ctrl-C in the main thread, within seconds even inside a generation batch) or a ``TeacherError`` ends the
    drawing: what was drawn is still judged, and the report's status says "stopped" or "failed" (with the
    error). ValueError or ModelUnavailable for settings or a model that cannot run, before anything is written."""
    settings.check()
    todo, refused = settings.instances()
    for inst in refused:
        log(f"refused {inst.problem} d{inst.difficulty} index {inst.index}: a problem of the evaluation grid")
    if todo:
        _check_verifier(todo[0], Limits(timeout_s=settings.timeout_s))
    stop = should_stop or (lambda: False)
    teacher = (_Endpoint if settings.endpoint_model is not None else _Local)(settings, log) if todo else None
    tally, writer = _Tally(settings, todo, refused), _Writer(settings.out)
    status, error = "completed", None
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="verifier") as verifier:
            judge = _Judge(settings, tally, writer, verifier, progress)
            with StopWatch(stop) as watch:
                judge.hold = watch.hold
                try:
                    watch.arm()
                    if teacher is not None:
                        teacher.draw(todo, judge, stop)
                except StopTraining:
                    status = "stopped"
                except TeacherError as exc:
                    status, error = "failed", str(exc)
                finally:
                    watch.disarm()
            judge.finish()
    finally:
        writer.close()
    return tally.report(status, error)


# ------------------------------------------------------------------------------------------ the report

def pass_rate_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): problem type x difficulty, each cell "passed/drawn rate" ("-" where nothing was drawn)."""
    difficulties = list(dict.fromkeys(c["difficulty"] for c in report["cells"]))
    by_problem: dict[str, dict[int, dict]] = {}
    for c in report["cells"]:
        by_problem.setdefault(c["problem"], {})[c["difficulty"]] = c
    rows = [[problem] + [f"{c['passed']}/{c['drawn']} {c['pass_rate']:.0%}" if c["drawn"] else "-"
                         for c in (cells[d] for d in difficulties)]
            for problem, cells in by_problem.items()]
    return ["problem"] + [f"d{d}" for d in difficulties], rows


def headline(report: dict) -> str:
    """The outcome in one sentence."""
    rate = f" ({report['pass_rate']:.1%})" if report["pass_rate"] is not None else ""
    cost = f", cost {report['cost']:.4g}" if report["cost"] is not None else ""
    tokens = report["tokens"]
    return (f"{report['teacher']}: {report['passed']}/{report['judged']} samples passed{rate}, {report['kept']} kept "
            f"({report['duplicates']} exact duplicate(s) dropped) from {report['instances']} instance(s); tokens "
            f"{tokens['prompt']:,} prompt + {tokens['completion']:,} completion{cost}; {report['retries']} "
            f"retries; {report['status']}" + (f": {report['error']}" if report["error"] else ""))


def sampling_line(report: dict) -> str | None:
    """A warning when sampling asked for several different answers and got the same text every time: the endpoint
    is likely decoding greedily whatever the temperature. ``transformers serve`` does so for a model whose
    generation_config does not set ``do_sample`` (it applies the request's temperature only to a sampling config).
    None when the samples differed, or K or the temperature rule the question out."""
    same = report.get("same_text") or {}
    if not report.get("temperature") or not same.get("of") or same["instances"] < same["of"]:
        return None
    return (f"⚠️ every instance's {report['samples']} samples came back as the same text ({same['of']} of "
            f"{same['of']}) at temperature {report['temperature']:g}: the endpoint seems to ignore the temperature "
            "and decode greedily, so the samples add nothing. transformers serve samples only for a model whose "
            "generation_config.json sets \"do_sample\": true; vLLM, llama.cpp and Ollama sample as asked.")


def no_pass_line(report: dict) -> str | None:
    """The cells in which no sample passed, in words; None when there are none."""
    if not report["no_pass"]:
        return None
    cells = ", ".join(f"{c['problem']} d{c['difficulty']}" for c in report["no_pass"])
    return f"{NO_PASS} ({len(report['no_pass'])} cell(s)): {cells}"


# ------------------------------------------------------------------------------------------ as a job

def create_run(store: Store, settings: TeacherSettings) -> int:
    """A queued run row (kind "traces") holding the settings; the job (``run_job``) rebuilds them from it."""
    return store.create_run("traces", asdict(settings), name=f"traces from {settings.teacher}", model=settings.teacher)


def run_job(store: Store, run_id: int, log: Callable[[str], None] = print) -> dict:
    """Do a queued trace generation (``python -m algodistill traces generate --run ID``, started by the app's job
    queue): progress, ETA and counts go to the run row, a Stop request ends it within seconds, and the report
    becomes the run's summary. A result with no kept trace leaves no file: as a trace set it could only fail a
    training run (an upload with none is refused alike)."""
    run = store.get_run(run_id)
    if run["kind"] != "traces":
        raise ValueError(f"run {run_id} is not a trace generation")
    settings = TeacherSettings.from_dict(run["settings"])
    store.mark_started(run_id)
    began = time.time()

    def progress(state: dict) -> None:
        done = state["judged"] / state["total"] if state["total"] else 1.0
        store.update_run(run_id, progress=done, eta=(time.time() - began) * (1 - done) / done if done else None,
                         message=f"{state['drawn']}/{state['total']} samples drawn, {state['judged']} judged: "
                                 f"{state['passed']} passed, {state['kept']} kept")
    try:
        report = generate_traces(settings, should_stop=lambda: store.stop_requested(run_id), progress=progress,
                                 log=log)
    except BaseException as exc:
        store.finish_run(run_id, "failed" if isinstance(exc, Exception) else "stopped",
                         error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    kept = f"{report['kept']} trace(s) kept in {Path(settings.out).name}" if report["kept"] else \
        "no trace kept, so no trace set was written"
    error = report["error"] or ("stopped on request; the traces verified until then are kept"
                                if report["status"] == "stopped" else None)
    if report["status"] == "completed":
        store.update_run(run_id, progress=1.0, eta=None)
    store.finish_run(run_id, report["status"], error=error, summary=report,
                     message=f"{report['passed']}/{report['judged']} samples passed; {kept}")
    return report
