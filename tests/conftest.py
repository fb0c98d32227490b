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
