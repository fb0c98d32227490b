"""Where algodistill keeps what it makes: one home folder holds ``runs.db``, ``uploads/`` (kept trace sets),
``logs/`` (each job's log) and ``outputs/`` (adapters), so one setting moves them all and one volume keeps them.

The home is, in order: ``$ALGODISTILL_HOME``; on Hugging Face Spaces (``SPACE_ID`` set) with persistent
storage attached (``/data`` exists and is writable), ``/data/algodistill``; else the current directory.
``$ALGODISTILL_DB`` still names the store's file directly and wins over all of these; the home is then that
file's folder, since uploads, logs and adapters always lie next to runs.db. This module imports nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_NAME = "runs.db"
SPACES_DATA = Path("/data")  # where Spaces mounts persistent storage when the Space has it
SPACES_HOME = "algodistill"  # the folder the app uses under it


def _spaces_storage() -> bool:
    return SPACES_DATA.is_dir() and os.access(SPACES_DATA, os.W_OK)


def db_path() -> str:
    """The run store's path: ``$ALGODISTILL_DB``, else runs.db in the home (``./runs.db`` by default)."""
    if os.environ.get("ALGODISTILL_DB"):
        return os.environ["ALGODISTILL_DB"]
    if os.environ.get("ALGODISTILL_HOME"):
        return str(Path(os.environ["ALGODISTILL_HOME"]) / DB_NAME)
    if os.environ.get("SPACE_ID") and _spaces_storage():
        return str(SPACES_DATA / SPACES_HOME / DB_NAME)
    return DB_NAME


def home(store_path: str | None = None) -> Path:
    """The folder holding runs.db, uploads/, logs/ and outputs/: that of ``store_path`` (a store's own path),
    or of the default store."""
    path = store_path or db_path()
    return Path(path).resolve().parent if path != ":memory:" else Path.cwd()


def persistent() -> tuple[bool, str]:
    """(whether runs survive a restart, one sentence saying where they are kept or how to keep them). Off
    Spaces the home is on the machine's own disk; on Spaces only ``/data`` (persistent storage) outlives a
    restart, a rebuild or a sleep."""
    where = home()
    if not os.environ.get("SPACE_ID"):
        return True, f"Runs, uploads and adapters are kept in {where}."
    data = SPACES_DATA.resolve()
    if where == data or data in where.parents:
        return True, f"Runs, uploads and adapters are kept on this Space's persistent storage ({where})."
    lost = "every run, upload and adapter made here is lost when the Space restarts or sleeps"
    keep = "Meanwhile, download a bundle of the runs you want to keep (Runs tab)."
    if os.environ.get("ALGODISTILL_HOME") or os.environ.get("ALGODISTILL_DB"):
        return False, (f"The store is in {where}, outside this Space's persistent storage ({SPACES_DATA}): {lost}. "
                       f"Point ALGODISTILL_HOME at a folder under {SPACES_DATA} (with persistent storage "
                       f"attached) to keep them. {keep}")
    return False, (f"This Space has no persistent storage: {lost}. To keep them, attach persistent storage (the "
                   f"Space's Settings, Persistent storage): it is mounted at {SPACES_DATA}, and from the next "
                   f"start the app keeps everything in {SPACES_DATA / SPACES_HOME}. {keep}")
