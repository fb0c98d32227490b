"""Opt-in checks with a real pretrained model (SmolLM2-135M-Instruct from the offline package):
`make test-all` or `pytest -m slow`. Skipped where the offline model is not installed."""

import pytest

from algodistill.models import offline_models

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("smollm2-135m" not in offline_models(), reason="offline SmolLM2 not installed")]


def test_gguf_converts_once_and_loads_fast_the_second_time(tmp_path, monkeypatch):
    import time

    from algodistill.models import load_tokenizer, materialize
    monkeypatch.setenv("ALGODISTILL_CACHE", str(tmp_path))
    began = time.time()
    first = materialize("smollm2-135m", log=lambda m: None)
    converted = time.time() - began
    began = time.time()
    second = materialize("smollm2-135m", log=lambda m: None)
    assert first.path == second.path and first.kind == "dir" and time.time() - began < converted / 5
    assert load_tokenizer(second).chat_template


def test_smollm2_trains_and_evaluates(store, tmp_path, small_traces):
    from algodistill.evaluate import EvalSettings
    from algodistill.model_eval import evaluate_model
    from algodistill.train_sft import SFTSettings, run_training
    train = SFTSettings(model="smollm2-135m", traces=str(small_traces), max_steps=2, device="cpu",
                        output_dir=str(tmp_path / "adapter"))
    summary = run_training(store, store.create_run("train", vars(train)), train, log=lambda m: None)
    assert summary["steps"] == 2 and 0 < summary["final_loss"] < 5  # a pretrained model, not random
    settings = EvalSettings(model="smollm2-135m", adapter=str(tmp_path / "adapter"), problems=["fizzbuzz"],
                            difficulties=[1], max_new_tokens=200, device="cpu")
    run = store.create_run("eval", vars(settings))
    base = store.create_run("eval", vars(settings) | {"adapter": None}, parent=run)
    results = evaluate_model(store, run, settings, base_run=base, log=lambda m: None)
    for rid in (run, base):
        (sample,) = store.samples(rid)
        assert sample["tokens"] > 10 and "fizzbuzz" in sample["completion"].lower()
        assert results[rid]["n"] == 1
