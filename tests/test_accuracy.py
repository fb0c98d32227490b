"""Accuracy during training: the fixed grid, judged by the verifier, logged at the first step, every N steps and
the last; the model's mode and the tokenizer's padding side are left as training had them."""

import pytest

from algodistill import accuracy
from algodistill.generation import Generation, Generator
from algodistill.problems import EVAL_SEED, PROBLEM_TYPES
from algodistill.verify import fenced
from tests.test_train import settings


def test_the_grid_is_every_type_at_two_difficulties_of_the_evaluation_seed():
    items = accuracy.instances()
    assert len(items) == 2 * len(PROBLEM_TYPES) == 22
    assert {(i.difficulty, i.seed) for i in items} == {(1, EVAL_SEED), (5, EVAL_SEED)}


def test_accuracy_is_the_share_of_answers_passing_every_test(tiny_model_dir, monkeypatch):
    """Answers given (the reference for rpn and fizzbuzz, a wrong rpn-style loop for the rest): the verifier,
    not the generator, decides the score."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    items = accuracy.instances()

    def answers(self, prompts, max_new_tokens=1024, **_):
        assert max_new_tokens == 64 and len(prompts) == len(items)
        yield [Generation(k, fenced(items[k].reference) if items[k].problem in ("rpn", "fizzbuzz") else
                          f"```python\ndef {items[k].entry_point}(*a):\n    return None\n```", 10, 0.1)
               for k in range(len(prompts))]

    monkeypatch.setattr(Generator, "generate", answers)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.train()
    tokenizer.padding_side = "right"
    values = accuracy.measure(model, tokenizer, items, 64)
    assert values["grid_accuracy"] == pytest.approx(4 / 22)
    assert 4 / 22 <= values["grid_test_score"] < 1 and values["grid_eval_seconds"] > 0
    assert model.training and tokenizer.padding_side == "right"
    assert accuracy.measure(model, tokenizer, items, 64, should_stop=lambda: True) is None  # a stop: nothing


def test_sft_logs_grid_accuracy_before_every_nth_and_after_the_last_step(store, tiny_model_dir, small_traces,
                                                                         tmp_path):
    from algodistill.train_sft import run_training
    s = settings(tiny_model_dir, small_traces, tmp_path, max_steps=3, accuracy_every=2, accuracy_max_new_tokens=16)
    run = store.create_run("train", vars(s))
    run_training(store, run, s, log=lambda m: None)
    assert store.get_run(run)["status"] == "completed"
    logged = store.metrics(run, accuracy.METRICS)
    assert sorted({m["step"] for m in logged}) == [0, 2, 3]  # before, every 2nd, after the last
    assert all(0 <= m["value"] <= 1 for m in logged if m["name"] != "grid_eval_seconds")
    assert all(m["value"] > 0 for m in logged if m["name"] == "grid_eval_seconds")
    assert [m["step"] for m in store.metrics(run, ["loss"])] == [1, 2, 3]  # training went on as usual


def test_off_by_default_and_on_from_the_cli():
    from algodistill.cli import build_parser
    from algodistill.grpo import GRPOSettings
    from algodistill.train_sft import SFTSettings
    assert SFTSettings().accuracy_every == 0 and GRPOSettings().accuracy_every == 0
    args = build_parser().parse_args(["grpo", "--accuracy-every", "5", "--accuracy-max-new-tokens", "128"])
    assert (args.accuracy_every, args.accuracy_max_new_tokens) == (5, 128)


def test_grpo_logs_grid_accuracy_too(store, tiny_model_dir, tmp_path):
    from algodistill.grpo import create_grpo_run, run_grpo
    from tests.test_grpo import tiny
    s = tiny(tiny_model_dir, tmp_path, max_steps=2, accuracy_every=1, accuracy_max_new_tokens=16)
    run = create_grpo_run(store, s)
    run_grpo(store, run, s, log=lambda m: None)
    assert store.get_run(run)["status"] == "completed"
    assert sorted({m["step"] for m in store.metrics(run, ["grid_accuracy"])}) == [0, 1, 2]


def test_keep_best_saves_the_adapter_of_the_best_measured_step_in_the_chosen_style(store, tiny_model_dir,
                                                                                   small_traces, tmp_path, monkeypatch):
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    from algodistill.train_sft import run_training
    scripted = iter([0.1, 0.5, 0.3, 0.2])  # before the first step, after steps 1, 2 and 3: step 1 is the best
    seen = []

    def measure(model, tokenizer, items, max_new_tokens, should_stop=lambda: False):
        seen.append(({k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()},
                     {i.style for i in items}))
        value = next(scripted)
        return {"grid_accuracy": value, "grid_test_score": value, "grid_eval_seconds": 0.01}

    monkeypatch.setattr(accuracy, "measure", measure)
    s = settings(tiny_model_dir, small_traces, tmp_path, max_steps=3, accuracy_every=1, accuracy_style="stub",
                 keep_best=True)
    run = store.create_run("train", vars(s))
    summary = run_training(store, run, s, log=lambda m: None)
    assert summary["kept_step"] == {"step": 1, "grid_accuracy": 0.5, "style": "stub", "last_step": 3}
    assert all(styles == {"stub"} for _, styles in seen) and len(seen) == 4  # asked in the held-out style
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    best, last = seen[1][0], seen[3][0]
    key = next(k for k in best if "lora_B" in k)
    saved_key = next(k for k in saved if k.endswith(key.split("base_model.model.")[-1]) or k == key)
    assert torch.allclose(saved[saved_key].float(), best[key].float())
    assert not torch.allclose(saved[saved_key].float(), last[key].float())  # not the last step's


def test_keep_best_needs_measurements_and_a_known_style(tiny_model_dir, small_traces, tmp_path):
    with pytest.raises(ValueError, match="needs grid accuracy measured"):
        settings(tiny_model_dir, small_traces, tmp_path, keep_best=True).check()
    with pytest.raises(ValueError, match="accuracy style must be one of"):
        settings(tiny_model_dir, small_traces, tmp_path, accuracy_every=1, accuracy_style="poetry").check()
