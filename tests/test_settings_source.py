"""One source for settings: the dataclasses' fields make the CLI flags and the Train form, values pass by
name, and a field added to a settings class appears in both without another edit."""

from dataclasses import dataclass, fields

import pytest

from algodistill.cli import build_parser
from algodistill.grpo import GRPOSettings
from algodistill.settings import add_flags, bounded, form_fields, form_label, from_flags, option
from algodistill.train_sft import SFTSettings
from algodistill.ui import common, train_tab


def subparser(name):
    parser = build_parser()
    return next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == name)[1]


@pytest.mark.parametrize("cls, command", [(SFTSettings, "train"), (GRPOSettings, "grpo")])
def test_every_flag_is_a_field_and_every_field_with_help_is_a_flag(cls, command):
    parser = subparser(command)
    dests = {a.dest for a in parser._actions} - {"help", "run", "db", "json", "resume"}
    offered = {f.name for f in fields(cls) if f.metadata.get("cli")}
    assert dests == offered
    assert all(f.metadata.get("help") for f in fields(cls) if f.name in offered)


def test_flags_become_settings_by_name_with_derived_defaults():
    args = build_parser().parse_args(["train", "--lr", "1e-3", "--lora-r", "8", "--effective-batch", "2",
                                      "--no-gradient-checkpointing", "--max-steps", "5"])
    s = from_flags(SFTSettings, args)
    assert (s.learning_rate, s.lora_r, s.effective_batch, s.gradient_checkpointing, s.max_steps) == \
        (1e-3, 8, 2, False, 5)
    assert s.batch_size == SFTSettings().batch_size  # left at None: the field's default (cli derives min(4, eff))
    g = from_flags(GRPOSettings, build_parser().parse_args(
        ["grpo", "--problems", "rpn", "two_sum", "--difficulties", "1", "3", "--num-generations", "4"]))
    assert (g.problems, g.difficulties, g.num_generations, g.adapter) == (["rpn", "two_sum"], [1, 3], 4, "")
    assert g.problems is not GRPOSettings().problems


def test_a_new_field_is_a_flag_and_a_form_field_at_once():
    @dataclass
    class Knobs:
        rate: float = bounded(0.5, 0, 1, help="how fast", form="main")
        name: str = option("x", help="what to call it", form="main")
        quiet: bool = option(False, help="say less")
        internal: int = 3

    import argparse
    parser = argparse.ArgumentParser()
    add_flags(parser, Knobs)
    knobs = from_flags(Knobs, parser.parse_args(["--rate", "0.25", "--quiet"]))
    assert (knobs.rate, knobs.name, knobs.quiet, knobs.internal) == (0.25, "x", True, 3)
    assert "how fast (default 0.5)" in parser.format_help()
    assert form_fields(Knobs) == ("rate", "name") and form_label(Knobs, "rate") == "Rate"


def test_the_train_form_has_one_widget_per_form_field_labelled_from_the_settings():
    import gradio as gr
    with gr.Blocks():
        train_tab.build(gr, common.remembered(gr, "train"))
        numbers = {c.label for c in gr.context.Context.root_block.blocks.values() if isinstance(c, gr.Number)}
    for cls in (SFTSettings, GRPOSettings):
        wanted = {form_label(cls, f.name) for f in fields(cls)
                  if f.metadata.get("form") and isinstance(f.default, (int, float)) and not isinstance(f.default, bool)}
        assert wanted and wanted <= numbers
    assert "Max steps (-1: epochs decide)" in numbers and "Generations per prompt" in numbers


def grpo_form(**changes):
    form = {field: getattr(GRPOSettings(), field) for field in train_tab.GRPO_FIELDS}
    form.update(model="smollm2-135m", adapter="", problems=["rpn", "fizzbuzz"], difficulties=["1", "3"],
                num_generations=4.0, batch_size=4.0, max_steps=2.0, device="cpu")
    return dict(form, **changes)


def test_the_grpo_form_becomes_settings_by_name(db):
    s = train_tab.grpo_settings_from_form(grpo_form())
    assert (s.problems, s.difficulties, s.num_generations, s.max_steps, s.adapter, s.method) == \
        (["rpn", "fizzbuzz"], [1, 3], 4, 2, "", "grpo")
    assert isinstance(s.num_generations, int)
    with pytest.raises(ValueError, match="whole number"):
        train_tab.grpo_settings_from_form(grpo_form(max_steps=2.5))
    with pytest.raises(ValueError, match="generations per prompt is empty"):
        train_tab.grpo_settings_from_form(grpo_form(num_generations=None))
    with pytest.raises(ValueError, match="difficulties must be whole numbers"):
        train_tab.grpo_settings_from_form(grpo_form(difficulties=["one"]))
    with pytest.raises(ValueError, match="has no adapter"):
        train_tab.grpo_settings_from_form(grpo_form(adapter=f"#{db.create_run('train', {}, name='t')}"))


def test_start_grpo_queues_a_grpo_run_or_says_why_not(db, monkeypatch, tiny_model_dir):
    monkeypatch.setattr(train_tab.jobs, "dispatch", lambda store: [])  # queued, no process started
    message, run = train_tab.start_grpo(grpo_form(model=tiny_model_dir, problems=[]))
    assert run is None and message.startswith("⚠️ Not started") and "at least one problem type" in message
    message, run = train_tab.start_grpo(grpo_form(model=tiny_model_dir, num_generations=3.0))  # 2 x 3 vs batch 4
    assert run is None and "not a multiple" in message and db.runs() == []  # nothing half-created
    message, run = train_tab.start_grpo(grpo_form(model=tiny_model_dir))
    assert "GRPO run #" in message and "a new LoRA" in message
    stored = db.get_run(run)
    assert stored["status"] == "queued" and stored["settings"]["method"] == "grpo"
    assert stored["settings"]["problems"] == ["rpn", "fizzbuzz"] and stored["settings"]["num_generations"] == 4
    assert db.job_queue()[0]["argv"] == ["grpo"]


def test_the_grpo_start_is_the_owners_when_hosted(db, monkeypatch):
    from algodistill.ui import access
    started = []
    monkeypatch.setattr(train_tab.jobs, "start_grpo", lambda store, settings: started.append(settings) or 41)
    access.configure(True)
    try:
        with pytest.raises(access.Refused):
            train_tab.start_grpo(grpo_form())
    finally:
        access.configure(False)
    assert started == []


def test_the_grpo_form_is_restored_from_the_browser_only_where_it_fits():
    saved = {"method": "grpo", "model": "smollm2-135m",
             "grpo": {"num_generations": 4, "problems": ["rpn"], "difficulties": ["1", "11"], "beta": "x"}}
    kept = train_tab.saved_values(saved)
    assert kept["method"] == "grpo" and kept["grpo"] == {"num_generations": 4, "problems": ["rpn"]}
    assert "grpo" not in train_tab.saved_values({"grpo": "junk"}) and \
        train_tab.saved_values({"method": "dpo"}) == {}
