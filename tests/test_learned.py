"""Learned vs forgot (issue 10): an adapter against its base model per prompt style and on HumanEval, from
real scored runs: pairing by twin and by settings, refusals, fixed/broken counts, runs not completed, the
command line and the Eval tab's section."""

import json

import pytest

from algodistill.benchmarks import humaneval
from algodistill.evaluate import EvalSettings, create_eval_runs, score_and_store, summarize
from algodistill.learned import COLUMNS, LEGEND, learned_vs_forgot, table_rows
from algodistill.sandbox import Limits
from algodistill.verify import fenced
from tests.test_cli import cli

GRID = dict(model="m", problems=["rpn", "fizzbuzz", "two_sum"], difficulties=[1, 5])


def score(db, run_id, instances, solves=lambda i: True, status="completed"):
    """Score the reference answer (or no code, where ``solves`` says no) into a run; ``status`` running leaves
    it unfinished, as a job still at work does."""
    db.mark_started(run_id)
    rows = score_and_store(db, run_id, [(i, fenced(i.reference) if solves(i) else "no code") for i in instances],
                           Limits())
    if status != "running":
        db.finish_run(run_id, status, summary=summarize(rows) if status == "completed" else None)


def adapter_dir(tmp_path):
    path = tmp_path / "outputs" / "1-sft"
    path.mkdir(parents=True)
    return str(path)


@pytest.fixture
def evaluated(store, tmp_path):
    """An adapter evaluated with --prompt-style all --compare-base, and on HumanEval with --compare-base:
    contract 4/6 -> 5/6 (rpn fixed twice, two_sum d5 broken), terse unchanged, stub still running, stdio's base
    twin still queued; HumanEval 4/4 -> 3/4."""
    adapter = adapter_dir(tmp_path)
    store.create_run("train", {}, name="sft", model="m", adapter=adapter, status="completed")
    settings = EvalSettings(**GRID, adapter=adapter, prompt_style="all")
    ids = create_eval_runs(store, settings, compare_base=True)
    names = [name for style in ("contract", "terse", "stub", "stdio") for name in (style, "base " + style)]
    runs = dict(zip(names, ids))
    for style in ("contract", "terse", "stub", "stdio"):
        instances = EvalSettings(**GRID, prompt_style=style).instances()
        if style == "contract":
            score(store, runs[style], instances, lambda i: (i.problem, i.difficulty) != ("two_sum", 5))
            score(store, runs["base " + style], instances, lambda i: i.problem != "rpn")
        elif style == "terse":
            score(store, runs[style], instances)
            score(store, runs["base " + style], instances)
        elif style == "stub":
            score(store, runs[style], instances[:2], status="running")
        else:
            score(store, runs[style], instances)
    he = EvalSettings(benchmark="humaneval", model="m", adapter=adapter, problems=["humaneval"], difficulties=[1],
                      seed=0)
    runs["humaneval"], runs["base humaneval"] = create_eval_runs(store, he, compare_base=True)
    problems = humaneval.instances()[:4]
    score(store, runs["humaneval"], problems, lambda i: i.index != 2)
    score(store, runs["base humaneval"], problems)
    return adapter, runs


def test_twins_pair_and_fixed_broken_count_the_same_instances(store, evaluated):
    adapter, runs = evaluated
    contract, terse, stub, stdio, he = learned_vs_forgot(store, adapter)
    assert (contract["row"], contract["measures"]) == ("grid · contract", "training template")
    assert contract["paired_by"] == "twin"
    assert (contract["adapter"]["run"], contract["base"]["run"]) == (runs["contract"], runs["base contract"])
    assert contract["base"]["solved"] == 4 and contract["adapter"]["solved"] == 5
    assert (contract["fixed"], contract["broken"]) == (2, 1) and contract["final"]
    assert contract["change"] == pytest.approx(100 / 6)
    assert terse["final"] and terse["change"] == 0 and (terse["fixed"], terse["broken"]) == (0, 0)
    assert terse["measures"] == "transfer"
    assert (he["row"], he["measures"], he["paired_by"]) == ("HumanEval", "forgetting", "twin")
    assert he["change"] == pytest.approx(-25) and (he["fixed"], he["broken"]) == (0, 1)
    text = dict(zip([r["row"] for r in (contract, terse, stub, stdio, he)],
                    table_rows([contract, terse, stub, stdio, he])))
    assert text["grid · contract"][2:8] == ["4/6 66.7% (30%-90%)", "5/6 83.3% (44%-97%)", "+16.7 pts", "2", "1",
                                             f"#{runs['contract']} vs base #{runs['base contract']} (twin)"]
    assert text["HumanEval"][4] == "-25.0 pts"


def test_each_row_says_whether_the_adapters_traces_taught_that_wording(store, evaluated):
    adapter, _ = evaluated
    train = next(r for r in store.runs(kind="train") if r["adapter"] == adapter)
    store.update_run(train["id"], summary={"traces": {"wording": {
        "contract": "evaluation wording", "terse": "other wordings only", "stub": "other wordings only",
        "stdio": "held out"}}})
    contract, terse, stub, stdio, he = learned_vs_forgot(store, adapter)
    assert contract["measures"] == "in training (the evaluation's wording)"
    assert terse["measures"] == stub["measures"] == "transfer: held-out wording"
    assert stdio["measures"] == "transfer: held-out style" and he["measures"] == "forgetting"
    assert table_rows([terse])[0][1] == "transfer: held-out wording"


def test_runs_not_completed_are_shown_as_such_never_as_numbers(store, evaluated):
    adapter, runs = evaluated
    _, _, stub, stdio, _ = learned_vs_forgot(store, adapter)
    assert stub["adapter"]["status"] == "running" and "pass@1" not in stub["adapter"]
    assert stub["base"]["status"] == "queued" and not stub["final"] and stub["change"] is None
    assert stdio["adapter"]["status"] == "completed" and "pass@1" in stdio["adapter"]
    assert stdio["base"]["status"] == "queued" and stdio["fixed"] is None and not stdio["final"]
    row = table_rows([stub, stdio])
    assert row[0][3] == "running: 2 judged, not final" and row[0][4:7] == ["", "", ""]
    assert row[1][2] == "queued: 0 judged, not final" and row[1][3].startswith("6/6 100.0%")


def test_without_a_twin_the_newest_completed_base_run_with_the_same_settings_pairs(store, tmp_path):
    adapter = adapter_dir(tmp_path)
    instances = EvalSettings(**GRID).instances()

    def base(**changes):
        run = create_eval_runs(store, EvalSettings(**(GRID | changes)))[0]
        score(store, run, instances, lambda i: i.problem != "rpn")
        return run

    older, newer = base(), base()
    base(max_new_tokens=512), base(model="other")  # other settings, another model: never paired
    unfinished = create_eval_runs(store, EvalSettings(**GRID))[0]
    score(store, unfinished, instances[:3], status="stopped")
    first = create_eval_runs(store, EvalSettings(**GRID, adapter=adapter))[0]
    score(store, first, instances)
    later = create_eval_runs(store, EvalSettings(**GRID, adapter=adapter))[0]
    score(store, later, instances[:1], status="running")
    row = learned_vs_forgot(store, adapter + "/")[0]  # the same directory however it is spelled
    assert row["paired_by"] == "same settings" and row["base"]["run"] == newer != older
    assert row["adapter"]["run"] == first and f"newer run #{later} is running" in row["notes"]
    assert row["final"] and (row["fixed"], row["broken"]) == (2, 0)
    assert [r["adapter"] for r in learned_vs_forgot(store, adapter)[1:]] == [None] * 4
    assert "not evaluated with this adapter" in learned_vs_forgot(store, adapter)[1]["notes"]


def test_a_base_run_in_the_adapter_runs_dtype_pairs_before_a_newer_one_in_another(store, tmp_path):
    adapter = adapter_dir(tmp_path)
    instances = EvalSettings(**GRID).instances()

    def run(dtype, **changes):
        rid = create_eval_runs(store, EvalSettings(**(GRID | changes)))[0]
        store.update_run(rid, settings=store.get_run(rid)["settings"] | ({"dtype_used": dtype} if dtype else {}))
        score(store, rid, instances)
        return rid

    bf16 = run("bfloat16")
    run(None)  # newer, from before --dtype: float32
    mine = run("bfloat16", adapter=adapter)
    row = learned_vs_forgot(store, adapter)[0]
    assert row["adapter"]["run"] == mine and row["base"]["run"] == bf16 and not row["notes"]
    fp32_adapter = run("float32", adapter=adapter)  # the newest adapter run, in float32: the fp32 base pairs now
    row = learned_vs_forgot(store, adapter)[0]
    assert row["adapter"]["run"] == fp32_adapter and row["base"]["run"] != bf16 and not row["notes"]
    store.delete_run(row["base"]["run"])  # only the bf16 base left: it pairs, and the row says so
    row = learned_vs_forgot(store, adapter)[0]
    assert row["base"]["run"] == bf16 and row["notes"] == ["the base run computed in bfloat16, the adapter run in float32"]


def test_a_base_run_on_other_instances_is_refused(store, tmp_path):
    adapter = adapter_dir(tmp_path)
    instances = EvalSettings(**GRID).instances()
    partial = create_eval_runs(store, EvalSettings(**GRID))[0]
    score(store, partial, instances[1:])  # completed, but one instance short
    mine = create_eval_runs(store, EvalSettings(**GRID, adapter=adapter))[0]
    score(store, mine, instances)
    row = learned_vs_forgot(store, adapter)[0]
    assert row["base"] is None and not row["final"]
    assert row["notes"] == [f"base run #{partial} refused: other instances (1 of the adapter's samples missing)"]
    reworded = create_eval_runs(store, EvalSettings(**GRID))[0]  # the same keys, one prompt worded otherwise
    score(store, reworded, instances)
    store.add_sample(reworded, dict(store.samples(reworded)[0], prompt="another problem"))
    row = learned_vs_forgot(store, adapter)[0]
    assert row["base"] is None and f"base run #{reworded} refused: other instances (1 prompts worded differently)" \
        in row["notes"]
    with pytest.raises(ValueError, match="no evaluation of the adapter"):
        learned_vs_forgot(store, str(tmp_path / "elsewhere"))


def test_cli_compare_prints_the_table_and_json(store, evaluated):
    adapter, runs = evaluated
    r = cli("compare", "--adapter", adapter, "--json", env_db=store.path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["legend"] == LEGEND and [row["row"] for row in data["rows"]][::4] == ["grid · contract", "HumanEval"]
    assert data["rows"][0]["base"]["run"] == runs["base contract"] and data["rows"][0]["fixed"] == 2
    r = cli("compare", "--adapter", adapter, env_db=store.path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["row", "measures", "base", "pass@1", "adapter", "pass@1", "change", "fixed", "broken",
                                "runs"]
    contract = next(line for line in lines if line.startswith("grid · contract "))
    assert "+16.7 pts" in contract and f"#{runs['contract']} vs base #{runs['base contract']} (twin)" in contract
    assert any(line.startswith("grid · stub") and "running: 2 judged, not final" in line for line in lines)
    assert "training template: grid · contract +16.7 pts" in r.stdout and "forgetting: HumanEval -25.0 pts" in r.stdout
    r = cli("compare", "--adapter", "/no/such/adapter", env_db=store.path)
    assert r.returncode == 2 and "error: no evaluation of the adapter /no/such/adapter" in r.stderr


def test_eval_tab_section_shows_an_adapter_and_a_row_click_picks_its_runs(db, evaluated):
    from algodistill.ui import learned_view
    adapter, runs = evaluated
    options = learned_view.adapter_options()
    assert [value for _, value in options] == [adapter] and "training run #1 sft" in options[0][0]
    header, table, figure, rows = learned_view.show_learned(adapter)
    assert "**1-sft (training run #1 sft, m)**" in header and "transfer: terse +0.0 pts" in header
    assert list(table.data.columns) == COLUMNS and len(table.data) == 5
    assert table.data.iloc[0, 4] == "+16.7 pts"
    assert [t.name for t in figure.data] == ["base (run)", "adapter (run)"]
    assert (len(figure.data[0].x), len(figure.data[1].x)) == (3, 4)  # completed runs only: no queued base
    assert learned_view.pair_of_row(rows, 0) == (runs["contract"], runs["base contract"])
    assert learned_view.pair_of_row(rows, 9) == (None, None)
    assert learned_view.show_learned("/no/such/adapter")[0] == "This adapter has no evaluation runs in this store."
    assert learned_view.show_learned("")[0] == "Choose an adapter."


def test_eval_tab_section_says_how_to_fill_it_when_nothing_was_evaluated(db):
    from algodistill.ui import learned_view
    assert learned_view.adapter_options() == []
    assert learned_view.show_learned(None)[0] == learned_view.NONE_YET


def test_the_verdict_says_template_or_skill_and_what_was_forgotten(store, evaluated):
    from algodistill.learned import verdict
    adapter, _ = evaluated
    rows = learned_vs_forgot(store, adapter)
    assert verdict(rows) == ("contract +16.7 pts where it was trained; learned the template: no other wording gains "
                             "5 pts (terse); forgot 1 HumanEval problem; not measured yet: stub, stdio")
    for row, change in zip(rows[1:4], (12.0, 30.0, 4.0)):
        row.update(final=True, change=change, measures="transfer: held-out wording")
    assert "learned part of the skill: it transfers to terse, stub, not to stdio" in verdict(rows)
    rows[3]["change"] = 10.0
    assert "learned the skill: every other wording gains 10 pts or more (terse, stub, stdio)" in verdict(rows)
