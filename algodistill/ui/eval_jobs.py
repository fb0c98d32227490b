"""The evaluation the Eval tab follows: its runs (the adapter run, its base-model twin, its other prompt
styles), the status block read from the store, and Stop and Resume. Plain functions of run ids."""

from __future__ import annotations

from .. import jobs
from ..evaluate import style_runs
from ..store import ACTIVE
from . import access
from .common import parse_run, status_markdown, store, waiting_note


def run_group(run_id) -> list[dict]:
    """An evaluation and the runs started with it (its base-model twin; its other prompt styles, each with
    its twin), whichever of them ``run_id`` is."""
    s = store()
    return [r for head in style_runs(s, parse_run(run_id))
            for r in [head] + [c for c in s.children(head["id"]) if c["kind"] == "eval"]]


def followed(run_id) -> int | None:
    """The evaluation the status block follows: the one launched from this page, else the newest active one."""
    if parse_run(run_id) is not None:
        return parse_run(run_id)
    busy = [r for r in store().runs(kind="eval") if r["status"] in ACTIVE]
    return busy[0]["id"] if busy else None


def stop(run_id) -> str:
    """Stop the followed evaluation: the run of its group being worked on (the process watches both)."""
    return stop_followed(run_id)[0]


def stop_followed(run_id) -> tuple[str, int | None]:
    """``stop``'s message, and the evaluation it stopped (to follow until its status says what was kept)."""
    access.require_owner("stop a run")
    run_id = followed(run_id)
    group = run_group(run_id) if run_id is not None else []
    busy = [r for r in group if r["status"] == "running"] + [r for r in group if r["status"] in ACTIVE]
    if not busy:
        return "No evaluation to stop.", None
    return jobs.stop(store(), busy[0]["id"]), run_id


def controls(run_id, shown) -> tuple[bool, bool]:
    """(Stop applies, Resume applies): Stop while the followed evaluation has a run queued or running; Resume
    when the evaluation shown (or followed) is a model evaluation that stopped, was interrupted or failed before
    its end, and none of its runs is still active. The buttons show only then: a red Stop over finished results
    reads as if something were running."""
    try:
        following = followed(run_id)
        can_stop = following is not None and any(r["status"] in ACTIVE for r in run_group(following))
    except KeyError:  # a run deleted meanwhile
        return False, False
    target = parse_run(shown) or following
    try:
        return can_stop, target is not None and bool(jobs.eval_to_resume(store(), target))
    except (ValueError, KeyError):  # not resumable as it stands (the reason is Resume's to say), or deleted
        return can_stop, False


def resume(run_id, shown) -> tuple[str, int | None]:
    """Finish the evaluation shown (or followed) from where it stopped: (message, run id to follow)."""
    access.require_owner("resume an evaluation")
    run_id = parse_run(shown) or followed(run_id)
    if run_id is None:
        return "Choose the evaluation to resume under Evaluation.", None
    try:
        ids = jobs.resume_eval(store(), run_id)
    except (ValueError, KeyError, jobs.JobRefused) as exc:
        return f"⚠️ Not resumed: {exc.args[0] if exc.args else exc}", None
    wait = waiting_note(*ids)
    return f"Resuming evaluation #{ids[0]}: the samples already judged are kept" + (f"; {wait}." if wait else "."), ids[0]


def run_status(run_id) -> str:
    """The status block: one entry per run of the evaluation, each with its own progress, ETA and message."""
    run_id = followed(run_id)
    if run_id is None:
        return "No evaluation running."
    try:
        return "\n\n".join(status_markdown(r) for r in run_group(run_id))
    except KeyError as exc:
        return str(exc)
