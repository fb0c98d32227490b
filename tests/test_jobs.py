"""Background jobs as the app starts them: a subprocess per run, one at a time, stop, dead = interrupted."""

import json
import os
import signal
import threading
import time

import pytest

from algodistill import jobs
from algodistill.evaluate import EvalSettings
from algodistill.train_sft import SFTSettings


def wait_for(predicate, timeout=180, every=0.5):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def test_training_job_runs_in_its_own_process_and_streams_metrics(store, tiny_model_dir, small_traces, tmp_path):
    settings = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=40, batch_size=4,
                           device="cpu", output_dir=str(tmp_path / "adapter"), experiment="job")
    run = jobs.start_train(store, settings)
    row = store.get_run(run)
    assert row["pid"] and row["pid"] != os.getpid() and row["status"] in ("queued", "running")
    with pytest.raises(jobs.JobRefused, match=f"run {run}.*one job at a time"):
        jobs.start_train(store, settings)
    wait_for(lambda: (store.last_step(run) or 0) >= 2)  # metrics arrive while it trains
    assert store.get_run(run)["status"] == "running" and store.get_run(run)["eta"] is not None
    message = jobs.stop(store, run, grace_s=60)
    assert "stop requested" in message
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "stopped" and store.last_step(run) < 40
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert "step" in jobs.log_tail(store, run) or jobs.log_tail(store, run)


def test_a_killed_job_is_reported_interrupted(store, tiny_model_dir, small_traces, tmp_path):
    settings = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=500, batch_size=4,
                           device="cpu", output_dir=str(tmp_path / "adapter"))
    run = jobs.start_train(store, settings)
    wait_for(lambda: (store.last_step(run) or 0) >= 1)
    os.killpg(store.get_run(run)["pid"], signal.SIGKILL)
    row = wait_for(lambda: (r := store.get_run(run))["status"] != "running" and r, timeout=30)
    assert row["status"] == "interrupted" and "ended without recording" in row["error"]
    assert jobs.active(store) == []  # the machine is free again


def test_eval_job_with_base_comparison(store, tiny_model_dir, tmp_path):
    settings = EvalSettings(model=tiny_model_dir, problems=["fizzbuzz"], difficulties=[1, 2], max_new_tokens=8,
                            device="cpu")
    with pytest.raises(ValueError, match="needs an adapter"):
        jobs.start_eval(store, settings, compare_base=True)
    (run,) = jobs.start_eval(store, settings)
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "completed", jobs.log_tail(store, run)
    assert row["summary"]["n"] == 2 and len(store.samples(run)) == 2


@pytest.mark.parametrize("kind", ["train", "eval"])
@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "a-store-per-thread"])
def test_two_launches_at_the_same_instant_give_one_job_and_one_refusal(store, tiny_model_dir, small_traces, tmp_path,
                                                                       monkeypatch, kind, shared):
    from algodistill.store import Store, process_start
    monkeypatch.setattr(jobs, "_spawn", lambda s, run_id, argv: s.update_run(  # a live process, none started
        run_id, pid=os.getpid(), pid_start=process_start(os.getpid())))
    create = "create_train_run" if kind == "train" else "create_eval_runs"
    real = getattr(jobs, create)

    def slow_create(*args, **kwargs):  # a busy machine between the check and the insert
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, create, slow_create)
    if kind == "train":
        settings = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=1, device="cpu",
                               output_dir=str(tmp_path / "adapter"))
        launch = jobs.start_train
    else:
        settings = EvalSettings(model=tiny_model_dir, problems=["rpn"], difficulties=[1], device="cpu")
        launch = jobs.start_eval
    barrier, results = threading.Barrier(2), []

    def one():
        s = store if shared else Store(store.path)
        barrier.wait()
        try:
            results.append(launch(s, settings))
        except jobs.JobRefused as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    started = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, jobs.JobRefused)]
    assert len(started) == 1 and len(refused) == 1, results
    winner = started[0] if kind == "train" else started[0][0]
    assert f"run {winner} ({kind}" in str(refused[0]) and "one job at a time" in str(refused[0])
    assert [r["id"] for r in store.runs()] == [winner]


def test_a_queued_run_without_a_process_blocks_until_it_is_abandoned(store, monkeypatch):
    from algodistill import store as store_module
    run = store.create_run("eval", {})  # queued a moment ago, its process not spawned yet
    with pytest.raises(jobs.JobRefused, match=f"run {run} .*queued"):
        with jobs._exclusive(store):
            store.create_run("train", {})
    assert [r["id"] for r in store.runs()] == [run]  # the refused launch left nothing behind
    monkeypatch.setattr(store_module, "QUEUED_GRACE_S", 0.0)  # its launcher died: it no longer blocks
    with jobs._exclusive(store):
        store.create_run("train", {})
    assert store.get_run(run)["status"] == "interrupted" and "no process took it" in store.get_run(run)["error"]


def test_a_bad_model_is_refused_before_a_job_starts(store, tmp_path):
    settings = EvalSettings(model=str(tmp_path / "missing.gguf"), problems=["rpn"], difficulties=[1])
    with pytest.raises(ValueError, match="GGUF file not found"):
        jobs.start_eval(store, settings)
    assert store.runs() == []


def test_a_failing_job_records_its_error(store, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # looks like a model directory, cannot be loaded
    settings = EvalSettings(model=str(broken), problems=["rpn"], difficulties=[1])
    (run,) = jobs.start_eval(store, settings)
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "failed" and "could not load" in row["error"] and str(broken) in row["error"]
    assert json.dumps(row)  # the row stays serializable for the UI
