"""Background jobs as the app starts them: a subprocess per run, one at a time (the others wait in the queue),
stop, dead = interrupted."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from algodistill import jobs
from algodistill.evaluate import EvalSettings
from algodistill.store import ACTIVE, Store, process_start
from algodistill.train_sft import SFTSettings, latest_checkpoint

SLOW_STEP = os.path.join(os.path.dirname(__file__), "slow_step")  # sitecustomize.py: slow training steps


def wait_for(predicate, timeout=180, every=0.5):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


@pytest.fixture
def fake_spawn(monkeypatch):
    """Launches that start no process: each is recorded as (run id, argv), and its run is tied to a live
    process (this one), so it holds the machine until the test ends it."""
    launched = []

    def spawn(store, run_id, argv):
        launched.append((run_id, argv))
        store.update_run(run_id, pid=os.getpid(), pid_start=process_start(os.getpid()), message="starting")

    monkeypatch.setattr(jobs, "_spawn", spawn)
    return launched


def cheap_eval(model):
    return EvalSettings(model=model, problems=["rpn"], difficulties=[1], device="cpu")


def test_training_job_runs_in_its_own_process_and_streams_metrics(store, tiny_model_dir, small_traces, tmp_path):
    settings = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=40, batch_size=4,
                           device="cpu", output_dir=str(tmp_path / "adapter"), experiment="job")
    run = jobs.start_train(store, settings)
    row = store.get_run(run)
    assert row["pid"] and row["pid"] != os.getpid() and row["status"] in ("queued", "running")
    second = jobs.start_train(store, settings)  # while it runs: it waits its turn, with no process
    assert jobs.queue_position(store, second) == 2 and store.get_run(second)["pid"] is None
    assert store.get_run(second)["message"] == f"waiting: position 2 in the queue (after run {run})"
    assert "stopped while waiting in the queue" in jobs.stop(store, second)  # at once; the job runs on
    assert store.get_run(second)["status"] == "stopped" and store.job_queue() == []
    assert store.get_run(run)["status"] in ACTIVE and store.get_run(run)["pid"] == row["pid"]
    wait_for(lambda: (store.last_step(run) or 0) >= 2)  # metrics arrive while it trains
    assert store.get_run(run)["status"] == "running" and store.get_run(run)["eta"] is not None
    message = jobs.stop(store, run, grace_s=60)
    assert "stop requested" in message
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "stopped" and store.last_step(run) < 40
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    # the job's own output, from its first line to its last (written just after the run row is final)
    log = wait_for(lambda: f"run {run} stopped" in (text := jobs.log_tail(store, run, 10**6)) and text, timeout=30)
    assert log.startswith(f"run {run}: training {tiny_model_dir}") and "8 traces kept" in log


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
    (after,) = jobs.start_eval(store, settings)  # waits; the first job's process starts it as it ends
    assert jobs.queue_position(store, after) == 2
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "completed", jobs.log_tail(store, run)
    assert row["summary"]["n"] == 2 and len(store.samples(run)) == 2
    later = wait_for(lambda: (r := store.get_run(after))["status"] not in ("queued", "running") and r)
    assert later["status"] == "completed" and later["started"] >= row["finished"], jobs.log_tail(store, after)
    wait_for(lambda: f"started the next queued job: run {after}" in jobs.log_tail(store, run), timeout=30)


@pytest.mark.parametrize("kind", ["train", "eval"])
@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "a-store-per-thread"])
def test_two_launches_at_the_same_instant_give_one_job_and_one_waiting(store, tiny_model_dir, small_traces, tmp_path,
                                                                       fake_spawn, monkeypatch, kind, shared):
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
        settings, launch = cheap_eval(tiny_model_dir), jobs.start_eval
    barrier, results = threading.Barrier(2), []

    def one():
        s = store if shared else Store(store.path)
        barrier.wait()
        results.append(launch(s, settings))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = sorted(r if kind == "train" else r[0] for r in results)
    assert len(ids) == 2 and [r["id"] for r in store.runs()] == ids[::-1]
    assert fake_spawn == [(ids[0], [kind])]  # the older launch runs, the other waits behind it
    assert jobs.queue_position(store, ids[1]) == 2 and store.get_run(ids[1])["pid"] is None
    assert store.get_run(ids[1])["message"] == f"waiting: position 2 in the queue (after run {ids[0]})"


def test_a_run_being_launched_holds_the_machine_until_it_is_abandoned(store, tiny_model_dir, fake_spawn, monkeypatch):
    from algodistill import store as store_module
    launching = store.create_run("eval", {})  # queued a moment ago by a command, its process not there yet
    (waiting,) = jobs.start_eval(store, cheap_eval(tiny_model_dir))
    assert fake_spawn == [] and jobs.queue_position(store, waiting) == 2
    monkeypatch.setattr(store_module, "QUEUED_GRACE_S", 0.0)  # its launcher died: it no longer holds the machine
    assert store.get_run(waiting)["status"] == "queued"  # a launch in the queue waits as long as it takes
    assert jobs.dispatch(store) == [waiting] and fake_spawn == [(waiting, ["eval"])]
    assert store.get_run(launching)["status"] == "interrupted"
    assert "no process took it" in store.get_run(launching)["error"]


def test_the_queue_is_durable_and_moves_up_when_a_waiting_run_stops(store, tiny_model_dir, fake_spawn):
    from algodistill.evaluate import create_eval_runs
    settings = cheap_eval(tiny_model_dir)
    (first,) = jobs.start_eval(store, settings)
    (second,) = jobs.start_eval(store, settings)
    (resumed,) = create_eval_runs(store, settings)
    store.finish_run(resumed, "stopped", error="stopped on request")
    assert jobs.resume_eval(store, resumed) == [resumed]
    (last,) = jobs.start_eval(store, settings)
    assert fake_spawn == [(first, ["eval"])]
    other = Store(store.path)  # what another process (the app, a job) sees: the queue is in the file
    assert [(e["runs"], e["argv"]) for e in other.job_queue()] == [([second], ["eval"]), ([resumed], ["eval"]),
                                                                   ([last], ["eval"])]
    assert [jobs.queue_position(other, r) for r in (first, second, resumed, last)] == [None, 2, 3, 4]
    assert "stopped while waiting in the queue" in jobs.stop(other, second)
    assert other.get_run(second)["status"] == "stopped" and other.get_run(first)["pid"] == os.getpid()
    assert [jobs.queue_position(other, r) for r in (resumed, last)] == [2, 3]  # the others moved up
    assert other.get_run(resumed)["message"] == f"waiting: position 2 in the queue (after run {first})"
    assert jobs.dispatch(other) == []  # the first job still holds the machine
    store.finish_run(first, "completed")
    other.close()
    other = Store(store.path)
    assert jobs.dispatch(other) == [resumed] and fake_spawn[-1] == (resumed, ["eval"])
    store.finish_run(last, "stopped")  # ended meanwhile, by other means: its launch is skipped
    store.finish_run(resumed, "completed")
    assert jobs.dispatch(other) == [] and other.job_queue() == [] and len(fake_spawn) == 2
    other.close()


def test_the_app_starts_the_next_job_when_the_running_one_was_killed(db, tiny_model_dir, fake_spawn):
    from algodistill.ui import common
    (first,) = jobs.start_eval(db, cheap_eval(tiny_model_dir))
    (second,) = jobs.start_eval(db, cheap_eval(tiny_model_dir))
    assert common.waiting_note(second) == "queued at position 2: it starts by itself when the jobs ahead of it end"
    doomed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    db.update_run(first, pid=doomed.pid, pid_start=process_start(doomed.pid))  # the first job's own process
    common.dispatch_jobs()  # the app's status tick
    assert fake_spawn == [(first, ["eval"])]  # alive: the second waits
    doomed.kill()  # SIGKILL: it cannot start the next job itself
    doomed.wait()
    common.dispatch_jobs()
    assert fake_spawn[-1] == (second, ["eval"]) and db.get_run(first)["status"] == "interrupted"
    assert common.waiting_note(second) is None


def test_a_job_runs_at_a_lower_priority_than_the_app_so_the_page_answers_while_it_trains(store, monkeypatch):
    import os
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert jobs.lower_priority(child.pid) == min(19, mine + jobs.JOB_NICE)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, mine + jobs.JOB_NICE)
    finally:
        child.kill()
        child.wait()
    monkeypatch.setenv("ALGODISTILL_JOB_NICE", "0")  # the owner's choice: as the app's
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert jobs.lower_priority(other.pid) is None and os.getpriority(os.PRIO_PROCESS, other.pid) == mine
    finally:
        other.kill()
        other.wait()
    lowered = []
    monkeypatch.setattr(jobs, "lower_priority", lowered.append)
    run = store.create_run("eval", {})
    proc = jobs._spawn(store, run, ["--help"])  # every job's process goes through it
    proc.wait()
    assert lowered == [proc.pid]


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


def slow_job(store, monkeypatch, model, traces, out, slow: str, **kw):
    """A training job whose steps from some step on take minutes, like a real model's on a CPU."""
    monkeypatch.setenv("PYTHONPATH", SLOW_STEP)
    monkeypatch.setenv("ALGODISTILL_TEST_SLOW_STEP", slow)
    settings = SFTSettings(model=model, traces=str(traces), batch_size=4, device="cpu", output_dir=str(out),
                           experiment="slow", **kw)
    return jobs.start_train(store, settings)


def adapter_weights(path):
    from safetensors.torch import load_file
    return load_file(str(path / "adapter_model.safetensors"))


@pytest.mark.parametrize("mode", ["", ":blocked"], ids=["python-step", "step-stuck-in-C"])
def test_stop_ends_a_slow_step_within_seconds_and_keeps_the_last_completed_step(
        store, tiny_model_dir, small_traces, tmp_path, monkeypatch, mode):
    out = tmp_path / "adapter"
    run = slow_job(store, monkeypatch, tiny_model_dir, small_traces, out, f"3:600{mode}", max_steps=50,
                   checkpoint_steps=1)
    wait_for(lambda: (store.last_step(run) or 0) >= 2 and latest_checkpoint(out))
    time.sleep(1.0)  # inside step 3, which would take 10 minutes
    began = time.time()
    jobs.stop(store, run, grace_s=60)
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r, timeout=60)
    latency = time.time() - began
    print(f"stop latency ({mode or 'python'}): {latency:.1f} s")
    assert latency < 10, latency  # stuck in C: the watcher thread saves it after 5 s
    assert row["status"] == "stopped" and "as of step 2 (the last completed step) was saved" in row["error"], row
    assert json.loads((out / "algodistill.json").read_text())["summary"]["steps"] == 2
    kept, step2 = adapter_weights(out), adapter_weights(out / "checkpoint-2")  # the trainer's own save of step 2
    assert kept.keys() == step2.keys() and all((kept[k] == step2[k]).all() for k in kept)
    assert "train --resume" in row["error"] and store.last_step(run) == 2


def test_train_resume_after_kill_9_continues_from_the_checkpoint_to_the_end(
        store, tiny_model_dir, small_traces, tmp_path, monkeypatch):
    from algodistill import cli
    out = tmp_path / "adapter"
    run = slow_job(store, monkeypatch, tiny_model_dir, small_traces, out, "4:600", max_steps=6, checkpoint_steps=2)
    wait_for(lambda: (store.last_step(run) or 0) >= 3)  # steps 1-3 logged, checkpoint at 2, step 4 crawling
    os.killpg(store.get_run(run)["pid"], signal.SIGKILL)
    wait_for(lambda: store.get_run(run)["status"] == "interrupted", timeout=30)
    before = {(m["step"], m["name"]): m["time"] for m in store.metrics(run)}
    assert latest_checkpoint(out)[0] == 2 and not (out / "adapter_model.safetensors").exists()
    monkeypatch.delenv("ALGODISTILL_TEST_SLOW_STEP")
    assert cli.main(["train", "--resume", str(run), "--db", store.path, "--json"]) == 0
    row = store.get_run(run)
    assert row["status"] == "completed" and row["summary"]["resumed_from_step"] == 2 and row["summary"]["steps"] == 6
    assert [m["step"] for m in store.metrics(run, ["loss"])] == [1, 2, 3, 4, 5, 6]  # no step twice
    after = {(m["step"], m["name"]): m["time"] for m in store.metrics(run)}
    assert all(after[k] == t for k, t in before.items())  # what the killed process logged is kept as it was
    assert (out / "adapter_model.safetensors").is_file() and latest_checkpoint(out) is None  # final: no optimizer


def test_a_run_that_ignores_stop_is_killed_and_says_what_was_kept(store, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "adapter"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    run = store.create_run("train", {"output_dir": str(out), "experiment": "deaf"})
    deaf = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"],
                            stdout=subprocess.PIPE, start_new_session=True)
    assert deaf.stdout.readline().strip() == b"ready"
    store.mark_started(run, pid=deaf.pid)
    threading.Thread(target=deaf.wait, daemon=True).start()  # reaped, as jobs reaps its own
    jobs.stop(store, run, grace_s=0.5, kill_after_s=1.0, wait=True)
    assert deaf.wait(timeout=10) == -signal.SIGKILL
    row = store.get_run(run)
    assert row["status"] == "interrupted" and row["error"].startswith("killed")
    assert "the checkpoint at step 4" in row["error"] and f"train --resume {run}" in row["error"]


def test_resume_finishes_a_stopped_evaluation_as_a_job_keeping_what_was_judged(store, tiny_model_dir):
    from algodistill.evaluate import create_eval_runs, score_and_store
    settings = EvalSettings(model=tiny_model_dir, problems=["fizzbuzz"], difficulties=[1, 2, 3], max_new_tokens=8,
                            device="cpu")
    (run,) = create_eval_runs(store, settings)
    first = settings.instances()[0]
    score_and_store(store, run, [(first, "```python\n" + first.reference + "\n```")], settings.limits())
    store.finish_run(run, "stopped", error="stopped on request")
    ids = jobs.resume_eval(store, run)
    assert ids == [run]
    row = wait_for(lambda: (r := store.get_run(run))["status"] not in ("queued", "running") and r)
    assert row["status"] == "completed", jobs.log_tail(store, run)
    samples = store.samples(run)
    assert len(samples) == 3 and samples[0]["status"] == "passed"  # the judged one kept, not regenerated
    with pytest.raises(ValueError, match="complete"):
        jobs.resume_eval(store, run)


def test_the_log_shown_is_clean_and_the_full_log_downloads(store, monkeypatch):
    from algodistill.ui import common, train_tab
    run = store.create_run("train", {}, status="completed")
    log = jobs.log_path(store, run)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("run 1: training m\nsteps:  10%|# | 1/10\rsteps:  20%|## | 2/10\r\n"
                   "Truncating train dataset: 100%|██████████| 84/84 [00:00<00:00, 4317.72 examples/s]\n"
                   "/site-packages/x.py:3: FutureWarning: `a` is deprecated\n  warnings.warn(msg, FutureWarning)\n"
                   "{'loss': '1.0', 'grad_norm': '2.5', 'learning_rate': '2e-05', 'epoch': '0.05'}\n"
                   "step 2/10: loss 0.9\n" + "é" * 3000 + "\nsaving adapter\n"
                   "Generating: 30%|███       | 3/10 [00:01<00:02]\rGenerating: 40%|████      | 4/10 [00:02<00:02]")
    tail = jobs.log_tail(store, run, 5001)  # starts inside a two-byte character
    assert not tail.startswith("\ufffd")
    shown = jobs.clean_log(jobs.log_tail(store, run, 10**6), partial_start=False).splitlines()
    # the run's own lines; finished bars (steps, the datasets library's) gone; the moving one last, once
    assert shown[:3] == ["run 1: training m", "loss 1.0 · lr 2e-05 · grad norm 2.5 · epoch 0.05", "step 2/10: loss 0.9"]
    assert shown[-2:] == ["saving adapter", "Generating: 40%|████      | 4/10 [00:02<00:02]"]
    assert not any("Warning" in line or "\r" in line or "Truncating" in line or "1/10" in line for line in shown)
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    copy = train_tab.full_log_copy(f"#{run}")
    assert copy and open(copy).read() == log.read_text() and not copy.startswith(str(log.parent))
