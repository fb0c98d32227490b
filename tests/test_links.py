"""Deep links: the query parameters a page is opened with, checked against a real store and turned into what
the page shows; anything invalid is left out, never an error. The browser test follows the address bar."""

import pytest

from algodistill.evaluate import run_scoring
from algodistill.problems import grid
from algodistill.sandbox import Limits
from algodistill.ui import links
from algodistill.verify import fenced


@pytest.fixture
def runs(db):
    """Two training runs and two evaluations: the reference answers, and the same with rpn wrong (so rpn at
    difficulty 3 broke from A to B)."""
    train = [db.create_run("train", {}, name=f"t{n}", model="m") for n in range(2)]
    instances = grid(["rpn", "fizzbuzz"], [1, 3])
    good = [(i, fenced(i.reference)) for i in instances]
    bad = [(i, "```python\ndef eval_rpn(tokens):\n    return 0\n```" if i.problem == "rpn" else fenced(i.reference))
           for i in instances]
    a = run_scoring(db, good, name="reference", model="ref", settings={}, limits=Limits())["run"]
    b = run_scoring(db, bad, name="rpn wrong", model="bad", settings={}, limits=Limits())["run"]
    return {"train": train, "a": a, "b": b}


def test_a_link_names_the_tab_the_evaluations_and_the_cell(runs):
    a, b = runs["a"], runs["b"]
    view = links.parse({"tab": "inspect", "a": str(a), "b": str(b), "problem": "rpn", "difficulty": "3",
                        "change": "broken"})
    assert view == links.View(tab="inspect", a=a, b=b, problem="rpn", difficulty=3, change="broken")
    t1, t2 = runs["train"]
    assert links.parse({"tab": "loss", "runs": f"{t2},{t1},{t2}"}) == links.View(tab="loss", runs=(t2, t1))
    assert links.parse({"tab": "runs"}) == links.View(tab="runs")
    assert links.parse({}) == links.View()


@pytest.mark.parametrize("params", [
    {"tab": "settings"}, {"tab": "Inspect"}, {"a": "abc"}, {"a": "-ID"}, {"a": "+ID"}, {"a": "ID.0"}, {"a": " ID"},
    {"a": "#ID"}, {"a": "１"}, {"a": "99999"}, {"a": "9" * 40}, {"b": "ID"}, {"runs": "x,,-2,99999"},
    {"problem": "nope"}, {"difficulty": "0"}, {"difficulty": "11"}, {"difficulty": "three"}, {"change": "worse"}])
def test_what_a_link_cannot_name_is_left_out(runs, params):
    """ID stands for a real evaluation's id, written the way a link does not write it (or B without A)."""
    params = {k: v.replace("ID", str(runs["a"])) for k, v in params.items()}
    assert links.parse(params) == links.View()


def test_runs_of_the_other_kind_are_left_out(runs):
    t1 = runs["train"][0]
    assert links.parse({"a": str(t1)}).a is None
    assert links.parse({"runs": f"{runs['a']},{t1}"}).runs == (t1,)
    assert links.parse({"a": str(runs["a"]), "b": str(t1)}) == links.View(a=runs["a"])


def test_the_page_opens_what_the_link_names(runs):
    a, b = runs["a"], runs["b"]
    got = links.opening({"tab": "inspect", "a": str(a), "b": str(b), "problem": "rpn", "difficulty": "3"})
    assert (got["tab"], got["a"], got["b"], got["problem"], got["difficulty"]) == ("inspect", a, b, "rpn", "3")
    assert [r[:2] for r in got["listing"]] == [["rpn", 3]]
    assert got["listing"][0][5:9] == ["passed", "5/5", "wrong_answer", "0/5"]
    assert got["shown"] == got["listing"][0][:5]  # the cell has one sample: it is shown at once
    broken = links.opening({"tab": "inspect", "a": str(a), "b": str(b), "change": "broken"})
    assert [r[:2] for r in broken["listing"]] == [["rpn", 1], ["rpn", 3]] and broken["shown"] is None
    assert broken["change"] == "broken"


def test_without_a_usable_link_the_page_opens_as_usual(runs):
    for params in ({}, {"tab": "nope", "a": "abc", "b": str(runs["a"]), "runs": "zero", "problem": "?"}):
        got = links.opening(params)
        # results in the store: a plain address opens on them (Eval); a link naming an unknown tab stays put
        assert got["tab"] == ("eval" if not params else None) and got["results"] is True
        assert got["a"] == runs["b"] and got["b"] is None  # the newest evaluation (no adapter run: no comparison)
        assert (got["problem"], got["difficulty"], got["change"], got["shown"]) == ("all", "all", "all", None)
        assert got["follow"] == runs["train"][1] and got["loss"] == [runs["train"][1]]
        assert len(got["listing"]) == 4
    assert links.opening({"tab": "loss", "runs": str(runs["train"][0])})["loss"] == [runs["train"][0]]


def test_the_address_scripts_know_each_tabs_parameters():
    script = links.url_js("select", "inspect")
    assert script.startswith("(...values) => {") and 'tab = "inspect", mode = "select"' in script
    assert '"inspect": ["a", "b", "problem", "difficulty", "change"]' in script and "history.replaceState" in script
    assert 'tab = null, mode = "ready"' in links.url_js("ready")
    assert list(links.LINKED) == ["loss", "eval", "inspect"]  # the order the app passes the controls in


def test_a_grpo_run_opens_in_inspect_and_leaves_eval_on_the_newest_evaluation(runs, db):
    grpo = db.create_run("train", {"method": "grpo"}, name="g", model="m")
    assert links.parse({"a": str(grpo), "b": str(runs["a"])}) == links.View(a=grpo, b=runs["a"])
    got = links.opening({"tab": "inspect", "a": str(grpo)})
    assert (got["a"], got["eval_a"], got["eval_b"]) == (grpo, runs["b"], None)
    assert grpo in [value for _, value in got["inspect_runs"]]
    plain = links.opening({"tab": "eval", "a": str(runs["a"]), "b": str(runs["b"])})
    assert (plain["eval_a"], plain["eval_b"]) == (runs["a"], runs["b"])


def test_a_plain_address_opens_on_the_newest_comparison_and_an_empty_store_on_train(db):
    from algodistill.evaluate import EvalSettings, create_eval_runs
    from tests.test_learned import score
    assert links.opening({})["tab"] is None and links.opening({})["results"] is False  # empty: Train
    grid_ = dict(model="m", problems=["rpn"], difficulties=[1])
    adapter, base = create_eval_runs(db, EvalSettings(**grid_, adapter="/tmp/outputs/1-sft"), compare_base=True)
    instances = EvalSettings(**grid_).instances()
    score(db, adapter, instances)
    score(db, base, instances, lambda i: False)
    alone = run_scoring(db, [(i, fenced(i.reference)) for i in instances], name="newer, alone", model="m",
                        settings={}, limits=Limits())["run"]
    got = links.opening({})
    assert got["tab"] == "eval" and (got["eval_a"], got["eval_b"]) == (adapter, base)  # not the newer lone run
    assert (got["a"], got["b"]) == (adapter, base)  # Inspect too
    assert links.opening({"tab": "runs"})["tab"] == "runs"  # an address that names a view still opens it
    assert links.opening({"a": str(alone)})["eval_a"] == alone
    from algodistill.ui import eval_tab
    headline = eval_tab.show(adapter, base)[0]
    assert "**Verdict:** rpn" not in headline and "contract +100.0 pts where it was trained" in headline
    assert "not measured yet: terse, stub, stdio, HumanEval" in headline and "Next: click a cell" in headline
    # an evaluation under way: the owner who reloads sees it fill; a visitor still lands on the finished comparison
    running, twin = create_eval_runs(db, EvalSettings(**grid_, adapter="/tmp/outputs/2-sft"), compare_base=True)
    got = links.opening({})
    assert (got["eval_a"], got["eval_b"]) == (running, twin) and (got["a"], got["b"]) == (running, twin)
    from algodistill.ui import access
    access.configure(True)
    try:
        assert (links.opening({})["eval_a"], links.opening({})["eval_b"]) == (adapter, base)
    finally:
        access.configure(False)
    db.finish_run(running, "stopped")
    db.finish_run(twin, "stopped")
    assert (links.opening({})["eval_a"], links.opening({})["eval_b"]) == (adapter, base)  # under way no more


def test_the_landing_prefers_the_adapters_contract_grid_over_its_newer_humaneval_pair(db):
    from algodistill.benchmarks import humaneval
    from algodistill.evaluate import EvalSettings, create_eval_runs
    from tests.test_learned import score
    grid_ = dict(model="m", problems=["rpn"], difficulties=[1])

    def humaneval_pair(adapter: str) -> None:  # the adapter on 2 HumanEval problems, with its base twin
        he = EvalSettings(benchmark="humaneval", model="m", adapter=adapter, problems=["humaneval"],
                          difficulties=[1], seed=0)
        for run in create_eval_runs(db, he, compare_base=True):
            score(db, run, humaneval.instances()[:2])

    a, b = create_eval_runs(db, EvalSettings(**grid_, adapter="/tmp/outputs/1-sft"), compare_base=True)
    score(db, a, EvalSettings(**grid_).instances())
    score(db, b, EvalSettings(**grid_).instances())
    humaneval_pair("/tmp/outputs/1-sft")
    assert links.newest_comparison() == (a, b)  # the heatmap of the 11 types; the verdict names HumanEval
    c, d = create_eval_runs(db, EvalSettings(**grid_, adapter="/tmp/outputs/2-other"), compare_base=True)
    score(db, c, EvalSettings(**grid_).instances())
    score(db, d, EvalSettings(**grid_).instances())
    assert links.newest_comparison() == (c, d)  # a newer adapter comes first
    # an adapter evaluated without a twin: the base run of the same settings (d) is its comparison, still before
    # the same adapter's HumanEval pair with a twin
    e = create_eval_runs(db, EvalSettings(**grid_, adapter="/tmp/outputs/3-third"))[0]
    score(db, e, EvalSettings(**grid_).instances())
    humaneval_pair("/tmp/outputs/3-third")
    assert links.newest_comparison() == (e, d)
