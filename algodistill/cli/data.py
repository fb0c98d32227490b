"""Command line: the problem generator and teacher traces (``problems list|show``, ``traces verify|generate|self-distill``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import problems
from ..problems.styles import ALL as ALL_STYLES, STYLES, choose as styles_named, styled
from ..sandbox import Limits
from ..store import Store
from .common import _bar, _difficulty, _positive, _print_json, _start_next_job


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
    from ..traces import summary, verify_file
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

    from ..teacher import (TeacherSettings, generate_traces, headline, no_pass_line, pass_rate_table, run_job,
                           sampling_line)

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
        for line in (no_pass_line(report), sampling_line(report)):
            if line:
                print(textwrap.fill(line, 120))
        if len(report["prompt_styles"]) > 1:
            print("per prompt style: " + ", ".join(
                f"{style} {c['passed']}/{c['drawn']} passed, {c['kept']} kept"
                for style, c in report["prompt_styles"].items()))
        if report["out"]:
            print(f"wrote {report['out']} ({report['kept']} traces); check it: python -m algodistill traces verify "
                  f"{report['out']}")
        elif args.out:  # (a job's run says it in its own message)
            print(f"no trace kept, so {args.out} was not written" +
                  (" (the file already there is unchanged)" if Path(args.out).exists() else ""))
    if report["status"] == "failed":
        print(f"error: {report['error']}", file=sys.stderr)
        return 2
    return 0 if report["status"] == "completed" and report["kept"] else 1


def cmd_traces_self_distill(args) -> int:
    from ..models import ModelUnavailable
    from ..self_distill import report_lines, self_distill
    try:
        report = self_distill(args.model, args.traces, args.out, samples=args.samples, temperature=args.temperature,
                              max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device=args.device,
                              log=lambda line: print(line, file=sys.stderr))
    except (ValueError, OSError, ModelUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(report)
    else:
        print("\n".join(report_lines(report)))
    return 0


def add_parsers(sub) -> None:
    """This family's subcommands on the top parser's ``sub``."""
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
    tg.add_argument("--out", metavar="FILE", help="the trace JSONL to write (replaced if it exists; left as it was when no trace is kept)")
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
    td = tsub.add_parser(
        "self-distill", help="the student's own verified answers in place of a trace set's, where it has one",
        description="Self-distillation: ask the student model every verified trace's own prompt (the same "
        "wording, so the set's held-out protocol is unchanged), judge each answer against the instance's hidden "
        "tests in the sandbox, and write the set again with the student's first passing answer as the response; "
        "where no answer passed, the teacher's trace stays. Answers in the student's own manner are the usual remedy "
        "for the forgetting that traces written in another manner cause (self-distillation fine-tuning, RFT). "
        "Exit 0 when written, 2 for bad settings or a model that cannot be loaded.")
    td.add_argument("--model", required=True, metavar="SPEC",
                    help="the student: hub id, local dir, .gguf file or offline name")
    td.add_argument("--traces", required=True, metavar="FILE", help="the trace set whose prompts are asked (JSONL)")
    td.add_argument("--out", required=True, metavar="FILE", help="the self-distilled set to write (JSONL)")
    td.add_argument("--samples", type=_positive, default=1, metavar="K", help="answers per trace (default 1)")
    td.add_argument("--temperature", type=float, default=0.0, metavar="T",
                    help="0: greedy (default); more than one sample needs > 0")
    td.add_argument("--max-new-tokens", type=_positive, default=1024, metavar="M", help="default %(default)s")
    td.add_argument("--batch-size", type=int, default=0, help="prompts per batch (default 0: automatic)")
    td.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default auto)")
    td.add_argument("--json", action="store_true", help="print the report as JSON")
    td.set_defaults(func=cmd_traces_self_distill)
