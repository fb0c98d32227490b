"""Command line: evaluation (``eval``: the grid or HumanEval, of a model or of completions; ``compare``: learned vs forgot) and its tables."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from .. import problems
from ..distributed import is_main_process
from ..evaluate import BENCHMARKS, EvalSettings, by_style, compare, create_eval_runs, load_completions, reference_items, run_scoring, style_table, style_tag
from ..problems.styles import ALL as ALL_STYLES, STYLES
from ..sandbox import Limits
from ..models import DEFAULT_MODEL, DTYPES
from ..store import Store, default_path
from .common import _bar, _difficulty, _positive, _print_json, _progress


# ------------------------------------------------------------------------------------------ eval

def _eval_settings(args) -> EvalSettings:
    humaneval = args.benchmark == "humaneval"  # its own problems: the grid's options do not apply
    settings = EvalSettings(benchmark=args.benchmark,
                            problems=["humaneval"] if humaneval else args.problems or list(problems.PROBLEM_TYPES),
                            difficulties=[1] if humaneval else (args.difficulties
                                                                or list(problems.REFERENCE_DIFFICULTIES)),
                            seed=0 if humaneval else args.seed, per_cell=args.per_cell, timeout_s=args.timeout, model=args.model,
                            adapter=args.adapter, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                            samples=args.samples, temperature=args.temperature, top_p=args.top_p,
                            backend=args.backend, device=args.device, dtype=args.dtype,
                            prompt_style=args.prompt_style)
    settings.check()
    return settings


def _report(args, store: Store, run_id: int, summary: dict, samples: list[dict], model: str, errors=(),
            skipped: list[dict] | None = None) -> dict:
    """Print a run's table (text mode) and return its JSON report (with ``skipped``: the input lines not
    scored, each with its line number and reason)."""
    sandbox = store.get_run(run_id)["settings"].get("sandbox") or {}
    if sandbox.get("warning"):  # loud in both modes: these numbers came from an unconfined sandbox
        print(f"WARNING: {sandbox['warning']}", file=sys.stderr)
    if not args.json:
        drawn = EvalSettings.from_dict(store.get_run(run_id)["settings"]).sampling()
        print(f"\n== {model} (run {run_id}{drawn})")
        _print_table(summary)
        print(f"{summary['solved']}/{summary['n']} solved ({summary['accuracy']:.1%}, 95% CI "
              f"{summary['accuracy_ci'][0]:.0%}-{summary['accuracy_ci'][1]:.0%}), partial credit "
              f"{summary['partial_credit']:.1%}; stored as run {run_id} in {store.path}")
        k = summary.get("pass_at_k")
        if k and k["samples_per_instance"]["max"] > 1:  # with one sample each, pass@1 is the accuracy above
            ci = k.get("ci", {})
            print(f"{k['instances']} instances, {k['samples_per_instance']['min']}-{k['samples_per_instance']['max']} "
                  "samples each; " + ", ".join(f"{m} {v:.1%}" + (f" (95% CI {ci[m][0]:.0%}-{ci[m][1]:.0%})" if m in ci
                                                                  else "")
                                               for m, v in k.items() if m.startswith("pass@")))
        if summary.get("cut_off"):
            print(f"warning: {summary['cut_off']} answer(s) hit the max-new-tokens cap before finishing and may be "
                  "incomplete; re-run with a larger --max-new-tokens", file=sys.stderr)
    return {
        "run": run_id, "db": store.path, "model": model, "errors": list(errors), "sandbox": sandbox,
        **({"skipped": skipped} if skipped is not None else {}),
        "totals": {k: summary[k] for k in ("n", "solved", "accuracy", "accuracy_ci", "partial_credit", "cut_off")},
        "per_problem": summary["per_problem"], "per_difficulty": summary["per_difficulty"],
        "failures": summary["failures"], **({"pass_at_k": summary["pass_at_k"]} if "pass_at_k" in summary else {}),
        "samples": [{"problem": s["problem"], "difficulty": s["difficulty"], "seed": s["seed"],
                     "index": s["idx"], "sample": s.get("sample", 0), "status": s["status"], "passed": s["passed"], "total": s["total"],
                     "cut_off": bool(s.get("cut_off")),
                     "tests": [t["status"] for t in s["tests"]]} for s in samples],
    }


def cmd_eval(args) -> int:
    if args.model or args.resume or args.run:
        return cmd_eval_model(args)
    if not is_main_process():  # scoring given answers is not sharded: the main process of a launch does it all
        return 0
    if (args.samples, args.temperature, args.top_p) != (1, 0.0, 1.0):
        raise ValueError("--samples, --temperature and --top-p apply to --model only (a completions file brings "
                         "its own samples)")
    settings = _eval_settings(args)
    extras, skipped = None, None
    if args.reference:
        items = [item for each in settings.per_style() for item in reference_items(each)]
        model, name = "reference", args.name or "reference solutions"
    else:  # a line's own "style" wins; without one it answers --prompt-style (contract for 'all')
        default = "contract" if settings.prompt_style == ALL_STYLES else settings.prompt_style
        items, extras, skipped = load_completions(args.completions, settings.benchmark, default)
        model, name = f"completions:{args.completions}", args.name or f"completions {args.completions}"
        for line in skipped:
            print(f"warning: line {line['line']} skipped: {line['reason']}", file=sys.stderr)
        if not items:
            print(f"error: no usable completions in {args.completions}", file=sys.stderr)
            return 2
    store = Store(args.db)
    parts = by_style(items, extras)  # one run per prompt style, so a sample's key stays unique within its run
    several, group, results = len(parts) > 1 or settings.prompt_style == ALL_STYLES, None, {}
    for style, (part, part_extras) in parts.items():
        stored = asdict(settings) | {"prompt_style": style, "source": model} | ({"style_group": group} if group else {})
        results[style] = run_scoring(store, part, name=name + style_tag(style, several), model=model, settings=stored,
                                     limits=settings.limits(), extras=part_extras,
                                     progress=_progress(not args.json and sys.stderr.isatty()))
        if several and group is None:  # the first run's id ties the styles of this evaluation together
            group = results[style]["run"]
            store.update_run(group, settings=store.get_run(group)["settings"] | {"style_group": group})
    errors = [f"line {line['line']}: {line['reason']}" for line in skipped or []]
    reports = {style: _report(args, store, r["run"], r["summary"], r["samples"], model + style_tag(style, several),
                              errors if not several else (), skipped if not several else None)
               for style, r in results.items()}
    if several:
        table = style_table({style: r["summary"] for style, r in results.items()})
        if not args.json:
            _print_style_table(table)
        report = {"styles": reports, "style_table": table, "errors": errors,
                  **({"skipped": skipped} if skipped is not None else {})}
    else:
        report = next(iter(reports.values()))
    if args.json:
        _print_json(report)
    if args.reference:
        return 0 if all(r["summary"]["solved"] == r["summary"]["n"] for r in results.values()) else 1
    return 1 if skipped else 0


def _eval_passes(args, store: Store) -> list[tuple[int, EvalSettings, int | None]]:
    """What a model evaluation command does: (adapter run, its settings, its base twin) per prompt style still to
    finish, with their runs created (a new evaluation) or found and readied (``--resume``, ``--run``)."""
    from ..evaluate import style_runs
    if args.resume or args.run:  # an interrupted run, or one queued by the app: settings come from its row
        run = store.get_run(args.resume or args.run)
        if run["kind"] == "eval" and run.get("parent"):  # a base-model twin resumes with its adapter run
            run = store.get_run(run["parent"])
        if run["kind"] != "eval" or not run["settings"].get("model"):
            raise ValueError(f"run {run['id']} is not a model evaluation")
        passes = []  # (adapter run, its settings, its base twin) per prompt style still to finish
        for head in style_runs(store, run["id"]):  # an evaluation in several prompt styles goes on with all
            if args.resume and head["status"] in ("running", "queued"):
                raise ValueError(f"run {head['id']} is still {head['status']}")
            base = [r for r in store.children(head["id"]) if r["kind"] == "eval" and r["status"] != "completed"]
            base_run = base[0]["id"] if base else None
            if head["status"] != "completed" or base_run is not None:
                passes.append((head["id"], EvalSettings.from_dict(head["settings"]), base_run))
        if not passes:
            raise ValueError(f"run {run['id']} is already complete")
        if args.resume:  # an earlier stop request must not end the resumed run at once
            for run_id, _, base_run in passes:
                for rid in [run_id] + ([base_run] if base_run else []):
                    store.update_run(rid, stop_requested=None)
    else:
        settings = _eval_settings(args)
        ids = create_eval_runs(store, settings, compare_base=args.compare_base, name=args.name)
        step = 2 if args.compare_base else 1  # adapter run, then its base twin, per prompt style
        passes = [(ids[k], each, ids[k + 1] if args.compare_base else None)
                  for k, each in zip(range(0, len(ids), step), settings.per_style())]
    return passes


def cmd_eval_model(args) -> int:
    from ..distributed import evaluate_sharded, processes
    from ..jobs import stop_check
    from ..evaluate import style_runs
    procs = processes(args.device)  # one process, or one of a launch's (accelerate launch, torchrun)
    if not procs.is_main:  # another process of a launch: its shard of each pass; the main process stores them
        for run_id, settings, base_run in procs.from_main(None):
            completed = evaluate_sharded(None, run_id, settings, base_run=base_run, log=lambda m: None)
            if len(completed) < 1 + bool(base_run):
                return 1  # a pass did not complete: the main process ends here too
        return 0
    store = Store(args.db)
    passes = procs.from_main(lambda: _eval_passes(args, store))
    later = [rid for run_id, _, base_run in passes[1:] for rid in [run_id] + ([base_run] if base_run else [])]
    for rid in later:  # the other prompt styles wait their turn, tied to this process so that a crash shows
        store.update_run(rid, status="queued", error=None, finished=None,
                         message="waiting for the previous prompt style")
        store.attach_process(rid)
    for k, (run_id, settings, base_run) in enumerate(passes):  # one style after another (each loads the model)
        bar = _bar(not args.json and sys.stderr.isatty(), "generating" + style_tag(settings.prompt_style))
        try:
            evaluate_sharded(store, run_id, settings, base_run=base_run,
                             # also between batches; SIGTERM interrupts one
                             should_stop=stop_check(store, run_id),
                             progress=bar.update_to if bar is not None else None,
                             log=lambda m: print(m, file=sys.stderr))
        finally:
            if bar is not None:
                bar.close()
        status = {rid: store.get_run(rid)["status"] for rid in [run_id] + ([base_run] if base_run else [])}
        if any(s != "completed" for s in status.values()):
            for rid in [r for p in passes[k + 1:] for r in (p[0], p[2]) if r]:
                store.finish_run(rid, "stopped", error="not started: an earlier prompt style did not finish; "
                                                       "run it again to resume", message="stopped before its turn")
            print(f"not finished ({', '.join(f'run {r}: {s}' for r, s in status.items())}); resume with: "
                  f"python -m algodistill eval --resume {passes[0][0]}", file=sys.stderr)
            return 1
    heads = style_runs(store, passes[0][0])
    out, done = {}, {p[0] for p in passes}
    for head in heads:
        run_id = head["id"]
        twins = [r["id"] for r in store.children(run_id) if r["kind"] == "eval"]
        base_run = twins[0] if twins else None
        settings = EvalSettings.from_dict(store.get_run(run_id)["settings"])
        reports = {}
        for key, rid in (("base", base_run), ("adapter" if base_run else "run", run_id)):
            if rid:
                run = store.get_run(rid)
                label = run["model"] + (f" + {run['adapter']}" if run.get("adapter") else "")
                reports[key] = _report(args, store, rid, run["summary"], store.samples(rid),
                                       label + style_tag(settings.prompt_style))
        diff = compare(store.samples(base_run), store.samples(run_id)) if base_run else None
        out[settings.prompt_style] = reports["run"] if not base_run else dict(reports, comparison=diff)
        if diff and not args.json:
            print(f"\nadapter vs base on the same {diff['n']} problems: {diff['solved_b']} vs {diff['solved_a']} "
                  f"({diff['delta']:+d}); fixed {len(diff['fixed'])}, broken {len(diff['broken'])}")
        if settings.adapter and run_id in done and (len(heads) == 1 or settings.prompt_style == "contract"):
            from ..train_sft import add_eval_to_card
            asked = "" if settings.prompt_style == "contract" else f", prompt style {settings.prompt_style}"
            add_eval_to_card(settings.adapter, store.get_run(run_id)["summary"], run_id,
                             grid=settings.describe() + asked,
                             base=(base_run, store.get_run(base_run)["summary"]) if base_run else None)
    if len(heads) == 1:
        if args.json:
            _print_json(next(iter(out.values())))
        return 0
    table = style_table({h["settings"].get("prompt_style"): store.get_run(h["id"])["summary"] for h in heads})
    if args.json:
        _print_json({"styles": out, "style_table": table})
    else:
        _print_style_table(table)
    return 0


def cmd_compare(args) -> int:
    """Learned vs forgot: an adapter against its base model, the grid in each prompt style and HumanEval."""
    import textwrap

    from ..learned import COLUMNS, LEGEND, headline, learned_vs_forgot, table_rows
    store = Store(args.db)
    rows = learned_vs_forgot(store, args.adapter)
    if args.json:
        _print_json({"adapter": args.adapter, "db": store.path, "legend": LEGEND, "rows": rows})
        return 0
    text = table_rows(rows)
    shown = COLUMNS[:-1]  # the notes follow the table, one line per row that has any
    widths = [max(len(c), *(len(r[k]) for r in text)) for k, c in enumerate(shown)]
    print(f"learned vs forgot: {args.adapter} ({store.path})")
    for cells in [shown] + [r[:-1] for r in text]:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip())
    for r in text:
        if r[-1]:
            print(f"{r[0]}: {r[-1]}")
    print(textwrap.fill(headline(rows), 120) + "\n" + textwrap.fill(LEGEND, 120))
    return 0


def _print_style_table(table: dict) -> None:
    """Prompt style x problem type, solved/n: where a skill depends on the wording it was asked in."""
    styles = table["styles"]
    print("\nsolved per prompt style x problem type")
    print(f"{'problem':<18}" + "".join(f" {s:>9}" for s in styles))
    for p in table["problems"]:
        print(f"{p:<18}" + "".join(f" {'%d/%d' % tuple(table['solved'][s][p]) if p in table['solved'][s] else '-':>9}"
                                   for s in styles))
    print(f"{'accuracy':<18}" + "".join(f" {table['accuracy'][s]:>9.1%}" for s in styles))


def _print_table(summary: dict) -> None:
    k = summary.get("pass_at_k") or {}
    several = k.get("samples_per_instance", {}).get("max", 1) > 1  # pass@k columns only when they say more
    metrics = [m for m in k if m.startswith("pass@")] if several else []
    per = k.get("per_problem", {})
    print(f"{'problem':<18} {'solved':>7} {'partial':>8}" + "".join(f" {m:>8}" for m in metrics))
    for name, group in summary["per_problem"].items():
        print(f"{name:<18} {group['solved']:>3}/{group['n']:<3} {group['partial_credit']:>8.0%}"
              + "".join(f" {per[name][m]:>8.0%}" if m in per.get(name, {}) else f" {'-':>8}" for m in metrics))
    print("difficulty " + "  ".join(f"{d}: {g['solved']}/{g['n']}" for d, g in summary["per_difficulty"].items()))


def add_parsers(sub) -> None:
    """This family's subcommands on the top parser's ``sub``."""
    e = sub.add_parser("eval", help="score the problem-type x difficulty grid (or HumanEval)")
    e.add_argument("--benchmark", choices=BENCHMARKS, default="grid",
                   help="grid: the problem-type x difficulty grid (default); humaneval: HumanEval's 164 problems "
                        '(completions lines: {"task_id": "HumanEval/N", "completion"})')
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", action="store_true", help="score the reference solutions (must be 100%%)")
    source.add_argument("--completions", metavar="FILE",
                        help='JSONL of {"problem", "difficulty", "seed", "index", "sample", "completion"}, one '
                             'line per sample (sample optional: 0, 1, 2 ... per instance in file order); exit 1 '
                             'if a line is skipped')
    source.add_argument("--model", metavar="SPEC",
                        help=f"generate with a model: hub id (e.g. {DEFAULT_MODEL}), local dir, .gguf file, "
                             "or an offline name (smollm2-135m)")
    source.add_argument("--resume", type=int, metavar="RUN", help="finish an interrupted or stopped model evaluation")
    source.add_argument("--run", type=int, help=argparse.SUPPRESS)  # a run queued by the app
    e.add_argument("--adapter", metavar="DIR", help="a LoRA adapter directory (from `train`) to apply to --model")
    e.add_argument("--compare-base", action="store_true",
                   help="with --adapter: also evaluate the base model on the same problems and show the change")
    e.add_argument("--max-new-tokens", type=_positive, default=EvalSettings.max_new_tokens,
                   help="generation length cap (default %(default)s)")
    e.add_argument("--batch-size", type=int, default=0, help="prompts per batch (default 0: automatic)")
    e.add_argument("--samples", type=int, default=1, metavar="K",
                   help="answers per instance, for pass@k (default 1); more than 1 needs --temperature > 0")
    e.add_argument("--temperature", type=float, default=0.0, metavar="T",
                   help="0: greedy (default); > 0: sampling, seeded per (instance, sample) from --seed, so the "
                        "same command draws the same answers and a resumed run only the missing ones")
    e.add_argument("--top-p", type=float, default=1.0, metavar="P",
                   help="with sampling: draw from the likeliest tokens up to this probability mass, in (0, 1] "
                        "(default 1: all)")
    e.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto",
                   help="auto uses vLLM when installed and on a GPU, else transformers")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    e.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="what the model computes in: auto is bfloat16 on a GPU and on a CPU with native bf16 (AMX "
                        "or AVX512-BF16; ~2.7x faster than float32 there), else float32 (default auto); stored "
                        "with the run")
    e.add_argument("--problems", nargs="+", choices=problems.PROBLEM_TYPES, metavar="TYPE",
                   help="problem types (default: all 11)")
    e.add_argument("--difficulties", nargs="+", type=_difficulty, metavar="D", help="default: 1 3 5 7 10")
    e.add_argument("--seed", type=int, default=problems.EVAL_SEED, help="default %(default)s")
    e.add_argument("--per-cell", type=_positive, default=1, help="instances per cell (default 1)")
    e.add_argument("--prompt-style", choices=STYLES + (ALL_STYLES,), default="contract",
                   help="how the prompts ask: contract (the grid's own, default), terse (one sentence), stub (a "
                        "docstring stub with other names), stdio (a program reading stdin); all: one run per style "
                        "and a style x type table. Completions lines may carry their own \"style\"")
    e.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per test (default %(default)s)")
    e.add_argument("--name", help="a name for the stored run")
    e.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)


    c = sub.add_parser("compare", help="learned vs forgot: an adapter against its base model, per prompt style and "
                                       "on HumanEval",
                       description="Learned vs forgot: for an adapter, the grid in each prompt style (contract is the "
                       "training template; terse, stub and stdio measure transfer) and HumanEval (forgetting), each "
                       "the adapter's newest completed evaluation against a base-model run on the same instances "
                       "(its twin from --compare-base, else the newest completed base run of the same model and "
                       "settings): pass@1 with 95% intervals, the change in points, the samples fixed and broken, "
                       "and the run ids. A run not completed is shown as such, without numbers.")
    c.add_argument("--adapter", required=True, metavar="DIR", help="the adapter directory its evaluations name")
    c.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)
