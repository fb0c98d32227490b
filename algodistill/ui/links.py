"""Deep links: the page's address names the tab and the runs shown, so a view can be shared.

``?tab=inspect&a=12&b=13&problem=rpn&difficulty=3`` opens Inspect on runs 12 and 13 (evaluations or GRPO
runs) at that cell (a cell with one sample opens it), ``&change=broken`` adds the A -> B filter;
``?tab=eval&a=12&b=13`` opens the pair's grid; ``?tab=loss&runs=3,5`` overlays two loss curves; ``?tab=runs``
(or train, data) opens that tab.
A page load reads the parameters from its request (``opening``); whatever is invalid or unknown (a word or a
sign where an id goes, a run that is not there or of the other kind, a problem type the app lacks) is left
out and the page opens as usual for it, never with an error. Links only read: nothing is written.

The address follows the view: a small script on each tab's select event and on the change events of the
lists a tab's link names (``url_js``) rewrites it in place with ``history.replaceState`` (and, inside a
Space's page, asks the page around it to show the same query), so the address bar can be copied at any
time. It writes only after the page load has read the address it was opened with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..benchmarks import humaneval
from ..problems import PROBLEM_TYPES
from . import access
from .common import run_choices, store
from .inspect_tab import CHANGES, sample_rows, sample_runs

TABS = ("train", "loss", "eval", "inspect", "data", "runs")
# tab -> the parameters its link carries; ``url_js``'s events get these controls as inputs, in this order
LINKED = {"loss": ("runs",), "eval": ("a", "b"), "inspect": ("a", "b", "problem", "difficulty", "change")}
KEYS = ("tab", "a", "b", "runs", "problem", "difficulty", "change")
IDS = ("a", "b", "runs")
MAX_RUNS = 12  # loss curves one link overlays
ALL = "all"


@dataclass(frozen=True)
class View:
    """What a link asks for, every part checked: None (or no runs) where it named nothing usable."""
    tab: str | None = None
    a: int | None = None
    b: int | None = None
    runs: tuple[int, ...] = ()
    problem: str | None = None
    difficulty: int | None = None
    change: str | None = None


def number(text) -> int | None:
    """A whole number as a link writes it, ASCII digits only (no sign, point, '#' or spaces), else None."""
    return int(text) if isinstance(text, str) and re.fullmatch(r"[0-9]{1,18}", text) else None


def _run(text, wanted) -> int | None:
    """The id in ``text`` when it names a run in the store that ``wanted(run)`` accepts, else None."""
    run_id = number(text)
    if run_id is None:
        return None
    try:
        return run_id if wanted(store().get_run(run_id)) else None
    except KeyError:
        return None


def inspected(run: dict) -> bool:
    """Whether Inspect opens ``run``'s samples: an evaluation's or a GRPO run's (``inspect_tab.sample_runs``)."""
    return run["kind"] == "eval" or (run["kind"] == "train" and run["settings"].get("method") == "grpo")


def parse(params: Mapping[str, str]) -> View:
    """The view the query parameters ``params`` name. A and B are runs Inspect opens, B only next to a valid
    A; ``runs`` is a comma-separated list of training runs (the first ``MAX_RUNS`` valid ones, each once)."""
    tab = params.get("tab")
    a = _run(params.get("a"), inspected)
    b = _run(params.get("b"), inspected) if a is not None else None
    runs = []
    for part in str(params.get("runs") or "").split(",")[:100]:
        run_id = _run(part.strip(), lambda run: run["kind"] == "train")
        if run_id is not None and run_id not in runs and len(runs) < MAX_RUNS:
            runs.append(run_id)
    problem = params.get("problem")
    difficulty = number(params.get("difficulty"))
    return View(tab=tab if tab in TABS else None, a=a, b=b, runs=tuple(runs),
                problem=problem if problem in (*PROBLEM_TYPES, humaneval.NAME) else None,
                difficulty=difficulty if difficulty is not None and 1 <= difficulty <= 10 else None,
                change=params.get("change") if params.get("change") in CHANGES[1:] else None)


def newest_comparison() -> tuple[int, int] | None:
    """(adapter evaluation, the base-model run it is compared with) of the newest adapter that has a completed
    comparison: what a first look should show (what the adapter changed), or None. The base run is the one
    learned-vs-forgot pairs it with (its twin, else a base run of the same settings and instances), so a base run
    measured once serves several adapters. The adapter's grid in the contract style comes first (the heatmap of
    the 11 types; the verdict line names the other styles and HumanEval), then its other rows."""
    from ..learned import _place, learned_vs_forgot  # the adapter and its rows as learned-vs-forgot reads them
    places = []
    for run in store().runs(kind="eval", limit=1000):  # newest first
        if run.get("adapter") and not run.get("parent") and run["status"] == "completed":
            place = _place(run["adapter"])
            if place not in places:
                places.append(place)
    for place in places:
        try:
            rows = learned_vs_forgot(store(), place)
        except ValueError:
            continue
        final = [row for row in rows if row["final"]]
        final.sort(key=lambda row: (row["benchmark"], row["style"]) != ("grid", "contract"))
        if final:
            return final[0]["adapter"]["run"], final[0]["base"]["run"]
    return None


def running_comparison() -> tuple[int, int | None] | None:
    """(evaluation, its base-model twin or None) of the newest evaluation under way (running or queued), which an
    owner who reloads the page while it runs wants to see fill, rather than an older comparison; None when none is."""
    from ..store import ACTIVE
    for run in store().runs(kind="eval", limit=1000):  # newest first
        if not run.get("parent") and run["status"] in ACTIVE:
            twin = next((c["id"] for c in store().children(run["id"]) if c["kind"] == "eval"), None)
            return run["id"], twin
    return None


def has_results() -> bool:
    """Whether the store holds a completed evaluation: then the app opens on results, not on a form."""
    return any(r["status"] == "completed" for r in store().runs(kind="eval", limit=1000))


def opening(params: Mapping[str, str]) -> dict:
    """What a page load shows for its query parameters ``params``, as plain values: the run lists
    (``train_runs``, ``eval_runs``, ``inspect_runs``), the ``tab`` to select (None: leave it), the training
    run Train follows (``follow``), the ``loss`` runs, Eval's evaluations (``eval_a``, ``eval_b``), Inspect's
    runs (``a``, ``b``) and filters (``problem``, ``difficulty``, ``change``), its ``listing``, and the sample
    to show at once (``shown``, a listing row's key, when the link names a cell with one sample), and whether
    there are ``results``. Without parameters: the Eval tab when the store holds results (else the first tab,
    Train), the newest training run followed and drawn, and in Eval and Inspect the newest comparison (an
    adapter's evaluation as A, its base-model twin as B; else the newest evaluation alone); a link to GRPO runs
    (Inspect only) leaves Eval so."""
    view = parse(params)
    train_runs, eval_runs = run_choices("train"), run_choices("eval")
    newest_train = train_runs[0][1] if train_runs else None
    results = has_results()
    pair = (running_comparison() if access.is_owner() else None) or newest_comparison() or \
        ((eval_runs[0][1], None) if eval_runs else (None, None))
    if view.a is None:  # nothing linked: the newest comparison in both tabs
        view = View(tab=view.tab, runs=view.runs, problem=view.problem, difficulty=view.difficulty,
                    change=view.change, a=pair[0], b=pair[1])
    a = view.a
    evaluations = [r for r in (view.a, view.b) if r is not None and store().get_run(r)["kind"] == "eval"]
    linked_evals = view.a is not None and len(evaluations) == (2 if view.b is not None else 1)
    problem = view.problem or ALL
    difficulty = str(view.difficulty) if view.difficulty else ALL
    change = view.change or ALL
    rows = sample_rows(a, view.b, problem, difficulty, "any", change) if a is not None else []
    cell = view.problem is not None and view.difficulty is not None
    tab = view.tab or ("eval" if results and not params.get("tab") else None)
    return {"train_runs": train_runs, "eval_runs": eval_runs, "inspect_runs": sample_runs(), "tab": tab,
            "results": results,
            "follow": newest_train, "loss": list(view.runs) or ([newest_train] if newest_train else []),
            "eval_a": view.a if linked_evals else (eval_runs[0][1] if eval_runs else None),
            "eval_b": view.b if linked_evals else None, "a": a, "b": view.b, "problem": problem,
            "difficulty": difficulty, "change": change, "listing": rows,
            "shown": rows[0][:5] if cell and len(rows) == 1 else None}


_SCRIPT = """
const link = window.algodistillLink = window.algodistillLink || {tab: null, ready: false};
const tab = %(tab)s, mode = %(mode)s;
if (mode === "select") link.tab = tab;
if (mode === "change" && link.tab !== tab) return;
if (mode === "ready") {
  link.ready = true;
  const wanted = new URLSearchParams(location.search).get("tab");
  if (wanted === null) return;  // a plain address stays plain
  if (%(tabs)s.includes(wanted) && wanted !== link.tab) return;  // the load is selecting it: its select writes
}
if (!link.ready || !link.tab) return;
const linked = %(linked)s, ids = %(ids)s;
let first = 0;
for (const [name, keys] of Object.entries(linked)) { if (name === link.tab) break; first += keys.length; }
const text = (key, v) => {
  if (Array.isArray(v)) return v.map((x) => text(key, x)).filter(Boolean).join(",");
  const s = String(v ?? "").trim();
  if (ids.includes(key)) return (s.match(/^#?([0-9]+)/) || ["", ""])[1];
  const word = s.split(" (")[0];  // "broken (3)": the choice, not its count
  return ["all", "any"].includes(word) ? "" : word;
};
const params = new URLSearchParams(location.search);
%(keys)s.forEach((key) => params.delete(key));
params.set("tab", link.tab);
(linked[link.tab] || []).forEach((key, i) => { const v = text(key, values[first + i]); if (v) params.set(key, v); });
const query = params.toString().replace(/%%2C/g, ",");
if ("?" + query === location.search) return;
history.replaceState(history.state, "", "?" + query + location.hash);
if (window.parent !== window) window.parent.postMessage({queryString: query}, "https://huggingface.co");
"""


def url_js(mode: str, tab: str | None = None) -> str:
    """The ``js=`` of an event that keeps the address on the view shown; its inputs are every control of
    ``LINKED``, tab after tab in that order. ``mode`` "select": ``tab`` became the tab shown; "change": one
    of ``tab``'s linked controls changed (the address follows only while ``tab`` is shown); "ready": the
    page load has read the address, so it may be written from now on (an address opened with a tab is
    rewritten to name what the page shows, by the select event of the tab the load selects, which may come
    before or after). Nothing is written before "ready": the first tab shown as the page mounts must not
    overwrite a link the page load has not read yet."""
    body = _SCRIPT % {"tab": json.dumps(tab), "mode": json.dumps(mode), "tabs": json.dumps(TABS),
                      "linked": json.dumps(LINKED), "ids": json.dumps(IDS), "keys": json.dumps(KEYS)}
    return "(...values) => {" + body + "}"
