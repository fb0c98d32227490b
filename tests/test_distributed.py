"""Several processes, one run (distributed.py): data-parallel training and sharded evaluation through Accelerate.

The slow tests launch two CPU processes (gloo) with ``accelerate launch --multi_gpu`` (on a machine without a GPU
this starts the processes through torchrun; ``--num_processes 2`` alone would start one) on the tiny random model,
and compare the result with one process doing the same.
"""

import socket
import subprocess
import sys

import pytest

from algodistill.distributed import Follower, Processes, is_main_process, launched
from algodistill.store import Store
from algodistill.train_sft import SFTSettings

from tests.conftest import ROOT


def test_the_effective_batch_is_the_total_over_the_processes():
    s = SFTSettings(effective_batch=4, batch_size=4)
    assert s.split(1) == (4, 1)
    assert s.split(2) == (2, 1)  # two processes of 2: the same 4 rows a step, so the same steps
    assert s.split(4) == (1, 1)
    assert SFTSettings(effective_batch=8, batch_size=2).split(2) == (2, 2)
    with pytest.raises(ValueError, match="cannot be shared evenly by 3 processes"):
        s.split(3)
    with pytest.raises(ValueError, match="cannot be shared evenly"):
        s.split(8)


def test_one_process_is_the_plain_path(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert not launched() and is_main_process()
    one = Processes()
    assert one.is_main and one.from_main(lambda: 7) == 7 and one.shard([1, 2, 3]) == [1, 2, 3]
    assert one.gather({"a": 1}) == [{"a": 1}]
    with pytest.raises(ValueError, match="refused"):
        one.from_main(lambda: (_ for _ in ()).throw(ValueError("refused")))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert launched() and not is_main_process()


def test_a_follower_writes_nothing_and_keeps_its_samples():
    f = Follower(done={3: {("rpn", 1, 999, 0, 0)}})
    f.mark_started(3)
    f.update_run(3, message="x")
    f.log_metrics(3, 1, {"loss": 1.0})
    f.add_sample(3, {"problem": "fizzbuzz", "status": "passed"})
    f.finish_run(3, "completed", summary={"n": 1})
    assert f.samples(3) == [{"problem": "fizzbuzz", "status": "passed"}] and f.finished == {3: ("completed", None)}
    assert f.done_keys(3) == {("rpn", 1, 999, 0, 0)} and not f.stop_requested(3) and f.last_step(3) is None
    assert not hasattr(f, "create_run")  # only the main process creates runs


def _launch(args: list[str], timeout: int = 1800) -> subprocess.CompletedProcess:
    """``python -m algodistill ARGS`` as two CPU processes through ``accelerate launch``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), "-m", "algodistill", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _one_run(db) -> dict:
    store = Store(db)
    runs = store.runs()
    assert len(runs) == 1, [(r["id"], r["kind"]) for r in runs]
    return runs[0]


@pytest.mark.slow
def test_two_processes_train_one_run_with_the_steps_of_one_process(tmp_path, tiny_model_dir, small_traces):
    from algodistill.cli import main
    flags = ["train", "--model", str(tiny_model_dir), "--traces", str(small_traces), "--epochs", "2",
             "--batch-size", "2", "--device", "cpu", "--checkpoint-steps", "2", "--json"]
    assert main(flags + ["--db", str(tmp_path / "one.db"), "--output-dir", str(tmp_path / "one")]) == 0
    _launch(flags + ["--db", str(tmp_path / "two.db"), "--output-dir", str(tmp_path / "two")])
    curves = {}
    for name in ("one", "two"):
        run = _one_run(tmp_path / f"{name}.db")
        assert run["status"] == "completed" and run["adapter"] == str((tmp_path / name).resolve())
        store = Store(tmp_path / f"{name}.db")
        metrics = store.metrics(run["id"])
        rows = [(m["step"], m["name"]) for m in metrics]
        assert len(rows) == len(set(rows))  # one process logged: no step twice
        curves[name] = [(m["step"], m["value"]) for m in metrics if m["name"] == "loss"]
        files = {p.name for p in (tmp_path / name).iterdir()}
        assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= files
        assert not [f for f in files if f.startswith("checkpoint-")]  # the mid-run checkpoint was cleaned up
    # 8 traces, effective batch 4, 2 epochs: 4 steps either way (2 processes x 2 rows, no accumulation)
    assert [s for s, _ in curves["one"]] == [s for s, _ in curves["two"]] == [1, 2, 3, 4]
    assert all(v > 0 for _, v in curves["two"])
    two = _one_run(tmp_path / "two.db")
    assert two["summary"]["processes"] == {"count": 2, "per_device_batch": 2, "grad_accum": 1}
    assert two["summary"]["steps"] == 4 and "processes" not in _one_run(tmp_path / "one.db")["summary"]


@pytest.mark.slow
def test_two_processes_evaluate_the_same_samples_as_one(tmp_path, tiny_model_dir, small_traces):
    from algodistill.cli import main
    from algodistill.train_sft import run_training
    adapter = tmp_path / "adapter"
    trained = Store(tmp_path / "train.db")
    s = SFTSettings(model=str(tiny_model_dir), traces=str(small_traces), max_steps=1, batch_size=2, device="cpu",
                    output_dir=str(adapter))
    run_training(trained, trained.create_run("train", vars(s)), s, log=lambda m: None)
    flags = ["eval", "--model", str(tiny_model_dir), "--adapter", str(adapter), "--compare-base",
             "--problems", "rpn", "fizzbuzz", "two_sum", "--difficulties", "1", "5", "--max-new-tokens", "24",
             "--device", "cpu", "--json"]
    assert main(flags + ["--db", str(tmp_path / "one.db")]) == 0
    _launch(flags + ["--db", str(tmp_path / "two.db")])
    key = lambda x: (x["problem"], x["difficulty"], x["seed"], x["idx"], x["sample"])  # noqa: E731
    found = {}
    for name in ("one", "two"):
        store = Store(tmp_path / f"{name}.db")
        runs = store.runs()
        assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}  # the adapter run and its base twin
        found[name] = {(r["adapter"] is None): {key(x): (x["completion"], x["status"], x["passed"], x["tests"])
                                                for x in store.samples(r["id"])} for r in runs}
        for r in runs:
            assert r["summary"]["n"] == 6 and r["progress"] == 1.0
    assert found["one"] == found["two"]  # greedy: each answer the same, whichever process gave it
    assert "by 2 processes" in Store(tmp_path / "two.db").runs()[0]["message"]
