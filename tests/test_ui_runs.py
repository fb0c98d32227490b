"""The Runs tab's handlers against a real store: the table, rename, note, delete, downloads."""

import csv
import json
import zipfile
from pathlib import Path

import pytest

from algodistill.evaluate import run_scoring
from algodistill.problems import grid
from algodistill.sandbox import Limits
from algodistill.ui import runs_tab
from algodistill.verify import fenced


def an_evaluation(db) -> int:
    items = [(inst, fenced(inst.reference)) for inst in grid(["rpn", "fizzbuzz"], [1, 3])]
    return run_scoring(db, items, name="reference", model="ref", settings={"per_cell": 1}, limits=Limits())["run"]


def test_the_table_shows_results_and_the_settings_that_differ(db):
    from dataclasses import asdict

    from algodistill.train_sft import SFTSettings
    train = db.create_run("train", asdict(SFTSettings(learning_rate=1e-3, lora_r=8)), name="fast", status="completed")
    db.update_run(train, summary={"final_loss": 0.5, "steps": 12})
    evaluation = an_evaluation(db)
    rows = {r[0]: dict(zip(runs_tab.COLUMNS, r)) for r in runs_tab.runs_rows()}
    assert rows[train]["changed"] == "lr 0.001, r 8"  # short names: lr 2e-4 vs 1e-3 must be visible
    assert "learning_rate=0.001, lora_r=8" in runs_tab.detail(train) and "lora_alpha" not in runs_tab.detail(train)
    assert rows[train]["result"] == "loss 0.5000"  # the steps are in the run's detail
    assert "loss 0.5000 after 12 steps" in runs_tab.detail(train)
    assert rows[evaluation]["result"] == "4/4 (100.0%)"


def test_long_cells_are_cut_to_their_column_keeping_the_ends_that_tell_runs_apart(db):
    long_name = "[demo] qwen2.5-coder-0.5b + 1-varied-no-terse-code-first [stub]"
    run = db.create_run("eval", {"prompt_style": "stub"}, name=long_name, model="Qwen/Qwen2.5-Coder-0.5B-Instruct",
                        status="completed")
    db.update_run(run, note="a note much longer than its column\nover two lines")
    row = next(dict(zip(runs_tab.COLUMNS, r)) for r in runs_tab.runs_rows() if r[0] == run)
    for column, chars in runs_tab.FITS.items():
        assert len(row[column]) <= chars, (column, row[column])
    assert row["name"].startswith("[demo] qwen") and row["name"].endswith("first [stub]") and "…" in row["name"]
    assert row["model"].endswith("nstruct") and row["model"].startswith("Qwen/")
    assert row["note"].endswith("…") and "\n" not in row["note"] and row["changed"] == "stub"
    assert runs_tab.fit("short", 10) == "short" and runs_tab.fit("abcdefghij", 5) == "abcd…"
    assert runs_tab.fit("abcdefghij", 5, middle=True) == "ab…ij"
    assert long_name in runs_tab.detail(run)  # the detail keeps every character


def test_rename_and_note(db):
    run = an_evaluation(db)
    assert "now called" in runs_tab.rename(run, "  baseline  ")
    assert "saved" in runs_tab.annotate(run, "before the new traces")
    row = db.get_run(run)
    assert (row["name"], row["note"]) == ("baseline", "before the new traces")
    assert "Choose a run" in runs_tab.rename(None, "x")


def test_delete_needs_the_number_and_removes_rows_log_and_own_adapter_only(db, tmp_path):
    from algodistill import jobs
    run = an_evaluation(db)
    assert "type" in runs_tab.delete(run, "")
    assert db.samples(run)
    log = jobs.log_path(db, run)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("a log")
    assert runs_tab.delete(run, str(run)).startswith(f"Deleted run #{run}")
    assert db.samples(run) == [] and not log.exists()
    with pytest.raises(KeyError):
        db.get_run(run)
    own = Path(db.path).resolve().parent / "outputs" / "7-mine"
    own.mkdir(parents=True)
    elsewhere = tmp_path / "users-own-dir"
    elsewhere.mkdir()
    for adapter in (own, elsewhere):
        train = db.create_run("train", {}, status="completed", adapter=str(adapter))
        message = runs_tab.delete(train, f"#{train}")
        assert message.startswith("Deleted")
    assert not own.exists() and elsewhere.exists()  # a directory the user chose elsewhere is never deleted
    active = db.create_run("train", {}, status="running")
    db.attach_process(active)
    assert "Not deleted" in runs_tab.delete(active, str(active)) and db.get_run(active)


def test_samples_download_as_json_lines_and_csv(db):
    run = an_evaluation(db)
    path, _ = runs_tab.download(run, "jsonl")
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert len(lines) == 4 and {"prompt", "completion", "code", "tests", "sample"} <= set(lines[0])
    path, _ = runs_tab.download(run, "csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"passed"}
    assert runs_tab.download(run, "adapter")[0] is None


def test_adapter_download_loads_with_peft(db, tiny_model_dir, small_traces, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from algodistill.train_sft import SFTSettings, create_train_run, run_training
    settings = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=1, batch_size=4, device="cpu")
    run = create_train_run(db, settings)
    run_training(db, run, settings, log=lambda m: None)
    path, message = runs_tab.download(run, "adapter")
    assert path and "PeftModel" in message
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "unzipped")
        assert not [n for n in z.namelist() if "checkpoint" in n]
    (folder,) = (tmp_path / "unzipped").iterdir()
    assert (folder / "README.md").is_file()  # the model card travels with it
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(folder))
    assert model.peft_config["default"].r == settings.lora_r
