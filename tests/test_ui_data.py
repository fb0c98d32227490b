"""Data tab handlers, called as plain functions, and the app building without torch."""

import json
import subprocess
import sys

import pytest

from algodistill.traces import BUNDLED_SETS
from algodistill.ui import data_tab
from tests.conftest import ROOT


def test_preview_problem_shows_prompt_and_tests():
    prompt, rows, reference = data_tab.preview_problem("parentheses", 5, 999, 0)
    assert "is_balanced" in prompt and "difficulty 5" in prompt
    assert len(rows) == 5 and rows[0][0].startswith("is_balanced(")
    assert "def is_balanced" in reference


def test_preview_problem_bad_input_is_a_message():
    prompt, rows, _ = data_tab.preview_problem("nope", 5, 999, 0)
    assert "Cannot build" in prompt and rows == []


@pytest.fixture
def app_store(store, monkeypatch):
    from algodistill.ui import common
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    return common


def test_verify_traces_bundled_and_uploaded(app_store, tmp_path):
    text, table, counts = data_tab.verify_traces(None)
    assert "kept" in text and len(table) >= 60 and all(row[5] == "yes" for row in table)
    assert sum(sum(row[1:]) for row in counts) == len(table)
    path = tmp_path / "u.jsonl"
    path.write_text("{broken\n" + json.dumps({"problem": "rpn", "difficulty": 1, "seed": 42, "index": 0,
                                              "response": "no code"}) + "\n")
    kept, text, table, _ = data_tab.upload_set(str(path))  # refused, but it still says why, line by line
    assert kept is None and "not kept" in text and [row[5] for row in table] == ["no", "no"]


@pytest.mark.parametrize("path", ["/etc/passwd", "{tmp}/u.jsonl", "{uploads}/../runs.jsonl", "{uploads}/gone.jsonl"])
def test_the_app_opens_no_trace_file_but_the_bundled_set_and_kept_uploads(app_store, tmp_path, path):
    (tmp_path / "u.jsonl").write_text("{}\n")
    path = path.format(tmp=tmp_path, uploads=app_store.uploads_dir())
    text, table, _ = data_tab.verify_traces(path)
    assert text.startswith("**Cannot read") and table == []
    with pytest.raises(ValueError, match="upload"):
        app_store.trace_set(path)


def test_app_builds_without_importing_torch():
    probe = "import sys; import app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_kept_uploads_are_listed_as_trace_sets_with_their_counts(app_store, tmp_path):
    from algodistill.ui import train_tab
    common = app_store
    bundled = [json.loads(line) for line in open(common.BUNDLED)]
    mine = tmp_path / "my traces.jsonl"
    mine.write_text(json.dumps(bundled[0]) + "\n" + json.dumps(dict(bundled[1], response="no code")) + "\n{oops\n")
    shipped = [str(common.BUNDLED.with_name(n))
               for n in ("reference.jsonl", "varied.jsonl", "varied-no-terse.jsonl", "varied-code-first.jsonl",
                         "varied-no-terse-self.jsonl", "varied-code-first-self.jsonl")]
    assert [p for _, p in common.trace_sets()] == shipped  # the bundled sets; nothing uploaded yet
    kept = common.keep_upload(str(mine))
    labels, paths = zip(*common.trace_sets())
    assert paths == (*shipped, kept) and "my traces" in labels[6] and "varied-wording" in labels[1]
    assert "stdio held out" in labels[1] and "terse held out" in labels[2] and "code first" in labels[3]
    rows = data_tab.trace_set_rows()
    assert rows[0][2] == len(bundled) and rows[0][3] == 0
    assert rows[6][1:4] == [3, 1, 2] and rows[6][4] == kept and "self-distilled" in labels[4]
    assert "code first, self-distilled" in labels[5]
    assert rows[1][1:4] == [84, 84, 0] == rows[2][1:4] == rows[3][1:4] == rows[4][1:4] == rows[5][1:4]
    # a kept set trains: the form's traces value is the kept path, unchanged
    settings = train_tab.settings_from_form(dict(zip(train_tab.FIELDS, ("smollm2-135m", kept, "x", 1, 2e-4, 16, 32,
                                                                         0.05, 4, 4, 1024, 0.1, 2, "cpu"))))
    assert settings.traces == kept


@pytest.mark.parametrize("content, why", [(b"", "has no traces"), (b"\n  \n", "has no traces"),
                                          (bytes(range(256)) * 40, "0 kept of"),
                                          (b'{"problem": "rpn"}\n', "missing field")])
def test_an_upload_with_no_verified_trace_is_refused_and_nothing_is_kept(app_store, tmp_path, content, why):
    from algodistill.ui import train_tab
    path = tmp_path / "junk.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=why):
        app_store.keep_upload(str(path))
    kept, message = app_store.accept_upload(str(path))  # what the Train tab's upload shows
    assert kept is None and message.startswith("⚠️ Upload not kept") and "nothing was kept" in message
    kept, text, *_ = data_tab.upload_set(str(path))
    assert kept is None and "not kept" in text
    assert not app_store.uploads_dir().exists() or list(app_store.uploads_dir().iterdir()) == []
    assert [p for _, p in app_store.trace_sets()][len(BUNDLED_SETS):] == []  # not offered in Train: only the bundled sets
    with pytest.raises(ValueError):
        train_tab.settings_from_form(dict(zip(train_tab.FIELDS, ("smollm2-135m", str(path), "x", 1, 2e-4, 16, 32,
                                                                     0.05, 4, 4, 1024, 0.1, 2, "cpu"))))


def test_a_kept_upload_can_be_deleted_but_not_the_bundled_set(app_store, tmp_path):
    common = app_store
    good = json.loads(common.BUNDLED.read_text().splitlines()[0])
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps(good) + "\n")
    kept, message = common.accept_upload(str(mine))
    assert kept and "1 of 1 traces passed" in message and kept in [p for _, p in common.trace_sets()]
    store = common.store()
    done = store.create_run("train", {"traces": kept}, name="used it")
    store.finish_run(done, "completed")
    active = store.create_run("train", {"traces": kept}, name="training on it")  # queued
    assert "is queued on it" in data_tab.delete_set(kept) and open(kept).read()  # a job needs it: kept
    store.finish_run(active, "failed")
    assert data_tab.delete_set(str(common.BUNDLED)).startswith("**Not deleted:** the bundled reference set")
    varied = common.BUNDLED.with_name("varied.jsonl")
    assert data_tab.delete_set(str(varied)).startswith("**Not deleted:** the bundled varied-wording set")
    assert common.BUNDLED.is_file() and varied.is_file()
    text = data_tab.delete_set(kept)
    assert text.startswith("Deleted mine-") and f"#{done}" in text and "keep their settings" in text
    assert [p for _, p in common.trace_sets()] == [str(p) for p, _ in BUNDLED_SETS.values()]
    assert store.get_run(done)["settings"]["traces"] == kept  # the run still says what it trained on
    assert "Not deleted" in data_tab.delete_set(kept) and "Not deleted" in data_tab.delete_set(None)
    assert "Not deleted" in data_tab.delete_set("/etc/passwd")


def test_the_warm_up_verifies_every_listed_set_so_data_opens_on_cached_verdicts(app_store, monkeypatch):
    from algodistill import traces
    common = app_store
    calls = []
    real = traces.verify_file
    monkeypatch.setattr(traces, "verify_file", lambda path, *a, **k: calls.append(str(path)) or real(path, *a, **k))
    common._verified.clear()
    common.warm_later(delay_s=0).join(timeout=300)
    assert sorted(calls) == sorted(p for _, p in common.trace_sets())  # each listed set once
    calls.clear()
    rows = data_tab.trace_set_rows()
    assert calls == [] and len(rows) == len(common.trace_sets())  # Data reads the cache: nothing verified again
