"""GRPO with the verifier as the reward, on CPU with a tiny random model: the reward's partial credit and format
bonus, a run through the CLI writing metrics and step samples, the LoRA actually training (from a new LoRA and
from an SFT adapter, frozen adapters refused), stop, and the job queue."""

import json

import pytest

from algodistill import grpo, jobs
from algodistill.cli import main
from algodistill.grpo import GRPOSettings, create_grpo_run, judge, reward, run_grpo, well_formed
from algodistill.problems import TRAIN_SEED, make_instance
from algodistill.verify import Verdict, fenced


def tiny(model, tmp_path, **kw):
    """Two prompts of one cell, 4 tries each, 12 tokens: a step takes about a second on a CPU."""
    values = dict(model=model, problems=["reverse_string"], difficulties=[1], per_cell=2, max_steps=2,
                  num_generations=4, prompts_per_step=1, batch_size=4, max_completion_length=12, device="cpu",
                  gradient_checkpointing=False, output_dir=str(tmp_path / "adapter"))
    values.update(kw)
    return GRPOSettings(**values)


@pytest.fixture
def varied_reward(monkeypatch):
    """A random model never writes code, so every verdict is 0 and every advantage too; this judge scores the
    share of printable ASCII characters instead, so rewards differ within a group and the policy has a gradient."""
    def share(instances, completions, limits=None):
        return [(Verdict("wrong_answer", sum(c.isascii() and c.isprintable() for c in text), max(len(text), 1),
                         None, []), False) for text in completions]
    monkeypatch.setattr(grpo, "judge", share)


def lora_weights(directory) -> dict:
    from safetensors.torch import load_file
    return load_file(str(directory / "adapter_model.safetensors"))


def test_the_reward_is_the_share_of_tests_passed_plus_a_format_bonus():
    instance = make_instance("reverse_string", 5, TRAIN_SEED, 0)
    first = instance.tests[0].args
    partial = (f"def _real(s):\n    return s[::-1]\n\n\ndef reverse_string(s):\n"
               f"    return _real(s) if [s] == {first!r} else None\n")
    cases = {
        "reference": (fenced(instance.reference), 1.1),
        "right for one test of five": (fenced(partial), 0.3),
        "no fence": (instance.reference, 1.0),  # the verifier still reads it; the format bonus is not paid
        "two blocks": (fenced(instance.reference) + "\n" + fenced("print(1)"), 1.0),
        "unclosed block": ("```python\n" + instance.reference, 1.0),
        "syntax error": (fenced("def reverse_string(s):\n    return s[::-1"), 0.0),
        "other function": (fenced("def reverse(s):\n    return s[::-1]"), 0.0),
        "prose": ("Reverse the string with slicing.", 0.0),
    }
    judged = judge([instance] * len(cases), [text for text, _ in cases.values()])
    got = {name: round(reward(verdict, formed), 6) for name, (verdict, formed) in zip(cases, judged)}
    assert got == {name: expected for name, (_, expected) in cases.items()}
    assert well_formed("```py\ndef reverse_string(s):\n    return s\n```", "reverse_string")
    assert not well_formed("```\ndef reverse_string(s):\n    return s\n```", "reverse_string")  # no python tag


def test_a_grpo_run_from_the_cli_stores_its_metrics_step_samples_and_adapter(tmp_path, tiny_model_dir, capsys):
    db = tmp_path / "runs.db"
    code = main(["grpo", "--model", tiny_model_dir, "--problems", "reverse_string", "--difficulties", "1",
                 "--per-cell", "2", "--max-steps", "2", "--num-generations", "4", "--prompts-per-step", "1",
                 "--max-completion-length", "12", "--device", "cpu", "--no-gradient-checkpointing",
                 "--output-dir", str(tmp_path / "adapter"), "--db", str(db), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "completed"
    from algodistill.store import Store
    store = Store(db)
    run = store.get_run(out["run"])
    assert run["kind"] == "train" and run["settings"]["method"] == "grpo" and run["settings"]["sandbox"]
    assert out["summary"]["prompts"] == {"seed": TRAIN_SEED, "instances": 2, "dropped_in_eval_grid": 0}
    names = {m["name"] for m in store.metrics(run["id"])}
    assert {"reward", "reward_std", "frac_reward_zero_std", "pass_rate", "rewards/tests_passed/mean",
            "rewards/well_formed/mean", "completions/mean_length", "completions/clipped_ratio", "loss",
            "learning_rate"} <= names
    assert [m["step"] for m in store.metrics(run["id"], ["reward"])] == [1, 2]
    samples = store.samples(run["id"])  # every completion of every step, judged like an evaluation's
    assert sorted(s["sample"] for s in samples) == [1000, 1001, 1002, 1003, 2000, 2001, 2002, 2003]
    assert all(s["problem"] == "reverse_string" and s["seed"] == TRAIN_SEED and len(s["tests"]) == 5 for s in samples)
    step_two = [s for s in samples if s["sample"] // grpo.STEP_STRIDE == 2]
    assert sorted(s["notes"][0].split(":")[0] for s in step_two) == [f"GRPO step 2, try {k}" for k in (1, 2, 3, 4)]
    assert all(s["prompt"] == make_instance(*[s[k] for k in ("problem", "difficulty", "seed", "idx")]).prompt
               for s in samples)
    card = (tmp_path / "adapter" / "README.md").read_text()
    assert "tags: [lora, grpo, trl, algodistill]" in card and "by GRPO" in card and "training seed 42" in card
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 16


def test_the_lora_trains_and_the_logged_reward_moves(store, tiny_model_dir, tmp_path, varied_reward):
    settings = tiny(tiny_model_dir, tmp_path, max_steps=3, learning_rate=1e-2)
    run = create_grpo_run(store, settings)
    summary = run_grpo(store, run, settings, log=lambda m: None)
    assert store.get_run(run)["status"] == "completed" and summary["steps"] == 3
    rewards = [m["value"] for m in store.metrics(run, ["reward"])]
    assert len(rewards) == 3 and len(set(rewards)) > 1
    assert all(m["value"] > 0 for m in store.metrics(run, ["reward_std"]))
    assert any(m["value"] > 0 for m in store.metrics(run, ["grad_norm"]))
    lora_b = [t for name, t in lora_weights(tmp_path / "adapter").items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: the policy changed


@pytest.fixture
def sft_adapter(tiny_model_dir, tmp_path):
    """An adapter as SFT leaves one (r 8, trained: B not zero), made directly with PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    model.save_pretrained(str(tmp_path / "sft"))
    return tmp_path / "sft"


def test_starting_from_an_sft_adapter_trains_its_weights_against_it(store, tiny_model_dir, tmp_path, sft_adapter,
                                                                    varied_reward):
    settings = tiny(tiny_model_dir, tmp_path, adapter=str(sft_adapter), beta=0.04, learning_rate=1e-2)
    run = create_grpo_run(store, settings)
    summary = run_grpo(store, run, settings, log=lambda m: None)
    assert store.get_run(run)["status"] == "completed" and summary["start"] == {"adapter": str(sft_adapter)}
    assert summary["parameters"]["trainable"] > 0
    assert store.metrics(run, ["kl"])  # beta > 0: the KL to the starting adapter is logged
    out = tmp_path / "adapter"
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8  # the adapter's own shape
    assert not (out / "ref").exists()  # TRL's frozen reference copy is not saved
    before, after = lora_weights(sft_adapter), lora_weights(out)
    assert before.keys() == after.keys() and any(not before[k].equal(after[k]) for k in before)
    assert f"started from the SFT adapter `{sft_adapter}`" in (out / "README.md").read_text()


def test_a_frozen_adapter_is_refused_instead_of_training_nothing(store, tiny_model_dir, tmp_path, sft_adapter,
                                                                  monkeypatch):
    from peft import PeftModel
    load = PeftModel.from_pretrained.__func__
    # the pitfall: PeftModel.from_pretrained without is_trainable=True gives a frozen adapter, and a flat reward
    monkeypatch.setattr(PeftModel, "from_pretrained",
                        classmethod(lambda cls, *a, **kw: load(cls, *a, **dict(kw, is_trainable=False))))
    settings = tiny(tiny_model_dir, tmp_path, adapter=str(sft_adapter))
    run = create_grpo_run(store, settings)
    with pytest.raises(ValueError, match="no trainable weights"):
        run_grpo(store, run, settings, log=lambda m: None)
    assert store.get_run(run)["status"] == "failed"


def test_a_stop_ends_the_run_and_saves_the_last_completed_step(store, tiny_model_dir, tmp_path):
    settings = tiny(tiny_model_dir, tmp_path, max_steps=20)
    run = create_grpo_run(store, settings)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 2
    summary = run_grpo(store, run, settings, should_stop=should_stop, log=lambda m: None)
    row = store.get_run(run)
    assert row["status"] == "stopped" and "as of step 2" in row["error"]
    assert summary["steps"] == 2 and summary["stopped_early"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert "(stopped early on request)" in (tmp_path / "adapter" / "README.md").read_text()


def test_a_stop_request_interrupts_the_step_in_progress_within_seconds(store, tiny_model_dir, tmp_path,
                                                                          monkeypatch):
    import time
    settings = tiny(tiny_model_dir, tmp_path, max_steps=20)
    run = create_grpo_run(store, settings)
    real = grpo.judge
    pressed, interrupted = [], []

    def slow_judge(instances, completions, limits=None):
        if store.last_step(run) == 1:  # step 2's answers: the Stop button is pressed while they are judged
            store.request_stop(run)
            pressed.append(time.monotonic())
            try:
                time.sleep(120)
            finally:
                interrupted.append(time.monotonic())
        return real(instances, completions)
    monkeypatch.setattr(grpo, "judge", slow_judge)
    summary = run_grpo(store, run, settings, log=lambda m: None)
    assert interrupted[0] - pressed[0] < 30  # about a second (the stop watcher polls every second)
    row = store.get_run(run)
    assert row["status"] == "stopped" and "as of step 1" in row["error"] and summary["steps"] == 1


def test_settings_are_checked_before_a_run_exists(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError) as refused:
        GRPOSettings(model=tiny_model_dir, num_generations=8, prompts_per_step=2, batch_size=3, problems=["nope"],
                     adapter=str(tmp_path), learning_rate=float("nan")).check()
    message = str(refused.value)
    assert "learning rate must be a finite number" in message and "unknown problem type(s) ['nope']" in message
    assert f"no LoRA adapter (adapter_config.json) in {tmp_path}" in message
    with pytest.raises(ValueError, match="not a multiple of the per-device batch 3"):
        GRPOSettings(model=tiny_model_dir, batch_size=3).check()


def test_a_grpo_job_waits_in_the_training_queue_and_never_resumes(store, tiny_model_dir, tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr(jobs, "_spawn", lambda s, run_id, argv: launched.append((run_id, argv)))
    run = jobs.start_grpo(store, tiny(tiny_model_dir, tmp_path))
    assert launched == [(run, ["grpo"])]  # the job process: python -m algodistill grpo --run RUN
    store.finish_run(run, "stopped", error="stopped")
    with pytest.raises(ValueError, match="GRPO run"):
        jobs.resume_train(store, run)


def test_inspect_opens_a_grpo_run_and_the_runs_table_shows_its_reward(db):
    from dataclasses import asdict

    from algodistill.evaluate import sample_row
    from algodistill.ui import inspect_tab, runs_tab
    run = db.create_run("train", asdict(GRPOSettings(model="m")), name="grpo", model="m")
    db.finish_run(run, "completed", summary={"final_reward": 0.42, "steps": 40})
    instance = make_instance("reverse_string", 1, TRAIN_SEED, 0)
    (verdict, _), = judge([instance], [fenced(instance.reference)])
    db.add_sample(run, sample_row(instance, fenced(instance.reference), verdict, sample=40 * grpo.STEP_STRIDE + 2))
    assert run in [value for _, value in inspect_tab.sample_runs()]
    assert inspect_tab.sample_rows(run)[0][4:6] == [40002, "passed"]
    row = next(r for r in runs_tab.runs_rows() if r[0] == run)
    assert row[8] == "reward 0.420" and row[9] == ""  # GRPO's own defaults: nothing changed
    assert "reward 0.420 after 40 steps" in runs_tab.detail(run)
