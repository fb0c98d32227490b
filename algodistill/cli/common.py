"""What the command families share: JSON output, progress lines, argument types."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from ..store import Store, default_path


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _progress(enabled: bool):
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rverified {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show



def _difficulty(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10:
        raise argparse.ArgumentTypeError("difficulty must be from 1 to 10")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _start_next_job(db: str | None) -> None:
    """Start the launch waiting longest in the app's job queue, now that this training or evaluation has ended
    (``jobs.dispatch``), so the queue moves on without the app. Its trouble is reported, never raised: the
    command keeps its own exit status."""
    path = db or default_path()
    if path != ":memory:" and not Path(path).is_file():
        return  # no run store, so no queue: none is created for it
    from ..jobs import JobRefused, dispatch
    store = Store(path)
    try:
        started = dispatch(store)
        note = f"started the next queued job: run {started[0]}" if started else None
    except (JobRefused, sqlite3.Error) as exc:
        note = f"warning: the next queued job did not start: {exc}"
    finally:
        store.close()
    if note and not sys.stderr.closed:  # closed after a broken pipe
        print(note, file=sys.stderr)


def _bar(enabled: bool, what: str):
    if not enabled:
        return None
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, done: int, total: int) -> None:
            self.total = total
            self.update(done - self.n)
    return Bar(desc=what, unit="problem", file=sys.stderr)
