"""Command line: python -m algodistill problems|traces|train|grpo|eval|compare|export|import (each has --json).

Exit codes: 0 success; 1 the work ran but something failed (a rejected trace, an unsolved reference
problem, a completion line skipped as malformed or as a repeated sample number); 2 bad usage or unreadable
input (e.g. a completions file with no usable line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from dataclasses import asdict
from pathlib import Path

from . import problems
from .distributed import is_main_process
from .evaluate import (BENCHMARKS, EvalSettings, by_style, compare, create_eval_runs, load_completions,
                       reference_items, run_scoring, style_table, style_tag)
from .problems.styles import ALL as ALL_STYLES, STYLES, choose as styles_named, styled
from .sandbox import Limits, SandboxUnavailable
from .settings import add_flags, from_flags
from .models import DEFAULT_MODEL, DTYPES, ModelUnavailable
from .store import Store, default_path


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _progress(enabled: bool):
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rverified {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


# ------------------------------------------------------------------------------------------ problems

def cmd_problems_list(args) -> int:
    rows = [{"problem": name, "entry_point": p.entry_point, "signature": p.signature,
             "difficulty_scale": {str(d): p.scale(d) for d in problems.REFERENCE_DIFFICULTIES}}
            for name, p in problems.REGISTRY.items()]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['problem']:<18} {row['signature']}")
    return 0


def cmd_problems_show(args) -> int:
    instance = styled(problems.make_instance(args.type, args.difficulty, args.seed, args.index), args.prompt_style)
    if args.json:
        _print_json(instance.to_dict(with_reference=args.reference))
        return 0
    print(instance.prompt)
    print(f"\n# hidden tests ({instance.problem}, difficulty {instance.difficulty}, seed {instance.seed}, "
          f"index {instance.index})")
    for test in instance.tests:
        call, expected = test.call_repr(instance.entry_point), repr(test.expected)
        if instance.style == "stdio":
            call, expected = "stdin: " + json.dumps(test.args), json.dumps(test.expected)
        print(f"{call if len(call) < 160 else call[:150] + ' ...'}  ->  "
              f"{expected if len(expected) < 80 else expected[:70] + ' ...'}")
    if args.reference:
        print("\n# reference solution\n" + instance.reference)
    return 0


# ------------------------------------------------------------------------------------------ traces

def cmd_traces_verify(args) -> int:
    from .traces import summary, verify_file
    checks = verify_file(args.file, Limits(timeout_s=args.timeout))
    result = summary(checks)
    if args.json:
        _print_json(dict(result, file=str(args.file), traces=[c.to_dict() for c in checks]))
    else:
        for c in checks:
            mark = "kept    " if c.kept else "REJECTED"
            print(f"{mark} line {c.line:<4} {c.id or '-':<28} {c.reason}")
            for warning in c.warnings:
                print(f"         warning: {warning}")
        print(f"\n{result['kept']} kept, {result['rejected']} rejected, of {result['total']} in {args.file}")
    return 0 if result["total"] and not result["rejected"] else 1


def cmd_traces_generate(args) -> int:
    """Rejection sampling from a teacher (``teacher.py``); exit 0 with traces kept, 1 stopped or none kept, 2 for
    a teacher that cannot be used (authentication, unreachable endpoint, unknown model)."""
    import textwrap

    from .teacher import TeacherSettings, generate_traces, headline, no_pass_line, pass_rate_table, run_job

    def log(message: str) -> None:
        print(message, file=sys.stderr)
    if args.run:  # a generation queued by the app: its settings come from its run row
        try:
            report = run_job(Store(args.db), args.run, log=log)
        finally:  # however it ended, the app's job queue moves on
            _start_next_job(args.db)
    else:
        if not args.teacher or not args.out:
            raise ValueError("traces generate needs --teacher and --out")
        settings = TeacherSettings(
            teacher=args.teacher, out=args.out, base_url=args.base_url, api_key_env=args.api_key_env,
            problems=args.problems or list(problems.PROBLEM_TYPES),
            difficulties=args.difficulties or list(problems.REFERENCE_DIFFICULTIES), seed=args.seed,
            prompt_styles=[s for choice in args.prompt_styles for s in styles_named(choice)],
            per_cell=args.per_cell, samples=args.samples, temperature=args.temperature, top_p=args.top_p,
            max_new_tokens=args.max_new_tokens, concurrency=args.concurrency, retries=args.retries,
            request_timeout=args.request_timeout, timeout_s=args.timeout, batch_size=args.batch_size,
            backend=args.backend, device=args.device)
        bar = _bar(not args.json and sys.stderr.isatty(), "judged")
        try:
            report = generate_traces(settings, log=log,
                                     progress=(lambda s: bar.update_to(s["judged"], s["total"])) if bar else None)
        finally:
            if bar is not None:
                bar.close()
    if args.json:
        _print_json(report)
    else:
        header, rows = pass_rate_table(report)
        print("teacher pass rate (samples passed / drawn) per problem type x difficulty")
        widths = [max(len(cells[k]) for cells in [header] + rows) for k in range(len(header))]
        for cells in [header] + rows:
            print("  ".join(cell.ljust(width) if k == 0 else cell.rjust(width)
                            for k, (cell, width) in enumerate(zip(cells, widths))))
        print(textwrap.fill(headline(report), 120))
        if no_pass_line(report):
            print(textwrap.fill(no_pass_line(report), 120))
        if len(report["prompt_styles"]) > 1:
            print("per prompt style: " + ", ".join(
                f"{style} {c['passed']}/{c['drawn']} passed, {c['kept']} kept"
                for style, c in report["prompt_styles"].items()))
        if report["out"]:
            print(f"wrote {report['out']} ({report['kept']} traces); check it: python -m algodistill traces verify "
                  f"{report['out']}")
    if report["status"] == "failed":
        print(f"error: {report['error']}", file=sys.stderr)
        return 2
    return 0 if report["status"] == "completed" and report["kept"] else 1


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
    from .evaluate import style_runs
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
    from .distributed import evaluate_sharded, processes
    from .jobs import stop_check
    from .evaluate import style_runs
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
            from .train_sft import add_eval_to_card
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

    from .learned import COLUMNS, LEGEND, headline, learned_vs_forgot, table_rows
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


def _bar(enabled: bool, what: str):
    if not enabled:
        return None
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, done: int, total: int) -> None:
            self.total = total
            self.update(done - self.n)
    return Bar(desc=what, unit="problem", file=sys.stderr)


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


# ------------------------------------------------------------------------------------------ train

def _train_run(args, store: Store):
    """The run a train command trains (``jobs.training_run``): queued by the app (``--run``), resumed from its
    checkpoint (``--resume``), or new from the flags."""
    from .jobs import training_run
    from .train_sft import SFTSettings
    settings = None
    if not (args.run or args.resume):
        settings = from_flags(SFTSettings, args)  # a per-device batch of 0 is decided for the device
    return training_run(store, queued=args.run, resume=args.resume, settings=settings,
                        log=lambda m: print(m, file=sys.stderr))


def cmd_train(args) -> int:
    from .distributed import Follower, processes
    from .train_sft import run_training
    procs = processes(args.device)  # one process, or one of a launch's (accelerate launch, torchrun)
    if not procs.is_main:  # another process of a launch: the same training, the store and files left to the main one
        run_id, settings = procs.from_main(None)
        follower = Follower()
        with contextlib.redirect_stdout(sys.stderr):  # stdout: the main process's report alone
            run_training(follower, run_id, settings, resume=bool(args.resume), exit_when_stuck=True,
                         log=lambda m: None)
        return 0 if follower.finished.get(run_id, ("failed",))[0] == "completed" else 1
    store = Store(args.db)
    run_id, settings = procs.from_main(lambda: _train_run(args, store))
    print(f"run {run_id}: training {settings.model} on {settings.traces}", file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():  # stdout: JSON only
        summary = run_training(store, run_id, settings, resume=bool(args.resume), exit_when_stuck=True,
                               log=lambda m: print(m, file=sys.stderr),
                               progress_bar=not args.json and sys.stderr.isatty())
    return _training_report(args, store, run_id, settings, summary,
                            lambda: f"final loss {summary['final_loss']:.4f}")


def _training_report(args, store: Store, run_id: int, settings, summary: dict, outcome) -> int:
    """How a training run (SFT or GRPO) ended, as JSON or in words (``outcome()``: its figure when completed),
    and the exit status: 0 completed, 1 otherwise."""
    run = store.get_run(run_id)
    if args.json:
        _print_json({"run": run_id, "db": store.path, "status": run["status"], "adapter": run["adapter"],
                     "summary": summary})
    elif run["status"] == "completed":
        print(f"run {run_id} completed: {summary['steps']} steps, {outcome()}, {summary['train_seconds']:.0f} s; "
              f"adapter in {run['adapter']}")
        print(f"evaluate it: python -m algodistill eval --model {settings.model} --adapter {run['adapter']} "
              "--compare-base")
    else:
        print(f"run {run_id} {run['status']}: {run['error']}")
    return 0 if run["status"] == "completed" else 1

# ------------------------------------------------------------------------------------------ grpo

def cmd_grpo(args) -> int:
    """A GRPO run (``grpo.py``); afterwards, however it ended, the app's job queue moves on, as after train."""
    try:
        return _grpo(args)
    finally:
        _start_next_job(args.db)


def _grpo(args) -> int:
    from .grpo import GRPOSettings, run_grpo
    from .jobs import grpo_run
    store = Store(args.db)
    settings = None
    if not args.run:
        settings = from_flags(GRPOSettings, args)
        if args.batch_size is None:  # derived: one group per pass
            settings.batch_size = settings.num_generations
    run_id, settings = grpo_run(store, queued=args.run, settings=settings)
    start = f"the adapter {settings.adapter}" if settings.adapter else "a new LoRA"
    print(f"run {run_id}: GRPO of {settings.model} from {start}", file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():  # stdout: JSON only
        summary = run_grpo(store, run_id, settings, exit_when_stuck=True, log=lambda m: print(m, file=sys.stderr),
                           progress_bar=not args.json and sys.stderr.isatty())
    rewards = " -> ".join(f"{summary[k]:.3f}" for k in ("first_reward", "final_reward") if summary.get(k) is not None)
    return _training_report(args, store, run_id, settings, summary, lambda: f"mean reward {rewards or '-'}")


# ------------------------------------------------------------------------------------------ bundles

def cmd_export(args) -> int:
    from .bundle import export_bundle
    store = Store(args.db)
    if args.to_hub:
        return _push_to_hub(args, store)
    if not args.out:
        raise ValueError("say where the bundle goes (--out FILE.zip), or push an adapter with --to-hub USER/NAME")
    command = "python -m algodistill export " + " ".join(map(str, args.runs)) + \
        (" --adapter" if args.adapter else "") + (" --with-evals" if args.with_evals else "")
    result = export_bundle(store, args.runs, args.out, adapters=args.adapter, with_evals=args.with_evals,
                           command=command)
    if args.json:
        _print_json(dict(result, db=store.path))
        return 0
    manifest = result["manifest"]
    runs = ", ".join(f"#{r['id']} {r['kind']} {r['name'] or ''}".rstrip() for r in result["runs"])
    adapters = manifest["adapters"]
    print(f"wrote {result['path']}: {len(result['runs'])} run(s) ({runs}), {manifest['counts']['samples']} samples, "
          f"{manifest['counts']['metrics']} curve points" + (f"; the adapter of {', '.join(f'#{a}' for a in adapters)}"
                                                            if adapters else "; no adapter"))
    if args.adapter and not adapters:
        print("warning: --adapter: no training run in the bundle has a saved adapter here", file=sys.stderr)
    return 0


def _push_to_hub(args, store: Store) -> int:
    from .hub import push_adapter
    if len(args.runs) != 1 or args.out:
        raise ValueError("--to-hub pushes one training run's adapter: give one RUN and no --out")
    result = push_adapter(store, args.runs[0], args.to_hub, private=args.private)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        _print_json(result)
    else:
        print(f"pushed the adapter of run #{args.runs[0]} to {result['url']} ({', '.join(result['files'])})")
    return 0


def cmd_import(args) -> int:
    from .bundle import import_bundle, summary_line
    store = Store(args.db)
    report = import_bundle(store, args.bundle, demo=args.demo)
    if args.json:
        _print_json(report)
    else:
        print(summary_line(report) + f" Stored in {store.path}")
        for run_id, folder in report["adapters"].items():
            print(f"adapter of #{run_id}: {folder}")
    return 0


# ------------------------------------------------------------------------------------------ parser

def _difficulty(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10:
        raise argparse.ArgumentTypeError("difficulty must be from 1 to 10")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algodistill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("problems", help="list problem types or show one instance")
    psub = p.add_subparsers(dest="action", required=True)
    pl = psub.add_parser("list", help="the 11 problem types and what difficulty scales")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_problems_list)
    ps = psub.add_parser("show", help="one instance: prompt, entry point and hidden tests")
    ps.add_argument("type", choices=problems.PROBLEM_TYPES, metavar="TYPE", help=", ".join(problems.PROBLEM_TYPES))
    ps.add_argument("--difficulty", "-d", type=_difficulty, required=True, help="1..10")
    ps.add_argument("--seed", type=int, default=problems.EVAL_SEED, help="default %(default)s (evaluation)")
    ps.add_argument("--index", type=int, default=0, help="instance number within the cell (default 0)")
    ps.add_argument("--reference", action="store_true", help="include the reference solution")
    ps.add_argument("--prompt-style", choices=STYLES, default="contract",
                    help="the prompt as that style asks it (the tests are the same; default %(default)s)")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=cmd_problems_show)

    t = sub.add_parser("traces", help="teacher traces")
    tsub = t.add_subparsers(dest="action", required=True)
    tv = tsub.add_parser("verify", help="run every trace's code against its instance's tests")
    tv.add_argument("file", help="trace JSONL file (the bundled set: assets/traces/reference.jsonl)")
    tv.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per test (default %(default)s)")
    tv.add_argument("--json", action="store_true")
    tv.set_defaults(func=cmd_traces_verify)
    tg = tsub.add_parser(
        "generate", help="draw K answers per training instance from a teacher and keep the verified ones",
        description="Rejection sampling: ask a teacher for K answers (--samples) to each training instance of the "
        "chosen problem types x difficulties (seed 42; the evaluation seed is refused and an evaluation problem is "
        "never asked), judge every answer with the verifier in the sandbox, and keep those that pass every hidden "
        "test, less exact duplicates (the same code after extraction, per instance). Each kept line is a trace "
        "that `traces verify` accepts, with its provenance: the teacher, the sampling settings, the time, the "
        "tokens (prompt and completion) and the cost when the endpoint reports one. The lines of each instance "
        "are appended to OUT.part as soon as it is judged, and OUT.part becomes OUT when the run ends (completed, "
        "stopped with Ctrl-C, or failed), so a stop keeps what was verified; after a crash OUT.part holds it. "
        "The report: the teacher's pass rate (samples passed / drawn) per type x difficulty, and the cells where "
        "no sample passed, from which the student will not learn. Exit 0 with traces kept, 1 when stopped or "
        "none was kept, 2 for bad settings or a teacher that cannot be used (authentication, unreachable "
        "endpoint, unknown model).")
    tg.add_argument("--teacher", metavar="SPEC",
                    help="openai:MODEL for an OpenAI-compatible chat endpoint (with --base-url), or a model the app "
                         "loads: hub id, local dir, .gguf file or offline name (e.g. qwen2.5-coder-0.5b)")
    tg.add_argument("--out", metavar="FILE", help="the trace JSONL to write (replaced if it exists)")
    tg.add_argument("--problems", nargs="+", choices=problems.PROBLEM_TYPES, metavar="TYPE",
                    help="problem types (default: all 11)")
    tg.add_argument("--difficulties", nargs="+", type=_difficulty, metavar="D", help="default: 1 3 5 7 10")
    tg.add_argument("--prompt-styles", nargs="+", default=["contract"], metavar="STYLE",
                    choices=(*STYLES, ALL_STYLES),
                    help="ask each instance in each of these wordings, K samples each: contract (the training "
                         "template, default), terse, stub, stdio, or all; traces in several wordings teach the "
                         "skill rather than one template (the kept traces carry their style)")
    tg.add_argument("--per-cell", type=_positive, default=1, metavar="N",
                    help="instances per type x difficulty, indices 0..N-1 (default 1)")
    tg.add_argument("--samples", type=_positive, default=4, metavar="K",
                    help="answers drawn per instance (default %(default)s); more than 1 needs --temperature > 0")
    tg.add_argument("--temperature", type=float, default=0.7, metavar="T", help="sampling temperature "
                    "(default %(default)s; 0: greedy); a local model's samples are seeded per (instance, sample)")
    tg.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling mass in (0, 1] "
                    "(default 1: all)")
    tg.add_argument("--max-new-tokens", type=_positive, default=1024, metavar="M",
                    help="answer length cap (default %(default)s; sent as max_tokens to an endpoint)")
    tg.add_argument("--seed", type=int, default=problems.TRAIN_SEED,
                    help=f"instance seed (default %(default)s, training; {problems.EVAL_SEED} is refused)")
    endpoint = tg.add_argument_group("OpenAI-compatible endpoint (--teacher openai:MODEL)")
    endpoint.add_argument("--base-url", metavar="URL",
                          help="e.g. http://localhost:8000/v1 (vLLM, llama.cpp, Ollama) or a provider's; default "
                               "$OPENAI_BASE_URL, else OpenAI's")
    endpoint.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                          help="the environment variable holding the API key (default %(default)s); the key is "
                               "never given on the command line nor stored")
    endpoint.add_argument("--concurrency", type=_positive, default=4, metavar="N",
                          help="requests in flight at once (default %(default)s)")
    endpoint.add_argument("--retries", type=int, default=6, metavar="N",
                          help="retries of one request on 429, 408, 409, 5xx and timeouts, with exponential backoff "
                               "from 1 s or after the server's Retry-After (default %(default)s)")
    endpoint.add_argument("--request-timeout", type=float, default=300.0, metavar="S",
                          help="seconds one request may take (default %(default)s)")
    local = tg.add_argument_group("local model (any other --teacher)")
    local.add_argument("--batch-size", type=int, default=0, help="prompts per batch (default 0: automatic)")
    local.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto",
                       help="auto uses vLLM when installed and on a GPU, else transformers")
    local.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default auto)")
    tg.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per test (default %(default)s)")
    tg.add_argument("--run", type=int, help=argparse.SUPPRESS)  # a generation queued by the app
    tg.add_argument("--db", default=None, help=argparse.SUPPRESS)  # the app's run store, with --run
    tg.add_argument("--json", action="store_true", help="print the report as JSON")
    tg.set_defaults(func=cmd_traces_generate)

    from .train_sft import SFTSettings
    tr = sub.add_parser("train", help="LoRA SFT on verified teacher traces (the reference recipe by default)",
                        description="LoRA SFT on verified teacher traces (the reference recipe by default). A stop "
                        "(SIGTERM, Ctrl-C, the app's Stop) ends the run within seconds, however long a step takes, "
                        "and saves the adapter as of the last completed optimizer step. A checkpoint every "
                        "--checkpoint-steps or --checkpoint-minutes lets --resume RUN continue after a crash or kill.")
    add_flags(tr, SFTSettings)  # one flag per setting, from the settings class
    tr.add_argument("--resume", type=int, metavar="RUN",
                    help="continue an interrupted, stopped or failed training from its last checkpoint, with its "
                         "stored settings (other flags are ignored), on the same run and loss curve")
    tr.add_argument("--run", type=int, help=argparse.SUPPRESS)  # a run queued by the app
    tr.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=cmd_train)

    from .grpo import GRPOSettings
    gr = sub.add_parser(
        "grpo", help="GRPO with the verifier as the reward (LoRA, from the base model or an SFT adapter)",
        description="GRPO (TRL's GRPOTrainer) with LoRA: for prompts from the problem generator (training seed 42; "
        "an instance identical to an evaluation one is dropped; no traces needed), sample --num-generations answers "
        "each, run every answer's code in the sandbox against the hidden tests, and reward it with the fraction of "
        "tests passed plus --format-bonus for one well-formed python block defining the function. Partial credit "
        "matters: a group whose answers all pass or all fail has zero advantage and teaches nothing. Defaults follow "
        "TRL's GRPO and LoRA guidance (docs: LoRA Without Regret): LoRA on all linear layers, a learning rate well "
        "above GRPOConfig's full fine-tuning 1e-6, beta 0 (no reference model), 8 generations per prompt, an "
        "effective batch under 32. Every step's reward, reward std, zero-std fraction, pass rate, completion "
        "lengths, clipped ratio (and KL when beta > 0) go to the run store, and every completion is stored as a "
        "sample numbered step*1000+try, for Inspect. A stop (SIGTERM, Ctrl-C, the app's Stop) ends the run within "
        "seconds and saves the adapter as of the last completed step; GRPO runs do not resume.")
    add_flags(gr, GRPOSettings)
    gr.add_argument("--run", type=int, help=argparse.SUPPRESS)  # a run queued by the app
    gr.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    gr.add_argument("--json", action="store_true")
    gr.set_defaults(func=cmd_grpo)

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

    ex = sub.add_parser("export", help="write runs (samples, curves, optionally adapters) to a bundle zip, or push "
                        "an adapter to the Hub",
                        description="Write runs to a bundle: a zip of manifest.json (format, version, algodistill "
                        "commit, date, machine, this command), runs.jsonl, samples.jsonl, metrics.jsonl (the loss and "
                        "other curves) and, with --adapter, adapters/<run>/ (the PEFT files and model card). An "
                        "evaluation brings its group: the base-model twin or the adapter run it was compared with, "
                        "and the other prompt styles of the same evaluation. Only finished runs are exported. "
                        "`import` reads it back, here or on another machine, and the app's Runs tab does both.")
    ex.add_argument("runs", nargs="+", type=int, metavar="RUN", help="run ids (see the app's Runs tab)")
    ex.add_argument("--out", metavar="FILE.zip", help="the bundle to write (replaced if it exists)")
    ex.add_argument("--to-hub", metavar="USER/NAME",
                    help="instead of a bundle, push one training run's adapter to this Hugging Face model repository "
                         "(created if needed) with its model card: base model, traces, recipe, evaluations with 95%% "
                         "intervals and the learned-vs-forgot table. The token comes from HF_TOKEN or `hf auth login`")
    ex.add_argument("--private", action="store_true", help="with --to-hub: create the repository private")
    ex.add_argument("--adapter", action="store_true",
                    help="include each training run's adapter (adapter_config.json, adapter_model.safetensors, "
                         "README.md, algodistill.json)")
    ex.add_argument("--with-evals", action="store_true",
                    help="for a training run, also export every evaluation of its adapter (with their groups)")
    ex.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_export)

    im = sub.add_parser("import", help="add the runs of a bundle zip to the run store, under new ids",
                        description="Add the runs of a bundle (made by `export` or the Runs tab) to the run store. "
                        "Each run gets a new id and every link between runs (base-model twin, prompt-style group, "
                        "the adapter an evaluation used) is remapped; nothing already there is changed, so importing "
                        "twice gives two copies. Adapters go to new folders in outputs/ next to runs.db. The bundle "
                        "is checked first (member names and sizes, JSON, field types and bounds, links): a bad one "
                        "is refused with the reason and nothing is created (exit 2).")
    im.add_argument("bundle", metavar="FILE.zip")
    im.add_argument("--demo", action="store_true",
                    help="mark the runs as the demo: names start with [demo] and settings say demo=true")
    im.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=cmd_import)

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
    return parser


def _start_next_job(db: str | None) -> None:
    """Start the launch waiting longest in the app's job queue, now that this training or evaluation has ended
    (``jobs.dispatch``), so the queue moves on without the app. Its trouble is reported, never raised: the
    command keeps its own exit status."""
    path = db or default_path()
    if path != ":memory:" and not Path(path).is_file():
        return  # no run store, so no queue: none is created for it
    from .jobs import JobRefused, dispatch
    store = Store(path)
    try:
        started = dispatch(store)
        note = f"started the next queued job: run {started[0]}" if started else None
    except (JobRefused, sqlite3.Error) as exc:
        note = f"warning: the next queued job did not start: {exc}"
    finally:
        store.close()
    if note and not sys.stderr.closed:  # closed after a broken pipe
        print(note, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, SandboxUnavailable, ModelUnavailable, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:  # however it ended: completed, failed, stopped
        if args.command in ("train", "eval") and is_main_process():
            _start_next_job(args.db)
