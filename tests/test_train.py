"""LoRA SFT on CPU with a tiny random model: metrics reach the store, stop requests, adapters load back."""

import json
import re
import time

import pytest

from algodistill.train_sft import SFTSettings, add_eval_to_card, run_training


def settings(model, traces, tmp_path, **kw):
    values = dict(model=model, traces=str(traces), experiment="t", max_steps=3, batch_size=2,
                  effective_batch=4, max_length=1024, device="cpu", output_dir=str(tmp_path / "adapter"))
    values.update(kw)
    return SFTSettings(**values)


def test_a_few_steps_write_metrics_and_save_an_adapter_that_loads(store, tiny_model_dir, small_traces, tmp_path,
                                                                   capsys):
    s = settings(tiny_model_dir, small_traces, tmp_path)
    run = store.create_run("train", vars(s))
    summary = run_training(store, run, s, log=lambda m: None)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in printed] == ["step 1/3", "step 2/3", "step 3/3"]  # the log's own lines
    assert all(" · lr " in line and "loss " in line for line in printed) and "{'loss'" not in capsys.readouterr().out
    row = store.get_run(run)
    assert row["status"] == "completed" and row["progress"] == 1.0
    assert summary["steps"] == 3 and summary["traces"]["kept"] == 8
    losses = store.metrics(run, ["loss"])
    assert [m["step"] for m in losses] == [1, 2, 3] and all(m["value"] > 0 for m in losses)
    names = {m["name"] for m in store.metrics(run)}
    assert {"loss", "learning_rate", "grad_norm", "tokens_per_s"} <= names
    assert all(m["epoch"] is not None for m in losses)

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    adapter = tmp_path / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(p) > 0 for p in lora_b)  # B starts at zero: it trained
    card = (adapter / "README.md").read_text()
    assert f"base_model: {tiny_model_dir}" in card and "Kept (verified): 8" in card


def test_stop_request_ends_the_run_early_and_still_saves(store, tiny_model_dir, small_traces, tmp_path):
    s = settings(tiny_model_dir, small_traces, tmp_path, max_steps=20)
    run = store.create_run("train", vars(s))
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 2
    summary = run_training(store, run, s, should_stop=should_stop, log=lambda m: None)
    row = store.get_run(run)
    assert row["status"] == "stopped" and "saved" in row["error"]
    assert summary["steps"] == 2 and summary["stopped_early"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_stop_request_through_the_store(store, tiny_model_dir, small_traces, tmp_path):
    s = settings(tiny_model_dir, small_traces, tmp_path, max_steps=20)
    run = store.create_run("train", vars(s))
    original = store.log_metrics

    def log_and_request(run_id, step, values, epoch=None):
        original(run_id, step, values, epoch)
        if step == 1:
            store.request_stop(run_id)
    store.log_metrics = log_and_request
    run_training(store, run, s, log=lambda m: None)
    assert store.get_run(run)["status"] == "stopped"
    assert store.last_step(run) <= 2


def test_rejected_traces_are_counted_and_not_trained_on(store, tiny_model_dir, small_traces, tmp_path):
    lines = small_traces.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["response"] = "```python\ndef eval_rpn(tokens):\n    return 0\n```"
    bad["index"] = 7
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines[1:4] + [json.dumps(bad), "{not json"]) + "\n")
    s = settings(tiny_model_dir, path, tmp_path, max_steps=1)
    run = store.create_run("train", vars(s))
    summary = run_training(store, run, s, log=lambda m: None)
    assert summary["traces"]["kept"] == 3 and summary["traces"]["rejected"] == 2
    reasons = " ".join(r["reason"] for r in summary["traces"]["rejected_detail"])
    assert "wrong_answer" in reasons and "JSON" in reasons


def test_prompts_longer_than_max_length_fail_clearly(store, tiny_model_dir, small_traces, tmp_path):
    s = settings(tiny_model_dir, small_traces, tmp_path, max_length=64)  # byte-level: every prompt is longer
    run = store.create_run("train", vars(s))
    with pytest.raises(ValueError, match="raise the max length"):
        run_training(store, run, s, log=lambda m: None)
    assert store.get_run(run)["summary"]["length"]["dropped_too_long"] == 8


def test_no_verified_trace_fails_with_a_clear_error(store, tiny_model_dir, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"problem": "rpn", "difficulty": 1, "seed": 42, "index": 0,
                                "response": "no code here"}) + "\n")
    s = settings(tiny_model_dir, path, tmp_path)
    run = store.create_run("train", vars(s))
    with pytest.raises(ValueError, match="passed verification"):
        run_training(store, run, s, log=lambda m: None)
    row = store.get_run(run)
    assert row["status"] == "failed" and "nothing to train on" in row["error"]


@pytest.mark.parametrize("kw, message", [
    (dict(effective_batch=4, batch_size=3), "not a multiple"),
    (dict(batch_size=8, effective_batch=4), "between 1 and the effective"),
    (dict(learning_rate=5.0), "learning rate"),
    (dict(experiment="a b/c"), "experiment name"),
    (dict(traces="/nope.jsonl"), "trace file not found"),
    (dict(lora_r=0), "LoRA rank"),
])
def test_impossible_settings_are_refused(kw, message, tmp_path):
    s = settings("m", "assets/traces/reference.jsonl", tmp_path)
    with pytest.raises(ValueError, match=message):
        SFTSettings.from_dict(vars(s) | kw).check()


def test_reference_defaults():
    s = SFTSettings()
    assert (s.model, s.lora_r, s.lora_alpha, s.target_modules, s.epochs, s.learning_rate) == \
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", 16, 32, "all-linear", 3.0, 2e-4)
    assert (s.effective_batch, s.max_length, s.warmup_ratio, s.seed) == (4, 1024, 0.1, 42)
    assert SFTSettings(batch_size=1).grad_accum == 4


def test_the_defaults_pick_the_fast_path_for_the_device(monkeypatch):
    import torch
    from algodistill import models, train_options
    monkeypatch.setattr(train_options, "available_memory_gb", lambda: 64.0)  # plenty
    auto = SFTSettings()
    assert (auto.batch_size, auto.gradient_checkpointing, auto.dtype) == (0, None, "auto")  # decided per device
    cpu, gpu = auto.for_device("cpu"), auto.for_device("cuda")
    assert (cpu.batch_size, cpu.grad_accum, cpu.gradient_checkpointing) == (1, 4, False)  # no padding, no recompute
    assert (gpu.batch_size, gpu.grad_accum, gpu.gradient_checkpointing) == (4, 1, True)
    assert SFTSettings(batch_size=2, gradient_checkpointing=True).for_device("cpu").batch_size == 2  # asked: kept
    monkeypatch.setattr(train_options, "available_memory_gb", lambda: 6.0)  # a small laptop: memory comes first
    assert auto.for_device("cpu").gradient_checkpointing is True
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)  # AVX2 only: bf16 would be emulated, slower
    assert models.training_dtype("cpu") == torch.float32
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)  # AMX or AVX512-BF16
    assert models.training_dtype("cpu") == torch.bfloat16 and models.training_dtype("cpu", "float32") == torch.float32


def test_a_cpu_run_without_native_bf16_trains_in_fp32_one_trace_a_pass_without_checkpointing(
        store, tiny_model_dir, small_traces, tmp_path, monkeypatch):
    from algodistill import models, train_options
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(train_options, "available_memory_gb", lambda: 64.0)
    s = settings(tiny_model_dir, small_traces, tmp_path, batch_size=0, max_steps=1)
    run = store.create_run("train", vars(s))
    summary = run_training(store, run, s, log=lambda m: None)
    assert summary["chosen"] == {"device": "cpu", "dtype": "float32", "per_device_batch": 1, "grad_accum": 4,
                                 "gradient_checkpointing": False}
    assert store.get_run(run)["settings"]["batch_size"] == 0  # the stored settings keep "auto"


def test_evaluation_results_go_into_the_model_card(store, tiny_model_dir, small_traces, tmp_path):
    s = settings(tiny_model_dir, small_traces, tmp_path, max_steps=1)
    run = store.create_run("train", vars(s))
    run_training(store, run, s, log=lambda m: None)
    summary = {"solved": 3, "n": 4, "accuracy": 0.75, "accuracy_ci": [0.3, 0.95], "partial_credit": 0.8,
               "per_problem": {"rpn": {"solved": 1, "n": 2, "partial_credit": 0.6}}}
    assert add_eval_to_card(tmp_path / "adapter", summary, 99, grid="1 problem type(s)")
    assert add_eval_to_card(tmp_path / "adapter", dict(summary, solved=4), 100, base=(101, dict(summary, solved=1)))
    assert add_eval_to_card(tmp_path / "adapter", dict(summary, solved=2), 99)  # re-evaluated: its entry replaced
    card = (tmp_path / "adapter" / "README.md").read_text()
    section = card[card.index("## Evaluation"):card.index("## Load it")]
    assert "Not evaluated yet" not in section
    assert section.index("### Evaluation run 99") < section.index("### Evaluation run 100")  # newest first
    assert section.count("### Evaluation run 99") == 1 and "**2/4 solved" in section and "**3/4" not in section
    assert "**4/4 solved" in section and "base model on the same problems (run 101): 1/4" in section
    assert "+3" in section


def test_an_adapter_trained_on_an_offline_gguf_names_the_hub_model_it_came_from(tmp_path):
    from algodistill.train_sft import write_model_card
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/root/.cache/x", "r": 16}))
    write_model_card(tmp_path, SFTSettings(model="qwen2.5-coder-0.5b"), {"traces": {"kept": 3}}, 7)
    card = (tmp_path / "README.md").read_text()
    assert "base_model: Qwen/Qwen2.5-Coder-0.5B-Instruct" in card and "dequantized" in card
    assert 'from_pretrained("Qwen/Qwen2.5-Coder-0.5B-Instruct")' in card
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config == {"base_model_name_or_path": "Qwen/Qwen2.5-Coder-0.5B-Instruct", "r": 16}
    write_model_card(tmp_path, SFTSettings(model="/models/mine"), {}, 8)  # a local model keeps its path
    assert "base_model: /models/mine" in (tmp_path / "README.md").read_text()


def boom(*args, **kwargs):
    raise AssertionError("reached a model load or trace verification")


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "nan"], "epochs must be a finite number, got nan"),
    (["--epochs", "inf"], "epochs must be a finite number, got inf"),
    (["--lr=-inf"], "learning rate must be a finite number"),
    (["--warmup-ratio", "nan"], "warmup ratio must be a finite number"),
    (["--checkpoint-minutes", "inf"], "checkpoint every M minutes (0: off) must be a finite number"),
    (["--lora-r", "0"], "LoRA rank (r) must be >= 1"),
    (["--model", "/nowhere/model.gguf"], "GGUF file not found: /nowhere/model.gguf"),
    (["--traces", "/nowhere/traces.jsonl"], "trace file not found"),
])
def test_impossible_train_flags_fail_before_any_run_row_or_model_load(argv, message, store, monkeypatch, capsys):
    from algodistill import cli, train_sft
    monkeypatch.setattr(train_sft, "materialize", boom)
    monkeypatch.setattr(train_sft, "verify_file", boom)
    code = cli.main(["train", *argv, "--db", store.path])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert store.runs() == []


def test_every_numeric_setting_refuses_nan_and_infinity():
    from dataclasses import MISSING, fields
    from algodistill.evaluate import EvalSettings
    from algodistill.settings import label
    for cls in (SFTSettings, EvalSettings):
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()
            if isinstance(default, bool) or not isinstance(default, (int, float, list)):
                continue
            if isinstance(default, list) and not all(isinstance(v, int) for v in default):
                continue  # problem names
            for bad in (float("nan"), float("inf"), float("-inf")):
                value = [bad] if isinstance(default, list) else bad
                with pytest.raises(ValueError, match=re.escape(f"{label(f)} must be a finite number")):
                    cls(**{f.name: value}).check()


def test_the_job_launcher_and_the_train_form_refuse_nan_and_inf_before_a_run_exists(store, tiny_model_dir,
                                                                                   small_traces, tmp_path):
    from algodistill import jobs
    from algodistill.ui import common, train_tab
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="epochs must be a finite number"):
            jobs.start_train(store, settings(tiny_model_dir, small_traces, tmp_path, epochs=bad))
        from dataclasses import asdict
        values = asdict(train_tab.SFTSettings()) | {"traces": None, "model": tiny_model_dir, "epochs": bad}
        message, run = train_tab.start(values)
        assert run is None and message.startswith("⚠️ Not started") and "epochs must be a finite number" in message
    assert store.runs() == [] and common.store().runs() == []


def test_a_stop_before_the_first_step_ends_the_run_at_once_with_nothing_kept(store, tiny_model_dir, small_traces,
                                                                              tmp_path):
    s = settings(tiny_model_dir, small_traces, tmp_path)
    run = store.create_run("train", vars(s))
    store.request_stop(run)  # e.g. while the model loads, which can take a minute for a GGUF
    summary = run_training(store, run, s, log=lambda m: None)
    row = store.get_run(run)
    assert row["status"] == "stopped" and "no training step had completed" in row["error"]
    assert "steps" not in summary and not (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_resume_refuses_what_it_cannot_continue_in_plain_words(store, tiny_model_dir, small_traces, tmp_path, capsys,
                                                               monkeypatch):
    from algodistill import cli
    from algodistill.ui import common, train_tab
    s = settings(tiny_model_dir, small_traces, tmp_path)
    run = store.create_run("train", vars(s))
    store.finish_run(run, "stopped", error="stopped before it started")
    assert cli.main(["train", "--resume", str(run), "--db", store.path]) == 2
    assert f"run {run} has no checkpoint in {tmp_path / 'adapter'}" in capsys.readouterr().err
    (tmp_path / "adapter" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "adapter" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    store.finish_run(run, "completed")
    assert cli.main(["train", "--resume", str(run), "--db", store.path]) == 2
    assert "only an interrupted, stopped or failed training resumes" in capsys.readouterr().err
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    message, resumed = train_tab.resume(run)
    assert resumed is None and "only an interrupted, stopped or failed" in message


def test_scoring_only_the_answer_tokens_gives_the_same_loss_and_gradient(tiny_model_dir, monkeypatch):
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM
    from algodistill.train_sft import score_answer_tokens_only
    # TRL's own choice (an earlier training in this process may have switched it), restored after the test
    monkeypatch.setattr(trl_utils, "_use_triton", getattr(trl_utils._use_triton, "original", trl_utils._use_triton))

    def loss_and_grad():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        ids = torch.randint(0, model.config.vocab_size, (2, 24))
        labels = ids.clone()
        labels[:, :15] = -100  # the prompt
        labels[1, 20:] = -100  # padding after the second row's answer
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.loss.item(), model.get_output_embeddings().weight.grad.clone()

    assert not trl_utils._use_triton(torch.device("cpu"))  # TRL scores every position on a CPU
    full_loss, full_grad = loss_and_grad()
    score_answer_tokens_only()
    assert trl_utils._use_triton(torch.device("cpu"))  # compaction is on for the CPU now
    loss, grad = loss_and_grad()
    assert loss == pytest.approx(full_loss, rel=1e-5) and torch.allclose(grad, full_grad, atol=1e-6)


def test_stop_mid_step_then_resume_draws_the_curve_and_adapter_of_an_uninterrupted_run(
        store, tiny_model_dir, small_traces, tmp_path, monkeypatch):
    """A person who presses Stop expects Resume to go on from there: the stop writes a resumable checkpoint of the
    last completed step (adapter, optimizer, scheduler, RNG, trainer state), and the resumed run ends where an
    uninterrupted run of the same seed ends, with no gap in its curve and no step twice."""
    import torch
    from safetensors.torch import load_file

    from algodistill.train_sft import latest_checkpoint
    from algodistill.ui.common import status_markdown
    whole = settings(tiny_model_dir, small_traces, tmp_path, max_steps=4, output_dir=str(tmp_path / "whole"),
                     checkpoint_steps=0, checkpoint_minutes=0)  # no checkpoint but the stop's own
    cut = settings(tiny_model_dir, small_traces, tmp_path, max_steps=4, output_dir=str(tmp_path / "cut"),
                   checkpoint_steps=0, checkpoint_minutes=0)
    reference = store.create_run("train", vars(whole))
    run_training(store, reference, whole, log=lambda m: None)
    run = store.create_run("train", vars(cut))
    original = store.log_metrics

    def log_and_request(run_id, step, values, epoch=None):
        original(run_id, step, values, epoch)
        if run_id == run and step == 1 and "loss" in values:
            store.request_stop(run_id)  # arrives while step 2 is under way: the step is cut short
    store.log_metrics = log_and_request
    from algodistill import train_sft
    made = train_sft._trainer_class

    def slow_second_step(hold):
        class Slow(made(hold)):
            def training_step(self, *args, **kwargs):
                if self.state.global_step == 1:
                    time.sleep(30)  # step 2 takes long: the stop must cut it, not wait for its end
                return super().training_step(*args, **kwargs)
        return Slow
    monkeypatch.setattr(train_sft, "_trainer_class", slow_second_step)
    began = time.time()
    run_training(store, run, cut, log=lambda m: None)
    assert time.time() - began < 25  # cut short within seconds
    monkeypatch.setattr(train_sft, "_trainer_class", made)
    store.log_metrics = original
    row = store.get_run(run)
    assert row["status"] == "stopped" and latest_checkpoint(tmp_path / "cut")[0] == 1, row
    shown = status_markdown(row)
    assert shown.count("the last completed step") == 1 and "⚠️" not in shown  # said once, and no warning
    store.update_run(run, status="queued", stop_requested=None, finished=None)  # as Resume (jobs.resume_train) does
    run_training(store, run, cut, log=lambda m: None, resume=True)
    assert store.get_run(run)["status"] == "completed"
    curve = [(m["step"], m["value"]) for m in store.metrics(run, ["loss"])]
    expected = [(m["step"], m["value"]) for m in store.metrics(reference, ["loss"])]
    assert [s for s, _ in curve] == [1, 2, 3, 4]  # no gap, no step twice
    assert [v for _, v in curve] == pytest.approx([v for _, v in expected], rel=1e-4)
    a, b = load_file(tmp_path / "whole" / "adapter_model.safetensors"), load_file(tmp_path / "cut" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_report_to_trackio_sends_the_loss_there_and_to_runs_db(store, tiny_model_dir, small_traces, tmp_path):
    """train --report-to trackio: TRL's report_to sends each step to trackio's local SQLite (project
    "algodistill", run <id>-<experiment>), and runs.db still gets every metric."""
    import os
    import subprocess
    import sys
    pytest.importorskip("trackio")  # requirements-dev.txt installs it (requirements-trackio.txt)
    env = dict(os.environ, TRACKIO_DIR=str(tmp_path / "trackio"), ALGODISTILL_DB=store.path, HF_HUB_OFFLINE="1")
    env.pop("TRACKIO_SPACE_ID", None)  # local only (even an empty one means a Space to trackio)
    run = subprocess.run([sys.executable, "-m", "algodistill", "train", "--model", tiny_model_dir, "--traces",
                          str(small_traces), "--max-steps", "3", "--device", "cpu", "--experiment", "tracked",
                          "--report-to", "trackio", "--output-dir", str(tmp_path / "adapter"), "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    run_id = json.loads(run.stdout)["run"]
    read = subprocess.run([sys.executable, "-c", "import json, sys; from trackio.sqlite_storage import SQLiteStorage; "
                           "print(json.dumps(SQLiteStorage.get_logs('algodistill', sys.argv[1]), default=str))",
                           f"{run_id}-tracked"], capture_output=True, text=True, env=env, timeout=120)
    assert read.returncode == 0, read.stderr[-2000:]
    logs = [entry for entry in json.loads(read.stdout) if "train/loss" in entry or "loss" in entry]
    ours = [m["value"] for m in store.metrics(run_id, ["loss"])]
    assert len(logs) == 3 and len(ours) == 3
    theirs = [entry.get("train/loss", entry.get("loss")) for entry in logs]
    assert theirs == pytest.approx(ours, rel=1e-3)  # the same loss in both places


def test_a_tracker_that_is_not_installed_is_refused_in_words(tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    s = settings("m", "assets/traces/reference.jsonl", tmp_path, report_to="wandb")
    with pytest.raises(ValueError, match=r"report to wandb: the wandb package is not installed \(pip install wandb\)"):
        s.check()
    with pytest.raises(ValueError, match="report to must be one of none, trackio, wandb, tensorboard"):
        SFTSettings.from_dict(vars(s) | {"report_to": "mlflow"}).check()
