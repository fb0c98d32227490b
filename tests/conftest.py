import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture
def store(tmp_path):
    from algodistill.store import Store
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    # never write the developer's runs.db from a test
    monkeypatch.setenv("ALGODISTILL_DB", str(tmp_path / "default-runs.db"))
    os.environ.pop("SPACE_ID", None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2 chat model built in code (no download), shared by the session's tests."""
    from algodistill.models import tiny_model
    return tiny_model(tmp_path_factory.mktemp("tiny-model"), hidden=32)


@pytest.fixture(scope="session")
def small_traces(tmp_path_factory):
    """The first 8 bundled traces: enough for a few SFT steps, quick to verify."""
    from algodistill.traces import BUNDLED
    path = tmp_path_factory.mktemp("traces") / "small.jsonl"
    path.write_text("".join(BUNDLED.read_text().splitlines(keepends=True)[:8]))
    return path


@pytest.fixture
def db(store, monkeypatch):
    """The store the app's tabs read (``ui.common.store()``), fresh for each test."""
    from algodistill.ui import common
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    return common.store()
