"""runs.db: WAL mode, a writer process with a concurrent reader, interrupted runs, samples and resume keys."""

import subprocess
import sys
import time

import pytest

from algodistill.store import Store

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from algodistill.store import Store
s = Store({path!r})
run = s.create_run("train", {{"lr": 2e-4}}, name="concurrent")
s.mark_started(run)
print(run, flush=True)
for step in range(1, 201):
    s.log_metrics(run, step, {{"loss": 1.0 / step, "learning_rate": 2e-4}}, epoch=step / 100)
    time.sleep(0.002)
s.finish_run(run, "completed", summary={{"steps": 200}})
"""


def test_wal_mode(store):
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_writer_process_and_concurrent_reader(tmp_path):
    from tests.conftest import ROOT
    path = str(tmp_path / "runs.db")
    reader = Store(path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), path=path)],
                            stdout=subprocess.PIPE, text=True)
    run = int(proc.stdout.readline())
    seen, statuses = [], set()
    while proc.poll() is None:
        last = reader.last_step(run)
        if last is not None:
            seen.append(last)
        statuses.add(reader.get_run(run)["status"])
        time.sleep(0.01)
    assert proc.wait() == 0
    assert seen == sorted(seen) and len(set(seen)) > 3  # the reader saw progress while it happened
    assert statuses <= {"running", "completed"}
    rows = reader.metrics(run, names=["loss"])
    assert [r["step"] for r in rows] == list(range(1, 201))
    assert reader.get_run(run)["status"] == "completed"
    assert reader.get_run(run)["summary"] == {"steps": 200}


def test_run_whose_process_died_is_interrupted(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = store.create_run("train", {"epochs": 3})
    store.mark_started(run, pid=proc.pid)
    assert store.get_run(run)["status"] == "interrupted"
    assert "ended" in store.get_run(run)["error"]
    assert [r["status"] for r in store.runs(kind="train")] == ["interrupted"]


def test_live_run_stays_running(store):
    run = store.create_run("eval", {})
    store.mark_started(run)  # this very process
    assert store.get_run(run)["status"] == "running"


def test_the_time_a_run_took_counts_its_work_not_the_wait_between_stop_and_resume(store, monkeypatch):
    from algodistill import store as store_module
    from algodistill.store import worked_s
    clock = [1000.0]
    monkeypatch.setattr(store_module.time, "time", lambda: clock[0])
    run = store.create_run("eval", {})
    assert worked_s(store.get_run(run)) is None  # never started
    store.mark_started(run)
    clock[0] += 60
    assert worked_s(store.get_run(run)) == 60  # running: the open leg counts
    store.finish_run(run, "stopped")
    clock[0] += 3600  # an hour before Resume
    assert worked_s(store.get_run(run)) == 60
    store.update_run(run, status="queued", finished=None)  # Resume queues it again: waiting is not working
    clock[0] += 30
    assert worked_s(store.get_run(run)) == 60
    store.mark_started(run)
    clock[0] += 15
    assert worked_s(store.get_run(run)) == 75
    store.finish_run(run, "completed")
    clock[0] += 500
    assert worked_s(store.get_run(run)) == 75
    assert worked_s({"started": 10.0, "finished": 25.0, "status": "completed"}) == 15  # a row from before legs


def test_recycled_pid_is_not_alive(store):
    run = store.create_run("train", {})
    store.mark_started(run)
    store.update_run(run, pid_start="1")  # same pid, different process start time
    assert store.get_run(run)["status"] == "interrupted"


def test_samples_roundtrip_and_done_keys(store):
    run = store.create_run("eval", {"seed": 999})
    sample = {"problem": "rpn", "difficulty": 3, "seed": 999, "idx": 0, "prompt": "p", "completion": "c",
              "code": "x", "status": "wrong_answer", "passed": 2, "total": 5, "score": 0.4,
              "tests": [{"status": "pass"}], "notes": ["n"], "error": None}
    store.add_sample(run, sample)
    store.add_sample(run, dict(sample, status="passed", passed=5))  # same key: replaced, not duplicated
    rows = store.samples(run)
    assert len(rows) == 1 and rows[0]["status"] == "passed" and rows[0]["tests"] == [{"status": "pass"}]
    assert store.done_keys(run) == {("rpn", 3, 999, 0, 0)}  # no sample number given: sample 0
    assert store.samples(run, status="timeout") == []


def test_several_samples_of_one_instance_are_kept_apart_in_order(store):
    run = store.create_run("eval", {})
    base = {"problem": "rpn", "difficulty": 3, "seed": 999, "idx": 0, "passed": 0, "total": 5, "tests": [],
            "notes": []}
    for sample, status in ((2, "timeout"), (0, "passed"), (1, "wrong_answer")):
        store.add_sample(run, dict(base, sample=sample, status=status))
    assert [(s["sample"], s["status"]) for s in store.samples(run)] == \
        [(0, "passed"), (1, "wrong_answer"), (2, "timeout")]
    assert store.done_keys(run) == {("rpn", 3, 999, 0, n) for n in range(3)}


def test_unknown_run_and_bad_status(store):
    with pytest.raises(KeyError, match="no run with id 42"):
        store.get_run(42)
    run = store.create_run("eval", {})
    with pytest.raises(ValueError):
        store.finish_run(run, "running")


def test_one_store_shared_by_threads(store):
    # the evaluation writes samples from its verifier thread while the main thread updates progress, and
    # the app's workers share one store: concurrent calls must not trip over each other
    from concurrent.futures import ThreadPoolExecutor
    run = store.create_run("eval", {})

    def work(n):
        for i in range(40):
            store.add_sample(run, {"problem": f"p{n}", "difficulty": 1, "seed": 0, "idx": i, "status": "passed",
                                   "passed": 5, "total": 5, "tests": [], "notes": []})
            store.update_run(run, progress=i / 40, message=f"{n}:{i}")
            store.samples(run, problem=f"p{n}")
            store.log_metrics(run, i, {"loss": 1.0})
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert len(store.samples(run)) == 160 and len(store.done_keys(run)) == 160


def test_a_file_from_before_the_later_columns_is_migrated_and_keeps_its_rows(tmp_path):
    import sqlite3
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        create table runs (id integer primary key, kind text not null, name text, status text not null,
            model text, adapter text, settings text, summary text, error text, pid integer, pid_start text,
            host text, created float, started float, finished float, parent integer);
        create table samples (run integer, problem text, difficulty integer, seed integer, idx integer,
            prompt text, completion text, code text, status text, passed integer, total integer, score float,
            tests text, notes text, error text, gen_time float, tokens integer, created float,
            primary key (run, problem, difficulty, seed, idx));
        insert into runs (id, kind, status, settings, created) values (1, 'eval', 'completed', '{}', 1.0);
        insert into samples values (1, 'rpn', 1, 999, 0, 'p', 'c', 'x', 'passed', 5, 5, 1.0, '[]', '[]', null,
            0.5, 30, 1.0);
    """)
    old.commit()
    old.close()
    store = Store(path)
    assert store.samples(1)[0]["status"] == "passed" and store.samples(1)[0]["cut_off"] is None
    assert store.get_run(1)["progress"] is None
    store.add_sample(1, {"problem": "rpn", "difficulty": 3, "seed": 999, "idx": 0, "status": "wrong_answer",
                         "passed": 0, "total": 5, "tests": [], "notes": [], "cut_off": 1})
    assert [s["cut_off"] for s in store.samples(1)] == [None, 1]


def test_a_file_from_before_several_samples_per_instance_is_rekeyed_and_keeps_its_rows(tmp_path):
    import sqlite3
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        create table runs (id integer primary key, kind text not null, status text not null, settings text,
            created float);
        create table samples (run integer references runs(id), problem text, difficulty integer, seed integer,
            idx integer, prompt text, completion text, code text, status text, passed integer, total integer,
            score float, tests text, notes text, error text, gen_time float, tokens integer, created float,
            cut_off integer, primary key (run, problem, difficulty, seed, idx));
        insert into runs (id, kind, status, settings, created) values (1, 'eval', 'completed', '{}', 1.0);
        insert into samples values (1, 'rpn', 1, 999, 0, 'p', 'c', 'x', 'passed', 5, 5, 1.0, '[]', '[]', null,
            0.5, 30, 1.0, null);
        insert into samples values (1, 'rpn', 3, 999, 0, 'p', 'c', 'x', 'timeout', 0, 5, 0.0, '[]', '[]', null,
            0.5, 30, 1.0, 1);
    """)
    old.commit()
    old.close()
    store = Store(path)
    assert [(s["difficulty"], s["sample"], s["status"], s["cut_off"]) for s in store.samples(1)] == \
        [(1, 0, "passed", None), (3, 0, "timeout", 1)]
    assert store.db["samples"].pks == ["run", "problem", "difficulty", "seed", "idx", "sample"]
    store.add_sample(1, {"problem": "rpn", "difficulty": 1, "seed": 999, "idx": 0, "sample": 1,
                         "status": "wrong_answer", "passed": 0, "total": 5, "tests": [], "notes": []})
    assert [s["sample"] for s in store.samples(1, difficulty=1)] == [0, 1]
    store.close()
    assert len(Store(path).samples(1)) == 3  # opening it again migrates nothing twice
