"""Command line: ``python -m algodistill problems|traces|eval ...``. Every command has ``--json``.

Exit codes: 0 success; 1 the work ran but something failed (a rejected trace, an unsolved reference
problem, malformed completion lines); 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from . import problems
from .evaluate import EvalSettings, load_completions, reference_items, run_scoring
from .sandbox import Limits, SandboxUnavailable
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
    instance = problems.make_instance(args.type, args.difficulty, args.seed, args.index)
    if args.json:
        _print_json(instance.to_dict(with_reference=args.reference))
        return 0
    print(instance.prompt)
    print(f"\n# hidden tests ({instance.problem}, difficulty {instance.difficulty}, seed {instance.seed}, "
          f"index {instance.index})")
    for test in instance.tests:
        call, expected = test.call_repr(instance.entry_point), repr(test.expected)
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


# ------------------------------------------------------------------------------------------ eval

def cmd_eval(args) -> int:
    settings = EvalSettings(problems=args.problems or list(problems.PROBLEM_TYPES),
                            difficulties=args.difficulties or list(problems.REFERENCE_DIFFICULTIES),
                            seed=args.seed, per_cell=args.per_cell, timeout_s=args.timeout)
    errors: list[str] = []
    if args.reference:
        items, model, name = reference_items(settings), "reference", args.name or "reference solutions"
    elif args.completions:
        items, errors = load_completions(args.completions)
        model, name = f"completions:{args.completions}", args.name or f"completions {args.completions}"
        for error in errors:
            print(f"warning: {error}", file=sys.stderr)
        if not items:
            print(f"error: no usable completions in {args.completions}", file=sys.stderr)
            return 2
    else:
        print("error: model evaluation is not available yet; use --reference or --completions FILE",
              file=sys.stderr)
        return 2
    store = Store(args.db)
    result = run_scoring(store, items, name=name, model=model, settings=asdict(settings) | {"source": model},
                         limits=settings.limits(), progress=_progress(not args.json and sys.stderr.isatty()))
    summary = result["summary"]
    if args.json:
        _print_json({
            "run": result["run"], "db": store.path, "model": model, "errors": errors,
            "totals": {k: summary[k] for k in ("n", "solved", "accuracy", "accuracy_ci", "partial_credit")},
            "per_problem": summary["per_problem"], "per_difficulty": summary["per_difficulty"],
            "failures": summary["failures"],
            "samples": [{"problem": s["problem"], "difficulty": s["difficulty"], "seed": s["seed"],
                         "index": s["idx"], "status": s["status"], "passed": s["passed"], "total": s["total"],
                         "tests": [t["status"] for t in s["tests"]]} for s in result["samples"]],
        })
    else:
        _print_table(summary)
        print(f"\n{summary['solved']}/{summary['n']} solved ({summary['accuracy']:.1%}), partial credit "
              f"{summary['partial_credit']:.1%}; stored as run {result['run']} in {store.path}")
    return 0 if summary["solved"] == summary["n"] or not args.reference else 1


def _print_table(summary: dict) -> None:
    print(f"{'problem':<18} {'solved':>7} {'partial':>8}")
    for name, group in summary["per_problem"].items():
        print(f"{name:<18} {group['solved']:>3}/{group['n']:<3} {group['partial_credit']:>8.0%}")
    print("difficulty " + "  ".join(f"{d}: {g['solved']}/{g['n']}" for d, g in summary["per_difficulty"].items()))


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
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=cmd_problems_show)

    t = sub.add_parser("traces", help="teacher traces")
    tsub = t.add_subparsers(dest="action", required=True)
    tv = tsub.add_parser("verify", help="run every trace's code against its instance's tests")
    tv.add_argument("file", help="trace JSONL file (the bundled set: assets/traces/reference.jsonl)")
    tv.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per test (default %(default)s)")
    tv.add_argument("--json", action="store_true")
    tv.set_defaults(func=cmd_traces_verify)

    e = sub.add_parser("eval", help="score the problem-type x difficulty grid")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", action="store_true", help="score the reference solutions (must be 100%%)")
    source.add_argument("--completions", metavar="FILE",
                        help='JSONL of {"problem", "difficulty", "seed", "index", "completion"}')
    e.add_argument("--problems", nargs="+", choices=problems.PROBLEM_TYPES, metavar="TYPE",
                   help="problem types (default: all 11)")
    e.add_argument("--difficulties", nargs="+", type=_difficulty, metavar="D", help="default: 1 3 5 7 10")
    e.add_argument("--seed", type=int, default=problems.EVAL_SEED, help="default %(default)s")
    e.add_argument("--per-cell", type=_positive, default=1, help="instances per cell (default 1)")
    e.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per test (default %(default)s)")
    e.add_argument("--name", help="a name for the stored run")
    e.add_argument("--db", default=None, help=f"run store (default $ALGODISTILL_DB or {default_path()})")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
