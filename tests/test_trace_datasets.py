"""A trace set from a dataset (issue 22 §2): a local directory in the Hub's layout, loaded with
``datasets.load_dataset`` exactly as a Hub id is, mapped to the trace schema, refused when a column is missing,
and verified row by row like a file."""

import json

import pytest

from algodistill.traces import BUNDLED, is_dataset, verify_file


def hub_layout(tmp_path, rows, name="traces-ds"):
    """A dataset folder as the Hub stores one: data/train-00000-of-00001.parquet and a card."""
    from datasets import Dataset
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True)
    Dataset.from_list(rows).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                      "    path: data/train-*\n---\n")
    return folder


def bundled(n=4):
    return [json.loads(line) for line in BUNDLED.read_text().splitlines()[:n]]


def test_a_dataset_in_hub_layout_is_a_trace_set_verified_row_by_row(tmp_path):
    rows = [{"problem": r["problem"], "difficulty": r["difficulty"], "seed": r["seed"], "index": r["index"],
             "completion": r["response"]} for r in bundled()]
    rows[1]["completion"] = "```python\ndef wrong():\n    return 0\n```"  # verified like any trace: refused
    rows[2]["difficulty"] = 42  # a bad row says which one, the others still count
    folder = hub_layout(tmp_path, rows)
    assert is_dataset(folder) and is_dataset("someone/traces") and not is_dataset(BUNDLED)
    checks = verify_file(folder)
    assert [c.kept for c in checks] == [True, False, False, True]
    reasons = {c.line: c.reason for c in checks}
    assert "row 3: difficulty must be 1..10" in reasons[3]
    assert "tests passed" in reasons[2]


def test_a_conversation_column_gives_the_answer(tmp_path):
    rows = [{"problem": r["problem"], "difficulty": r["difficulty"], "seed": r["seed"], "index": r["index"],
             "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": r["response"]}]}
            for r in bundled(2)]
    assert [c.kept for c in verify_file(hub_layout(tmp_path, rows))] == [True, True]


def test_a_dataset_missing_a_column_is_refused_naming_it(tmp_path):
    folder = hub_layout(tmp_path, [{"problem": "rpn", "text": "hello"}])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) difficulty, seed, index, response \(or completion, "
                                         r"or messages\) a trace needs \(it has: problem, text\)"):
        verify_file(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="could not load the dataset"):
        verify_file(tmp_path / "empty")


def test_training_takes_a_dataset_and_the_form_takes_a_hub_id(store, tiny_model_dir, tmp_path, monkeypatch):
    from algodistill.train_sft import SFTSettings, run_training
    from algodistill.ui import common
    folder = hub_layout(tmp_path, [dict(r, response=r["response"]) for r in bundled(4)])
    settings = SFTSettings(model=tiny_model_dir, traces=str(folder), max_steps=1, device="cpu",
                           output_dir=str(tmp_path / "adapter"))
    run = store.create_run("train", vars(settings))
    summary = run_training(store, run, settings, log=lambda m: None)
    assert summary["traces"]["kept"] == 4 and store.get_run(run)["status"] == "completed"
    assert common.trace_set("someone/algo-traces") == "someone/algo-traces"  # loaded when the run starts
    for refused in ("../etc/passwd", "/etc/passwd", "a/../b"):
        with pytest.raises(ValueError, match="the app opens no other paths"):
            common.trace_set(refused)


def test_an_edited_dataset_folder_is_read_afresh(tmp_path):
    rows = [{"problem": r["problem"], "difficulty": r["difficulty"], "seed": r["seed"], "index": r["index"],
             "response": r["response"]} for r in bundled(3)]
    for n in (3, 1, 2):  # the same folder name each time, as a user re-exporting their set
        folder = hub_layout(tmp_path / str(n), rows[:n])
        assert len(verify_file(folder)) == n
