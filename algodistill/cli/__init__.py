"""Command line: python -m algodistill problems|traces|train|grpo|eval|compare|export|import (each has --json).

Exit codes: 0 success; 1 the work ran but something failed (a rejected trace, an unsolved reference
problem, a completion line skipped as malformed or as a repeated sample number); 2 bad usage or unreadable
input (e.g. a completions file with no usable line).
"""

from __future__ import annotations

import argparse
import sys

from ..distributed import is_main_process
from ..models import ModelUnavailable
from ..sandbox import SandboxUnavailable
from . import bundles, data, evaluation, training
from .common import _start_next_job

FAMILIES = (data, training, evaluation, bundles)  # the order of the subcommands in --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m algodistill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.add_parsers(sub)
    return parser


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
