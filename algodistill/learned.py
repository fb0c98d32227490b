"""What an adapter learned and what it forgot, in one table (issue 10): per adapter, the grid in each prompt
style and HumanEval, the adapter against its base model on the very same instances.

Rows (``ROWS``): the grid in the training template (``contract``: what SFT taught), the grid asked in other
words (``terse``, ``stub``, ``stdio``: transfer) and HumanEval (outside the training data: forgetting). When
the store holds the training run that wrote the adapter, each grid row says what it measures from what that
run's traces taught (``wording_taught``): in training, a held-out wording of a style it saw, or a held-out
style. A row
takes the adapter's newest completed evaluation of that benchmark and style (the newest of any status when
none completed) and pairs it with a base-model run, in this order:

1. its base-model twin (``parent`` = the adapter run), when that completed;
2. else the newest completed run without an adapter of the same model whose settings give the same
   instances and draw answers the same way (``pairing_key``: benchmark, prompt style, seed, max new tokens,
   samples, temperature, top-p, and for the grid its problem types, difficulties and instances per cell);
3. else a twin or matching run that has not completed, shown as such: a run that is queued, running,
   stopped, interrupted or failed never gives a final number.

A base run pairs only if it holds the adapter run's instances: the same sample keys (all of them once the
adapter run completed), each with the same prompt, since a problem generator changed between two runs would
ask other things under the same keys. A completed candidate that differs is refused and the row says why.
Fixed and broken count samples, as ``evaluate.compare`` does (same instance and sample number): base failed
and adapter passed, and the reverse. Every number names the run it comes from.
"""

from __future__ import annotations

import os

from .evaluate import EvalSettings, compare, summarize
from .store import ACTIVE, Store

ROWS = (("grid", "contract"), ("grid", "terse"), ("grid", "stub"), ("grid", "stdio"), ("humaneval", "contract"))
MEASURES = {("grid", "contract"): "training template", ("grid", "terse"): "transfer",
            ("grid", "stub"): "transfer", ("grid", "stdio"): "transfer", ("humaneval", "contract"): "forgetting"}
LEGEND = ("grid · contract asks in the training template (what SFT taught); grid · terse, stub and stdio ask the "
          "same instances in other words (transfer); where this store holds the adapter's training run, the measures "
          "column says what its traces taught of each style (in training, a held-out wording, a held-out style); "
          "HumanEval lies outside the training data (forgetting). "
          "pass@1 with its 95% interval; change in percentage points; fixed: the base model failed and the "
          "adapter passed the same instance (and sample number, when several are drawn); broken: the reverse.")
COLUMNS = ["row", "measures", "base pass@1", "adapter pass@1", "change", "fixed", "broken", "runs", "note"]


def row_label(benchmark: str, style: str) -> str:
    return f"grid · {style}" if benchmark == "grid" else "HumanEval"


def _place(path: str) -> str:
    """An adapter directory as one spelling (relative paths resolve against the current directory)."""
    return os.path.realpath(os.path.expanduser(path))


def _cell(run: dict) -> tuple[str, str]:
    settings = run["settings"]
    return settings.get("benchmark", "grid"), settings.get("prompt_style", "contract")


def pairing_key(run: dict) -> tuple:
    """What must agree for two evaluation runs to have asked the same instances and drawn answers the same way
    (stored settings an older version lacked read as their defaults)."""
    s = EvalSettings.from_dict(run["settings"])
    grid = (tuple(sorted(s.problems)), tuple(sorted(s.difficulties)), s.per_cell) if s.benchmark == "grid" else ()
    return (run.get("model"), s.benchmark, s.prompt_style, s.seed, *grid, s.max_new_tokens, s.samples,
            s.temperature, s.top_p if s.temperature else 1.0)


def _key(sample: dict) -> tuple:
    return sample["problem"], sample["difficulty"], sample["seed"], sample["idx"], sample.get("sample", 0)


def instances_differ(adapter_samples: list[dict], base_samples: list[dict], complete: bool = True) -> str | None:
    """None when the base run holds the adapter run's samples (the same keys, every one once the adapter run is
    ``complete``) with the same prompts; else why not, in words."""
    mine = {_key(s): s["prompt"] for s in adapter_samples}
    theirs = {_key(s): s["prompt"] for s in base_samples}
    missing = len(mine.keys() - theirs.keys())
    extra = len(theirs.keys() - mine.keys()) if complete else 0
    reworded = sum(theirs[k] != prompt for k, prompt in mine.items() if k in theirs)
    if not (missing or extra or reworded):
        return None
    parts = [f"{missing} of the adapter's samples missing" if missing else "",
             f"{extra} samples the adapter run lacks" if extra else "",
             f"{reworded} prompts worded differently" if reworded else ""]
    return "other instances (" + ", ".join(p for p in parts if p) + ")"


def _side(run: dict, samples: list[dict]) -> dict:
    """One run's part of a row: its numbers when it completed, else only how far it got."""
    side = {"run": run["id"], "name": run.get("name") or "", "status": run["status"], "judged": len(samples)}
    if run["status"] != "completed" or not samples:
        return side | {"progress": run.get("progress")}
    summary = summarize(samples)
    k = summary["pass_at_k"]
    return side | {"n": summary["n"], "solved": summary["solved"], "instances": k["instances"],
                   "pass@1": k["pass@1"], "ci": k["ci"]["pass@1"]}


def computed_in(run: dict) -> str:
    """The dtype a run's answers were computed in; runs from before ``--dtype`` stored none and were float32."""
    return (run.get("settings") or {}).get("dtype_used") or "float32"


def _base_for(store: Store, run: dict, samples: list[dict], bases: list[dict]) -> tuple:
    """(base run, its samples, how it was paired, refusals) for an adapter run, by the order in the module
    docstring; the base run is None when nothing pairs, and not completed when only such a run is there."""
    complete = run["status"] == "completed"
    twins = sorted((c for c in store.children(run["id"]) if c["kind"] == "eval"), key=lambda r: -r["id"])
    key = pairing_key(run)
    matches = [b for b in bases if b["id"] not in {t["id"] for t in twins} and pairing_key(b) == key]
    # a base run computed in the adapter run's dtype first (bf16 and fp32 answers differ now and then), else the rest
    matches.sort(key=lambda b: computed_in(b) != computed_in(run))
    waiting, refused = None, []
    for how, candidate in [("twin", t) for t in twins] + [("same settings", m) for m in matches]:
        if candidate["status"] != "completed":
            waiting = waiting or (candidate, how)
            continue
        theirs = store.samples(candidate["id"], light=True)
        why = instances_differ(samples, theirs, complete)
        if why is None:
            return candidate, theirs, how, refused
        refused.append(f"base run #{candidate['id']} refused: {why}")
    if waiting:
        return waiting[0], store.samples(waiting[0]["id"], light=True), waiting[1], refused
    return None, [], None, refused


def _row(store: Store, cell: tuple[str, str], runs: list[dict], bases: list[dict]) -> dict:
    row = {"row": row_label(*cell), "benchmark": cell[0], "style": cell[1], "measures": MEASURES[cell],
           "adapter": None, "base": None, "paired_by": None, "change": None, "fixed": None, "broken": None,
           "final": False, "notes": []}
    if not runs:
        row["notes"].append("not evaluated with this adapter")
        return row
    done = [r for r in runs if r["status"] == "completed"]
    chosen = done[0] if done else runs[0]
    row["notes"] += [f"newer run #{r['id']} is {r['status']}" for r in runs
                     if r["id"] > chosen["id"] and r["status"] in ACTIVE]
    samples = store.samples(chosen["id"], light=True)  # outcomes and prompts: the tests are not needed here
    row["adapter"] = _side(chosen, samples)
    base, theirs, how, refused = _base_for(store, chosen, samples, bases)
    row["notes"] += refused
    if base is None:
        if not refused:
            row["notes"].append("no base-model run with the same settings")
        return row
    row["base"], row["paired_by"] = _side(base, theirs), how
    if computed_in(base) != computed_in(chosen):
        row["notes"].append(f"the base run computed in {computed_in(base)}, the adapter run in {computed_in(chosen)}")
    if "pass@1" in row["adapter"] and "pass@1" in row["base"]:
        diff = compare(theirs, samples)
        row.update(change=100 * (row["adapter"]["pass@1"] - row["base"]["pass@1"]), fixed=len(diff["fixed"]),
                   broken=len(diff["broken"]), final=True)
    return row


def adapters(store: Store) -> list[dict]:
    """Every adapter directory with evaluation runs, newest evaluation first: {"adapter", "name", "label",
    "runs"}; the name (the directory's) adds the training run that wrote it, when this store has one."""
    evals = store.runs(kind="eval", limit=100_000)
    trained = {_place(r["adapter"]): r for r in store.runs(kind="train", limit=100_000) if r.get("adapter")}
    found: dict[str, dict] = {}
    for run in evals:
        if run.get("adapter"):
            place = _place(run["adapter"])
            entry = found.setdefault(place, {"adapter": place, "runs": 0})
            entry["runs"] += 1
    for place, entry in found.items():
        train = trained.get(place)
        origin = f" (training run #{train['id']} {train.get('name') or ''}, {train['model']})" if train else ""
        entry["name"] = os.path.basename(place) + origin
        entry["label"] = f"{entry['name']}: {entry['runs']} evaluation run(s)"
    return list(found.values())


def headline(rows: list[dict]) -> str:
    """The change per row in one line, final rows only: 'training template +45.5 pts; transfer: terse +3.6 ...'."""
    final = [r for r in rows if r["final"]]
    if not final:
        return "no row has both runs completed yet"
    parts = {}
    for row in final:
        name = row["style"] if row["measures"].startswith(("transfer", "in training")) else row["row"]
        parts.setdefault(row["measures"], []).append(f"{name} {row['change']:+.1f} pts")
    return "; ".join(f"{measures}: {', '.join(items)}" for measures, items in parts.items())


def verdict(rows: list[dict]) -> str:
    """What the rows say in words: whether the adapter learned the template or the skill (the transfer rows: every
    other wording gains 10 points or more, none gains 5, or some), and what it forgot (HumanEval problems lost),
    naming what is not measured yet."""
    final = [r for r in rows if r["final"]]
    taught = [r for r in final if not r["measures"].startswith(("transfer", "forgetting"))]
    transfer = [r for r in final if r["measures"].startswith("transfer")]
    parts = []
    if taught:
        parts.append(", ".join(f"{r['style']} {r['change']:+.1f} pts" for r in taught) + " where it was trained")
    if transfer:
        good = [r["style"] for r in transfer if r["change"] >= 10]
        flat = [r["style"] for r in transfer if r["change"] < 10]
        if not flat:
            parts.append(f"learned the skill: every other wording gains 10 pts or more ({', '.join(good)})")
        elif all(r["change"] < 5 for r in transfer):
            parts.append(f"learned the template: no other wording gains 5 pts ({', '.join(flat)})")
        else:
            parts.append(f"learned part of the skill: it transfers to {', '.join(good)}, not to {', '.join(flat)}")
    missing = [r["style"] if r["benchmark"] == "grid" else "HumanEval" for r in rows if not r["final"]]
    forgetting = [r for r in final if r["measures"] == "forgetting"]
    for r in forgetting:
        lost = r["base"]["solved"] - r["adapter"]["solved"]
        parts.append(f"forgot {lost} HumanEval problem{'s' if lost != 1 else ''}" if lost > 0 else
                     f"forgot nothing on HumanEval ({-lost:+d} problems)")
    if missing:
        parts.append("not measured yet: " + ", ".join(missing))
    return "; ".join(parts) or "nothing measured against the base model yet"


def learned_vs_forgot(store: Store, adapter: str) -> list[dict]:
    """One row per ``ROWS`` entry for the adapter in directory ``adapter``: the adapter run and the base run
    used ({"run", "status", ...; "pass@1", "ci", "solved", "n" once completed}), how they were paired, the
    change in percentage points and the fixed and broken counts (None unless both runs completed and pair),
    ``final`` and ``notes``. Raises ValueError when the store has no evaluation of that adapter."""
    evals = store.runs(kind="eval", limit=100_000)  # newest first
    place = _place(adapter)
    mine = [r for r in evals if r.get("adapter") and _place(r["adapter"]) == place and not r.get("parent")]
    if not mine:
        known = ", ".join(a["adapter"] for a in adapters(store)) or "none"
        raise ValueError(f"no evaluation of the adapter {adapter} in {store.path} (adapters evaluated: {known})")
    bases = [r for r in evals if not r.get("adapter")]
    rows = [_row(store, cell, [r for r in mine if _cell(r) == cell], bases) for cell in ROWS]
    taught = wording_taught(store, place)
    for row in rows:  # what each grid row measures, from what this adapter's own traces taught
        if row["benchmark"] == "grid" and row["style"] in taught:
            row["measures"] = TAUGHT[taught[row["style"]]]
    return rows


# a style's row, by what the adapter's traces taught of it (``traces.wording_coverage``)
TAUGHT = {"evaluation wording": "in training (the evaluation's wording)",
          "other wordings only": "transfer: held-out wording", "held out": "transfer: held-out style"}


def wording_taught(store: Store, place: str) -> dict[str, str]:
    """Per prompt style, what the training run that wrote the adapter in ``place`` taught of it (its summary's
    ``traces.wording``); {} when this store has no such run or it predates the record (the rows then keep the
    reference recipe's reading: contract is the training template, the rest transfer)."""
    name = os.path.basename(place)
    for run in store.runs(kind="train", limit=100_000):
        settings = run.get("settings") or {}
        imported = settings.get("imported") or {}
        # an imported run whose adapter did not travel: its evaluations name the folder it had, <run>-<experiment>
        same = (run.get("adapter") and _place(run["adapter"]) == place) or \
            (not run.get("adapter") and imported and f"{imported.get('run')}-{settings.get('experiment')}" == name)
        if same:
            return ((run.get("summary") or {}).get("traces") or {}).get("wording") or {}
    return {}


def side_text(side: dict | None) -> str:
    """A run's pass@1 as 'solved/n pct (95% CI)', or how far a run that has not completed got."""
    if side is None:
        return "–"
    if "pass@1" not in side:
        progress = f" {side['progress']:.0%}," if side.get("progress") else ""
        return f"{side['status']}:{progress} {side['judged']} judged, not final"
    low, high = side["ci"]
    return f"{side['solved']}/{side['n']} {side['pass@1']:.1%} ({low:.0%}-{high:.0%})"


def runs_text(row: dict) -> str:
    """Which runs a row's numbers come from."""
    if row["adapter"] is None:
        return ""
    base = f" vs base #{row['base']['run']} ({row['paired_by']})" if row["base"] else ""
    return f"#{row['adapter']['run']}{base}"


def table_rows(rows: list[dict]) -> list[list[str]]:
    """The rows as text, one list per row in ``COLUMNS`` order (the app's table and the command line's)."""
    return [[row["row"], row["measures"], side_text(row["base"]), side_text(row["adapter"]),
             f"{row['change']:+.1f} pts" if row["final"] else "", str(row["fixed"]) if row["final"] else "",
             str(row["broken"]) if row["final"] else "", runs_text(row), "; ".join(row["notes"])] for row in rows]
