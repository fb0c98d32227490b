"""Command line: bundles and the Hub (``export``: runs to a zip, or an adapter to the Hub; ``import``)."""

from __future__ import annotations

import sys

from ..store import Store, default_path
from .common import _print_json


# ------------------------------------------------------------------------------------------ bundles

def cmd_export(args) -> int:
    from ..bundle import export_bundle
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
    from ..hub import push_adapter
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
    from ..bundle import import_bundle, summary_line
    store = Store(args.db)
    report = import_bundle(store, args.bundle, demo=args.demo)
    if args.json:
        _print_json(report)
    else:
        print(summary_line(report) + f" Stored in {store.path}")
        for run_id, folder in report["adapters"].items():
            print(f"adapter of #{run_id}: {folder}")
    return 0


def add_parsers(sub) -> None:
    """This family's subcommands on the top parser's ``sub``."""
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
