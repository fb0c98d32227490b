"""Train, Loss, Eval and Inspect handlers called as plain functions against a real store."""

from pathlib import Path

import pytest

from algodistill.evaluate import run_scoring
from algodistill.problems import grid
from algodistill.sandbox import Limits
from algodistill.ui import common, eval_figures, eval_tab, failures, inspect_tab, loss_tab, train_tab
from algodistill.verify import fenced


def two_evaluations(db):
    """A: the reference solutions; B: the same instances, with rpn broken and fizzbuzz crashing."""
    instances = grid(["rpn", "fizzbuzz", "two_sum"], [1, 5])
    good = [(i, fenced(i.reference)) for i in instances]
    bad = [(i, "```python\ndef eval_rpn(tokens):\n    return 0\n```" if i.problem == "rpn" else
            "no code at all" if i.problem == "fizzbuzz" else fenced(i.reference)) for i in instances]
    a = run_scoring(db, good, name="reference", model="ref", settings={}, limits=Limits())["run"]
    b = run_scoring(db, bad, name="broken", model="bad", settings={}, limits=Limits())["run"]
    return a, b


def test_train_form_becomes_settings_in_one_place(db):
    values = dict(model=" smollm2-135m ", traces=None, experiment="exp1", epochs=2.0, learning_rate=1e-4,
                  lora_r=8.0, lora_alpha=16.0, lora_dropout=0.0, effective_batch=4.0, batch_size=2.0,
                  max_length=512.0, warmup_ratio=0.1, max_steps=-1.0, device="cpu")
    s = train_tab.settings_from_form(values)
    assert (s.model, s.lora_r, s.batch_size, s.grad_accum, s.epochs) == ("smollm2-135m", 8, 2, 2, 2.0)
    assert s.traces.endswith("reference.jsonl")
    with pytest.raises(ValueError, match="whole number"):
        train_tab.settings_from_form(dict(values, lora_r=8.5))
    # the browser sends an empty value for a number it cannot hold (1e999): refused, never the default
    with pytest.raises(ValueError, match="learning rate is empty"):
        train_tab.settings_from_form(dict(values, learning_rate=None))


def test_the_train_form_chooses_the_accuracy_style_and_keeps_the_best_step(db):
    """--accuracy-style and --keep-best are the form's too: a checkbox and a dropdown of the styles, checked by the
    server like every field (a caller of the API may send anything)."""
    import gradio as gr
    values = dict(model="smollm2-135m", traces=None, experiment="x", accuracy_every=5.0, accuracy_style="stub",
                  keep_best=True)
    s = train_tab.settings_from_form(values)
    assert (s.accuracy_every, s.accuracy_style, s.keep_best) == (5, "stub", True)
    assert train_tab.settings_from_form(dict(values, keep_best=None)).keep_best is False  # not sent: the default
    with pytest.raises(ValueError, match="prompt style must be one of contract, terse, stub, stdio"):
        train_tab.settings_from_form(dict(values, accuracy_style="shouting"))
    with pytest.raises(ValueError, match="must be true or false"):
        train_tab.settings_from_form(dict(values, keep_best="yes"))
    assert "style" not in common.form_values(type(s), {"accuracy_style": ""})  # empty: the default
    with gr.Blocks():
        train_tab.build(gr, common.remembered(gr, "train"))
        blocks = gr.context.Context.root_block.blocks.values()
        ids = {getattr(c, "elem_id", None): c for c in blocks}
    assert isinstance(ids["train-keep-best"], gr.Checkbox) and isinstance(ids["grpo-keep-best"], gr.Checkbox)
    assert isinstance(ids["train-accuracy-style"], gr.Dropdown)
    assert [c[1] for c in ids["train-accuracy-style"].choices] == ["contract", "terse", "stub", "stdio"]
    kept = train_tab.saved_values({"accuracy_style": "terse", "keep_best": True, "grpo": {"keep_best": "no"}})
    assert kept == {"accuracy_style": "terse", "keep_best": True}


def test_train_form_leaves_rounding_and_ranges_to_the_server():
    """gr.Number(precision=0) rounded 2.5 to 2 in the browser and minimum=0 answered -1 with Gradio's own
    toast: the user never saw our check. No number field may do either."""
    import gradio as gr
    with gr.Blocks():
        train_tab.build(gr, common.remembered(gr, "train"))
        numbers = [c for c in gr.context.Context.root_block.blocks.values() if isinstance(c, gr.Number)]
    assert numbers and all(n.precision is None and n.minimum is None for n in numbers)


def test_a_training_adapter_goes_next_to_its_store(db):
    from algodistill.train_sft import SFTSettings, create_train_run, run_dir
    run = create_train_run(db, SFTSettings(experiment="where"))
    assert run_dir(db.get_run(run)) == Path(db.path).resolve().parent / "outputs" / f"{run}-where"


def test_train_start_refuses_impossible_settings_in_plain_words(db):
    values = dict(model="m", traces=None, experiment="x", epochs=3, learning_rate=2e-4, lora_r=16, lora_alpha=32,
                  lora_dropout=0.05, effective_batch=4, batch_size=3, max_length=1024, warmup_ratio=0.1,
                  max_steps=-1, device="cpu")
    message, run = train_tab.start(values)
    assert run is None and message.startswith("⚠️ Not started") and "not a multiple" in message
    assert db.runs() == []  # nothing half-created


def test_uploaded_traces_are_kept_next_to_the_store(db, tmp_path):
    upload = tmp_path / "mine.jsonl"
    line = common.BUNDLED.read_text().splitlines(keepends=True)[0]
    upload.write_text(line)
    kept = common.keep_upload(str(upload))
    assert kept != str(upload) and open(kept).read() == line
    assert common.keep_upload(str(upload)) == kept  # same content, same file


def test_poll_shows_status_progress_and_errors(db):
    run = db.create_run("train", {}, name="exp")
    db.mark_started(run)
    db.update_run(run, progress=0.5, eta=125, message="step 5/10")
    text, _ = train_tab.poll(run)
    assert "running" in text and "50%" in text and "2m 05s" in text and "step 5/10" in text
    db.finish_run(run, "failed", error="out of GPU memory at per-device batch 4: lower it")
    assert "out of GPU memory" in train_tab.poll(None)[0]  # None: the newest run


def test_loss_figures_overlay_runs_and_redraw_only_on_change(db):
    runs = []
    for name in ("one", "two"):
        run = db.create_run("train", {}, name=name)
        for step in range(1, 6):
            db.log_metrics(run, step, {"loss": 2.0 / step, "learning_rate": 1e-4, "grad_norm": 1.0,
                                       "tokens_per_s": 100.0 * step, "mean_token_accuracy": 0.5}, epoch=step / 5)
        runs.append(run)
    loss, lr, grad, speed, accuracy, summary, diff, key, *extras = loss_tab.refresh(runs, 0.0, False, "")
    assert len(extras) == len(loss_tab.EXTRA_PANELS) and all(e["visible"] is False for e in extras)  # none logged
    assert [t.name for t in loss.data] == [f"#{runs[0]} one · last 0.4 at step 5", f"#{runs[1]} two · last 0.4 at step 5"]
    assert diff == ""  # same settings
    assert list(loss.data[0].y) == [2.0, 1.0, 2.0 / 3, 0.5, 0.4] and len(lr.data) == 2 and len(grad.data) == 2
    assert list(speed.data[0].y) == [100.0, 200.0, 300.0, 400.0, 500.0] and len(accuracy.data) == 2
    assert "last loss 0.4000" in summary and "300 tokens/s" in summary
    assert loss.layout.xaxis.tickformat == "d" and loss.layout.xaxis.dtick == 1  # whole steps, no 1.5
    unchanged = loss_tab.refresh(runs, 0.0, False, key)
    assert not any(x.__class__.__name__ == "Figure" for x in unchanged[:7])  # skipped, not redrawn
    assert unchanged[7] == key
    db.log_metrics(runs[0], 6, {"loss": 0.3})
    assert loss_tab.refresh(runs, 0.0, False, key)[7] != key  # a new step: redraw
    smoothed, *_ = loss_tab.figures(runs[:1], smoothing=0.9, log_scale=True)
    assert smoothed.layout.yaxis.type == "log" and len(smoothed.data) == 2  # raw (faint) + smoothed
    by_epoch, *_ = loss_tab.figures(runs[:1], x_axis="epoch")
    assert list(by_epoch.data[0].x)[:5] == [0.2, 0.4, 0.6, 0.8, 1.0] and by_epoch.layout.xaxis.title.text == "epoch"
    by_time, *_ = loss_tab.figures(runs[:1], x_axis="time")
    assert by_time.data[0].x[0] == 0 and "minutes" in by_time.layout.xaxis.title.text


def test_grid_accuracy_and_grpo_panels_appear_for_the_runs_that_logged_them(db):
    sft, grpo = db.create_run("train", {}, name="sft"), db.create_run("train", {"method": "grpo"}, name="grpo")
    for step in (0, 2, 4):
        db.log_metrics(sft, step, {"grid_accuracy": step / 8, "grid_eval_seconds": 30.0})
    for step in (1, 2, 3, 4):
        db.log_metrics(sft, step, {"loss": 1.0 / step})
    assert "grid accuracy 0% at step 0 -> 50% at step 4" in loss_tab.figures([sft])[len(loss_tab.PANELS)]
    for step in (1, 2):
        db.log_metrics(grpo, step, {"loss": 0.1, "reward": 0.2 * step, "pass_rate": 0.1 * step,
                                    "frac_reward_zero_std": 0.5, "completions/mean_length": 120.0})
    *_, key = loss_tab.refresh([sft], 0.0, False, "")[:len(loss_tab.PANELS) + 3]
    extras = dict(zip(loss_tab.EXTRA_PANELS, loss_tab.refresh([sft], 0.0, False, "")[len(loss_tab.PANELS) + 3:]))
    assert extras["grid_accuracy"]["visible"] is True and extras["reward"]["visible"] is False
    figure = extras["grid_accuracy"]["value"]
    assert list(figure.data[0].x) == [0, 2, 4] and list(figure.data[0].y) == [0.0, 0.25, 0.5]
    assert figure.layout.yaxis.tickformat == ".0%"
    both = dict(zip(loss_tab.EXTRA_PANELS, loss_tab.refresh([sft, grpo], 0.0, False, "")[len(loss_tab.PANELS) + 3:]))
    assert all(update["visible"] for update in both.values())
    assert list(both["reward"]["value"].data[0].y) == [0.2, 0.4]


def test_overlaid_runs_show_the_settings_that_differ(db):
    from dataclasses import asdict
    from algodistill.train_sft import SFTSettings
    base = asdict(SFTSettings(experiment="a"))
    runs = [db.create_run("train", dict(base, **change), name=name) for name, change in
            (("slow", {}), ("fast", {"learning_rate": 1e-3, "lora_r": 8, "experiment": "b"}),
             ("other", {"traces": "/srv/uploads/mine-0123.jsonl", "checkpoint_steps": 10}))]
    for run in runs:
        db.log_metrics(run, 1, {"loss": 1.0})
    found = loss_tab.settings_diff([db.get_run(r) for r in runs])
    # only the recipe: the experiment name and checkpointing differ too but train the same way
    assert found == [("traces", ["reference.jsonl", "reference.jsonl", "mine-0123.jsonl"]),
                     ("learning_rate", ["2e-4", "1e-3", "2e-4"]), ("lora_r", ["16", "8", "16"])]
    assert loss_tab.settings_diff([db.get_run(runs[0])]) == []
    loss, *_, summary, diff = loss_tab.figures(runs[:2])[:len(loss_tab.PANELS) + 2]
    assert diff.splitlines()[2:] == [f"| setting | #{runs[0]} slow | #{runs[1]} fast |", "|---|---|---|",
                                     "| learning rate | `2e-4` | `1e-3` |", "| lora r | `16` | `8` |"]
    assert [t.name for t in loss.data] == [f"#{runs[0]} slow (lr 2e-4, r 16) · last 1 at step 1",
                                           f"#{runs[1]} fast (lr 1e-3, r 8) · last 1 at step 1"]
    assert "(lr" not in summary  # the summary lines keep the bare names
    assert loss_tab.shown_value("lora_dropout", 0.05) == "0.05" and loss_tab.shown_value("epochs", 3.0) == "3"
    assert loss_tab.shown_value("warmup_ratio", 1.5e-4) == "1.5e-4" and loss_tab.shown_value("seed", None) == "–"
    assert loss_tab.legend_note([(f"k{n}", ["1", "2"]) for n in range(5)], 1) == " (k0 2, k1 2, k2 2, …)"


def test_the_legend_names_run_and_model_in_words_and_never_import_provenance(db):
    from dataclasses import asdict
    from algodistill.train_sft import SFTSettings
    base = asdict(SFTSettings(experiment="a", model="qwen2.5-coder-0.5b"))
    ours = db.create_run("train", dict(base, max_steps=4), name="mine", model="qwen2.5-coder-0.5b")
    imported = db.create_run("train", dict(base, max_steps=-1, imported={"bundle": "demo.zip", "run": 3,
                                                                         "commit": "abc"}, demo=True),
                             name="[demo] theirs", model="qwen2.5-coder-0.5b")
    for run, losses in ((ours, [2.0, 1.0, 0.5]), (imported, [1.8, 0.9, 0.2])):
        for step, loss in enumerate(losses, 1):
            db.log_metrics(run, step, {"loss": loss})
    assert loss_tab.settings_diff([db.get_run(ours), db.get_run(imported)]) == [("max_steps", ["4", "off"])]
    loss, *_ = loss_tab.figures([ours, imported], smoothing=0.9)
    shown = [t for t in loss.data if t.showlegend is not False]
    assert [t.name for t in shown] == [
        f"#{ours} mine · qwen2.5-coder-0.5b (max steps 4) · last 0.5 at step 3",
        f"#{imported} [demo] theirs · qwen2.5-coder-0.5b (max steps off) · last 0.2 at step 3"]
    # the smoothed line shows its raw value on hover, and starts on the data (debiased)
    assert list(shown[1].customdata) == [1.8, 0.9, 0.2] and "raw" in shown[1].hovertemplate
    assert shown[1].y[0] == pytest.approx(1.8)


def test_smoothing_is_debiased():
    assert loss_tab.smooth([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])
    assert loss_tab.smooth([1.0, 2.0], 0.0) == [1.0, 2.0]


def test_eval_view_heatmap_bars_and_comparison(db):
    a, b = two_evaluations(db)
    headline, grid, key, parts, bars = eval_tab.show(a, None)
    table = grid.data
    assert list(table.columns) == ["problem", "d1", "d5"]
    assert "6/6 solved" in headline and len(table) == 3
    assert table.values.tolist()[0][:2] == ["rpn", "1/1 (5/5)"]
    assert "100%" in key and "0%" in key  # the colour key is in percent
    styles = grid._compute().ctx  # (row, col) -> css: every solved cell is the 100% colour
    assert ("background-color", eval_figures.SOLVED_SCALE[-1][1]) in styles[(0, 1)]
    headline, grid, key, parts, bars = eval_tab.show(b, a)
    assert "2/6 solved" in headline and "4 broken" in headline and "6 → 2" in headline
    assert "+100%" in key and "-100%" in key
    assert len(bars.data) == 4  # two evaluations x (per type, per difficulty)
    assert "cap" not in headline


def test_a_running_evaluations_grid_is_whole_from_the_start_and_fills_as_verdicts_arrive(db):
    from algodistill.evaluate import EvalSettings, create_eval_runs, score_and_store
    settings = EvalSettings(model="m", adapter="/tmp/adapter", problems=["rpn", "fizzbuzz"], difficulties=[1, 5],
                            per_cell=2)
    run, base = create_eval_runs(db, settings, compare_base=True)
    db.mark_started(run)
    headline, grid, _, causes, _ = eval_tab.show(run, None)  # nothing judged yet: every cell of the grid, waiting
    assert "fills as verdicts arrive" in headline
    assert "Why answers failed" in causes and f"#{run}" in causes and "no answer judged yet" in causes
    assert grid.data.values.tolist() == [["rpn", "…", "…"], ["fizzbuzz", "…", "…"]]
    first = [i for i in settings.instances() if (i.problem, i.difficulty) == ("rpn", 1)][:1]
    score_and_store(db, run, [(i, fenced(i.reference)) for i in first], Limits())
    rows = eval_tab.show(run, None)[1].data.values.tolist()
    assert rows[0][1] == "1/1 so far, of 2" and rows[0][2] == "…" and rows[1][1:] == ["…", "…"]
    causes = eval_tab.show(run, base)[3]  # A's first verdict counted; its twin, queued, said to be waiting
    assert "1 samples" in causes and f"#{base}" in causes and "no answer judged yet" in causes
    score_and_store(db, base, [(i, "no code") for i in first], Limits())  # the twin begun too: B → A, both filling
    rows = eval_tab.show(run, base)[1].data.values.tolist()
    assert rows[0][1] == "0/1 … → 1/1 …" and rows[1][1] == "… → …"
    rest = [i for i in settings.instances() if i not in first]
    score_and_store(db, run, [(i, fenced(i.reference)) for i in rest], Limits())
    db.finish_run(run, "completed")
    rows = eval_tab.show(run, None)[1].data.values.tolist()
    assert rows == [["rpn", "2/2 (10/10)", "2/2 (10/10)"], ["fizzbuzz", "2/2 (10/10)", "2/2 (10/10)"]]


def test_compare_grid_shows_a_b_and_the_change_and_a_click_opens_that_cell(db):
    a, b = two_evaluations(db)
    grid = eval_tab.show(b, a)[1]  # broken (A) compared with the reference (B)
    rows = grid.data.values.tolist()
    assert rows[0] == ["rpn", "1/1 → 0/1 (-1)", "1/1 → 0/1 (-1)"]
    assert rows[2][0] == "two_sum" and rows[2][1] == "1/1 → 1/1 (+0)"
    styles = grid._compute().ctx
    assert ("background-color", eval_figures.CHANGE_SCALE[0][1]) in styles[(0, 1)]  # worse: the -100% end
    # the click handler gets the table back as a DataFrame; the Styler itself is accepted too
    assert eval_tab.cell_at(grid.data, 1, 2) == ("fizzbuzz", 5)
    assert eval_tab.cell_at(grid, 2, 1) == ("two_sum", 1)
    assert eval_tab.cell_at(grid.data, 0, 0) == (None, None) and eval_tab.cell_at(grid.data, 3, 1) == (None, None)


def test_failure_breakdown_counts_each_sample_once_by_its_cause(db):
    a, b = two_evaluations(db)
    counts = failures.failure_breakdown(db.samples(b))
    assert counts["passed"] == 2 and counts["wrong_answer"] == 2 and counts["no_code"] == 2
    assert sum(counts.values()) == 6 and list(counts) == list(failures.CAUSES)
    cut = dict(db.samples(b)[0], cut_off=1)
    assert failures.cause(cut) == "cut_off" and failures.inspect_filter("cut_off") == "failing only"
    assert failures.inspect_filter("no_code") in inspect_tab.KINDS
    html = eval_tab.show(b, a)[3]  # one stacked bar per evaluation, every part clickable by its cause
    assert html.count("data-side='a' data-cause='no_code'") == 2 and "data-side='b' data-cause='passed'" in html
    assert "data-cause='timeout'" not in html  # causes that did not occur are not drawn


def test_base_model_box_is_locked_until_an_adapter_is_chosen():
    for adapter in ("", None, "  "):
        off = eval_tab.base_option(adapter)
        assert off["interactive"] is False and off["value"] is False and "adapter" in off["info"]
    on = eval_tab.base_option("/runs/outputs/3-exp/adapter")
    assert on["interactive"] is True and on["value"] is True


def test_answers_cut_off_by_the_token_cap_are_called_out(db):
    from algodistill.evaluate import CUT_OFF_NOTE, score_and_store
    instances = grid(["arithmetic"], [1, 3])
    run = db.create_run("eval", {})
    score_and_store(db, run, [(i, "```python\ndef evaluate(expression):\n    tokens = [") for i in instances],
                    Limits(), extras=[{"tokens": 9, "cut_off": 1}, {"tokens": 9, "cut_off": 0}])
    db.finish_run(run, "completed")
    headline = eval_tab.show(run, None)[0]
    assert "1 answer(s) hit the max-new-tokens cap" in headline
    head = inspect_tab.sample_detail(run, None, ["arithmetic", 1, 999, 0, 0, "", "", "", ""])[1]
    assert CUT_OFF_NOTE in head


def test_eval_start_refuses_without_model(db):
    message, run = eval_tab.start("", "", True, ["rpn"], ["1"], 1, 64, 0)
    assert run is None and "choose a model" in message


def test_inspect_filters_and_shows_both_sides(db):
    a, b = two_evaluations(db)
    rows = inspect_tab.sample_rows(a, b, "all", "all", "failing only")
    assert {r[0] for r in rows} == {"rpn", "fizzbuzz"} and len(rows) == 4
    assert inspect_tab.sample_rows(a, b, "all", "all", "no_code") == \
        [r for r in rows if r[0] == "fizzbuzz"]
    assert len(inspect_tab.sample_rows(a, None, "rpn", "5", "any")) == 1
    rpn = next(r for r in rows if r[0] == "rpn")
    prompt, ha, raw_a, code_a, tests_a, hb, raw_b, code_b, tests_b, diff = inspect_tab.sample_detail(a, b, rpn)
    assert "difficulty" in prompt and "passed" in ha and "wrong_answer" in hb
    assert "def eval_rpn" in code_a and "return 0" in code_b
    assert [r[0] for r in tests_b] == [f"{n} wrong answer" for n in range(1, 6)] and tests_b[0][4].startswith("eval_rpn(")
    assert tests_b[0][1] == "0" and tests_a[0][1] == tests_a[0][2]  # actual next to expected


def test_inspect_lists_each_sample_and_pairs_a_with_b_by_sample_number(db):
    (inst,) = grid(["rpn"], [1])
    wrong = "```python\ndef eval_rpn(tokens):\n    return 0\n```"
    a = run_scoring(db, [(inst, fenced(inst.reference)), (inst, wrong)], name="a", model="a", settings={},
                    limits=Limits(), extras=[{"sample": 0}, {"sample": 1}])["run"]
    b = run_scoring(db, [(inst, wrong), (inst, fenced(inst.reference))], name="b", model="b", settings={},
                    limits=Limits(), extras=[{"sample": 0}, {"sample": 1}])["run"]
    rows = inspect_tab.sample_rows(a, b)
    assert [r[4:7] for r in rows] == [[0, "passed", "5/5"], [1, "wrong_answer", "0/5"]]
    assert [r[7] for r in rows] == ["wrong_answer", "passed"]  # B's verdict on the same sample number
    prompt, ha, raw_a, code_a, tests_a, hb, raw_b, code_b, tests_b, diff = inspect_tab.sample_detail(a, b, rows[1])
    assert "sample 1" in prompt and "return 0" in code_a and "return 0" not in code_b


def three_samples(db, name="k3"):
    """One rpn instance answered 3 times: wrong, right, no code."""
    (inst,) = grid(["rpn"], [1])
    answers = ["```python\ndef eval_rpn(tokens):\n    return 0\n```", fenced(inst.reference), "no code"]
    return run_scoring(db, [(inst, a) for a in answers], name=name, model=name, settings={}, limits=Limits(),
                       extras=[{"sample": n} for n in range(3)])["run"]


def test_inspect_groups_an_instances_samples_and_steps_through_them(db):
    run = three_samples(db)
    rows = inspect_tab.sample_rows(run)
    assert [r[4] for r in rows] == [0, 1, 2] and {r[-1] for r in rows} == {"1/3 samples passed"}
    prompt = inspect_tab.sample_detail(run, None, rows[0])[0]
    assert "0: wrong_answer" in prompt and "1: passed" in prompt and "2: no_code" in prompt
    assert "**0: wrong_answer**" in prompt and "1/3 passed" in prompt  # the one shown, in bold
    key, prompt, head, *_ = inspect_tab.step_sample(run, None, rows[0], 1)
    assert key == ["rpn", 1, 999, 0, 1] and "sample 1" in prompt and "**passed**" in head
    key, prompt, head, *_ = inspect_tab.step_sample(run, None, rows[0], -1)  # wraps round to the last one
    assert key[4] == 2 and "no_code" in head
    other = three_samples(db, "b")
    assert "B #" in inspect_tab.sample_detail(run, other, rows[0])[0]  # B's samples of the instance too
    (inst,) = grid(["fizzbuzz"], [1])
    single = run_scoring(db, [(inst, fenced(inst.reference))], name="one", model="one", settings={},
                         limits=Limits())["run"]
    assert "Samples of this instance" not in inspect_tab.sample_detail(single, None, inspect_tab.sample_rows(single)[0])[0]


def test_eval_headline_shows_pass_at_k_with_intervals_only_for_several_samples(db):
    headline = eval_tab.show(three_samples(db), None)[0]
    assert "1/3 solved" in headline and "pass@1 33.3%" in headline and "pass@3 100.0%" in headline
    a, _ = two_evaluations(db)
    assert "pass@" not in eval_tab.show(a, None)[0]


def finished_training(db, status="completed", saved=True, model="smollm2-135m"):
    """A training run that left an adapter directory (with the adapter's config when ``saved``)."""
    adapter = Path(db.path).parent / "outputs" / f"{len(db.runs()) + 1}-sft"
    adapter.mkdir(parents=True)
    if saved:
        (adapter / "adapter_config.json").write_text("{}")
    return db.create_run("train", {"model": model}, name="sft", status=status, model=model, adapter=str(adapter))


def test_evaluate_this_adapter_starts_the_eval_forms_defaults_with_the_base_model(db, monkeypatch):
    from algodistill.evaluate import EvalSettings
    started = []
    monkeypatch.setattr(eval_tab.jobs, "start_eval",
                        lambda store, settings, **kw: started.append((settings, kw)) or [8, 9])
    not_yet = [finished_training(db, "running"), finished_training(db, "stopped", saved=False)]
    assert [train_tab.evaluable(r) for r in not_yet] == [None, None]  # stopped before a step: no adapter
    assert eval_tab.evaluate_adapter(not_yet[1])[1] is None and started == []
    run = finished_training(db, "stopped")
    assert train_tab.evaluable(run)["id"] == run == train_tab.evaluable(None)["id"]  # none followed: the newest
    message, evaluation = eval_tab.evaluate_adapter(run)
    settings, options = started[0]
    assert evaluation == 8 and options == {"compare_base": True} and "#8 and #9 (base model" in message
    assert (settings.model, settings.adapter) == ("smollm2-135m", db.get_run(run)["adapter"])
    form = eval_tab.form_defaults()
    assert settings.problems == form["problems"] and settings.difficulties == [int(d) for d in form["difficulties"]]
    assert (settings.prompt_style, settings.samples, settings.per_cell, settings.temperature) == ("contract", 1, 1, 0)
    assert settings.max_new_tokens == EvalSettings.max_new_tokens


def test_evaluate_this_adapter_is_the_owners_and_names_the_adapter_by_its_run(db, monkeypatch):
    from algodistill.ui import access
    started = []
    monkeypatch.setattr(eval_tab.jobs, "start_eval", lambda store, settings, **kw: started.append(settings) or [8])
    run = finished_training(db)
    access.configure(True)
    try:
        with pytest.raises(access.Refused, match="not start an evaluation"):
            eval_tab.evaluate_adapter(run)  # hosted, and no request vouches for the caller
        assert started == []
        monkeypatch.setattr(access, "is_owner", lambda request=None: True)
        message, evaluation = eval_tab.evaluate_adapter(run)  # hosted, the adapter is found from the run id
        assert evaluation == 8 and started[0].adapter == db.get_run(run)["adapter"], message
    finally:
        access.configure(False)


def test_the_forms_restore_from_the_browser_only_what_they_may_show(db):
    from algodistill.ui import access
    saved = {"model": "/home/me/my-model", "traces": "/elsewhere/x.jsonl", "experiment": "e2", "learning_rate": 5,
             "lora_r": 8, "epochs": "3", "device": "tpu", "max_steps": True, "unknown": 1}
    kept = train_tab.saved_values(saved)
    assert kept == {"model": "/home/me/my-model", "experiment": "e2", "learning_rate": 5, "lora_r": 8}
    bundled = common.trace_sets()[0][1]
    assert train_tab.saved_values({"traces": bundled, "device": "cpu"}) == {"traces": bundled, "device": "cpu"}
    assert [train_tab.saved_values(junk) for junk in (None, "x", [1, 2])] == [{}, {}, {}]
    # restored is not trusted: the form's checks judge it again when it is submitted
    form = dict(model="smollm2-135m", traces=bundled, experiment="x", epochs=3, lora_alpha=32, lora_dropout=0.05,
                effective_batch=4, batch_size=4, max_length=1024, warmup_ratio=0.1, max_steps=-1, device="cpu")
    message, run = train_tab.start(dict(form, **kept))
    assert run is None and "learning rate must be" in message
    run = finished_training(db)
    evaluation = {"model": "/home/me/my-model", "adapter": "/home/me/adapter", "with_base": False,
                  "problems": ["rpn", "fizzbuzz"], "difficulties": ["1", "10"], "per_cell": 2, "temperature": 0.7,
                  "prompt_style": "all"}
    assert eval_tab.saved_values(evaluation) == evaluation
    assert eval_tab.saved_values({"problems": ["rpn", "nope"], "difficulties": ["11"], "prompt_style": "loud",
                                  "with_base": "yes", "top_p": None}) == {}
    access.configure(True)
    try:  # hosted, the lists refuse other values: a model or adapter off them is not restored
        assert "model" not in train_tab.saved_values(saved) and "adapter" not in eval_tab.saved_values(evaluation)
        assert "model" not in eval_tab.saved_values(evaluation)
        assert eval_tab.saved_values({"model": "smollm2-135m", "adapter": f"#{run}"}) == \
            {"model": "smollm2-135m", "adapter": f"#{run}"}
    finally:
        access.configure(False)


def test_eval_start_turns_sampling_fields_into_settings_and_refuses_bad_ones(db, monkeypatch):
    started = []
    monkeypatch.setattr(eval_tab.jobs, "start_eval", lambda store, settings, **kw: started.append(settings) or [7])
    message, run = eval_tab.start("m", "", False, ["rpn"], ["1"], 1, 64, 0, 3.0, 0.7, 0.9)
    assert run == 7 and (started[0].samples, started[0].temperature, started[0].top_p) == (3, 0.7, 0.9)
    assert type(started[0].samples) is int
    monkeypatch.undo()
    for samples, temperature, top_p, why in ((0, 1.0, 1.0, "samples per instance must be >= 1"),
                                             (2.5, 1.0, 1.0, "whole number"), (1, -1, 1.0, "temperature must be"),
                                             (1, 1.0, 0, "top-p must be"), (3, 0, 1.0, "need a temperature"),
                                             (1, None, 1.0, "temperature is empty")):
        message, run = eval_tab.start("", "", False, ["rpn"], ["1"], 1, 64, 0, samples, temperature, top_p)
        assert run is None and message.startswith("⚠️ Not started") and why in message, message
    assert db.runs() == []


def test_eval_status_shows_both_runs_of_a_comparison_from_the_store(db):
    from algodistill.evaluate import EvalSettings, create_eval_runs
    settings = EvalSettings(model="m", adapter="/tmp/adapter", problems=["rpn"], difficulties=[1, 5, 7, 10])
    run, base = create_eval_runs(db, settings, compare_base=True)
    db.mark_started(run)
    db.update_run(run, progress=0.5, eta=30, message="4/4 generated, 2/4 judged, 1 solved")
    db.attach_process(base)
    db.update_run(base, progress=0.0, eta=90, message=f"waiting for the adapter pass (run #{run}) to finish")
    for followed in (run, base, None):  # either run of the pair, or none followed: the active one
        text = eval_tab.run_status(followed)
        adapter_part, base_part = text.split(f"**Run #{base}**")
        assert f"**Run #{run}**" in adapter_part and "running" in adapter_part and "50%" in adapter_part
        assert "2/4 judged" in adapter_part and "30s left" in adapter_part
        assert "queued" in base_part and "waiting for the adapter pass" in base_part and "1m 30s left" in base_part
    db.finish_run(run, "completed", message="completed: 4/4 judged, 3 solved")
    db.mark_started(base)
    db.update_run(base, progress=0.25, message="2/4 generated, 1/4 judged, 0 solved")
    adapter_part, base_part = eval_tab.run_status(run).split(f"**Run #{base}**")
    assert "completed: 4/4 judged, 3 solved" in adapter_part and "generated" not in adapter_part
    assert "25%" in base_part and "1/4 judged" in base_part
    db.update_run(base, pid=None, status="queued")  # Stop goes to the run being worked on, not the finished one
    assert eval_tab.stop(run) == f"run {base} stopped before it started"
    assert eval_tab.run_status(None) == "No evaluation running."
    # a page that launched nothing followed the newest active evaluation; after its Stop it follows the stopped
    # one, so its status block ends on what was kept instead of "No evaluation running"
    again = db.create_run("eval", {}, name="another")
    db.mark_started(again)
    db.attach_process(again)
    text, follow = eval_tab.stop_followed(None)
    assert follow == again and f"run {again}" in text
    assert f"**Run #{again}**" in eval_tab.run_status(follow)


def test_stop_and_resume_show_only_when_they_apply(db):
    from algodistill.evaluate import EvalSettings, create_eval_runs
    done, _ = two_evaluations(db)  # scored completions: finished, and nothing a model could resume
    assert eval_tab.controls(None, None) == (False, False)
    assert eval_tab.controls(None, f"#{done} reference") == (False, False)
    settings = EvalSettings(model="m", adapter="/tmp/adapter", problems=["rpn"], difficulties=[1, 5])
    run, base = create_eval_runs(db, settings, compare_base=True)  # queued: Stop applies, Resume not yet
    assert eval_tab.controls(None, None) == (True, False)
    assert eval_tab.controls(run, f"#{done} reference") == (True, False)
    db.mark_started(run)
    db.finish_run(run, "completed", message="completed")
    db.mark_started(base)
    assert eval_tab.controls(base, f"#{run} x") == (True, False)  # its twin still runs: not resumable yet
    db.finish_run(base, "stopped", message="stopped")
    for shown in (f"#{run} x", f"#{base} x", None):  # either run of the pair shown, or the followed one
        assert eval_tab.controls(base, shown) == (False, True)
    assert eval_tab.controls(None, f"#{done} reference") == (False, False)  # another, finished run shown
    db.update_run(base, status="completed")
    assert eval_tab.controls(base, f"#{run} x") == (False, False)


def test_a_status_says_each_thing_once(db):
    run = db.create_run("train", {}, name="exp")
    db.mark_started(run)
    what = "the adapter as of step 1 (the last completed step) was saved to out/1-exp"
    db.finish_run(run, "stopped", error=f"stopped (stop requested); {what}",
                  message=f"stopped; {what}; Resume (`python -m algodistill train --resume {run}`) continues from step 1")
    text = common.status_markdown(db.get_run(run))
    assert text.count("stopped") == 1 and "The adapter as of step 1" in text  # the status, then what was kept
    assert "python -m" not in text and "Resume" not in text  # the page's Resume button says it (train_tab)
    done = db.create_run("train", {}, name="done")
    db.finish_run(done, "completed", message="completed; adapter saved to out/2-done")
    text = common.status_markdown(db.get_run(done))
    assert text.count("completed") == 1 and "Adapter saved to out/2-done" in text


def test_an_idle_store_asks_for_no_refresh_and_a_running_job_or_a_write_does(db):
    from algodistill.ui.common import activity, settle
    busy, token = activity()
    assert not busy and activity() == (False, token)  # reading changes nothing: an idle page's question is cheap
    assert settle().active is False  # a refresh timer's tick turns it off when nothing runs
    run = db.create_run("train", {}, name="a job")
    db.mark_started(run)  # this process is its process: alive
    busy, after = activity()
    assert busy and after != token
    import gradio as gr
    assert isinstance(settle(), type(gr.skip()))  # while it runs, the refresh goes on
    db.finish_run(run, "completed")
    assert activity()[0] is False and activity()[1] != after  # its end is a change the watcher sees


def test_a_hosted_owner_is_told_why_resume_cannot_go_on_without_a_server_path(db, tmp_path, monkeypatch):
    from dataclasses import asdict
    from algodistill.train_sft import SFTSettings
    from algodistill.ui import access
    out = tmp_path / "secret-server-dir" / "4-sft"
    out.mkdir(parents=True)
    run = db.create_run("train", asdict(SFTSettings(output_dir=str(out))), name="sft")
    db.finish_run(run, "stopped", error=f"stopped (stop requested); saved to {out}", message=f"stopped; saved to {out}")
    monkeypatch.setattr(access, "is_owner", lambda request=None: True)
    access.configure(True)
    try:
        text, resumed = train_tab.resume(run)
    finally:
        access.configure(False)
    assert resumed is None and "no checkpoint" in text and "secret-server-dir" not in text and str(tmp_path) not in text
    assert "4-sft" in text  # the folder is named, not where it lies
    text, _ = train_tab.resume(run)  # locally the path helps: it is the user's own machine
    assert str(out) in text


def test_the_time_left_counts_down_between_a_runs_updates(db, monkeypatch):
    run = db.create_run("train", {}, name="slow steps")
    db.mark_started(run)
    db.update_run(run, progress=0.25, eta=600)
    written = db.get_run(run)["eta_at"]
    monkeypatch.setattr(common.time, "time", lambda: written + 90)  # a CPU step later, no new estimate yet
    assert "about 8m 30s left" in common.status_markdown(db.get_run(run))
    monkeypatch.setattr(common.time, "time", lambda: written + 900)  # past the estimate: not a negative time
    assert "about 1s left" in common.status_markdown(db.get_run(run))
