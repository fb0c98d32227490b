"""Command line: training (``train``: LoRA SFT, resumable; ``grpo``: GRPO with the verifier as the reward)."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..settings import add_flags, from_flags
from ..store import Store, default_path
from .common import _print_json, _start_next_job


# ------------------------------------------------------------------------------------------ train

def _train_run(args, store: Store):
    """The run a train command trains (``jobs.training_run``): queued by the app (``--run``), resumed from its
    checkpoint (``--resume``), or new from the flags."""
    from ..jobs import training_run
    from ..train_sft import SFTSettings
    settings = None
    if not (args.run or args.resume):
        settings = from_flags(SFTSettings, args)  # a per-device batch of 0 is decided for the device
    return training_run(store, queued=args.run, resume=args.resume, settings=settings,
                        log=lambda m: print(m, file=sys.stderr))


def cmd_train(args) -> int:
    from ..distributed import Follower, processes
    from ..train_sft import run_training
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
    from ..grpo import GRPOSettings, run_grpo
    from ..jobs import grpo_run
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


def add_parsers(sub) -> None:
    """This family's subcommands on the top parser's ``sub``."""
    from ..train_sft import SFTSettings
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

    from ..grpo import GRPOSettings
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
