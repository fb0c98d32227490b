"""Write the bundled varied-wording trace sets, each with a held-out protocol (``SETS``):

- ``assets/traces/varied.jsonl``: contract, terse and stub; the whole ``stdio`` style held out;
- ``assets/traces/varied-no-terse.jsonl``: contract, stub and stdio; the whole ``terse`` style held out;
- ``assets/traces/varied-code-first.jsonl``: the same traces as varied-no-terse, each answer giving its code block
  first and the hand-written steps after it. The plan-first answers taught Qwen2.5-Coder-0.5B to open every answer,
  HumanEval's too, with a plan of its own, which it then followed into wrong code (HumanEval 92 -> 42/164); the base
  model answers code first, and this set keeps the answers in that order (the only change), so that what is learned
  is the code, not a habit of planning.
- ``assets/traces/varied-code-first-self.jsonl``: varied-code-first with the student's own verified answers where it
  has one: each trace whose prompt got a passing answer from Qwen2.5-Coder-0.5B in
  ``varied-no-terse-self.jsonl`` (written by ``python -m algodistill traces self-distill``, the same prompts) takes
  that answer, the others keep the teacher's code-first one. Self-distillation kept HumanEval (91/164 at step 23)
  but the plan-first teacher traces it kept still taught a manner the student does not have; here the teacher's
  traces are in the student's order too.

The reference set (build_reference_traces.py) asks every problem in the grid's own contract wording, and a
model trained on it learns that template: 55/55 in its words, about the base model's score in any other. These
sets teach the same hand-written explanations and solutions asked in many ways:

- prompt styles (``problems/styles.py``), and inside each style several phrasings (``styles.PHRASINGS``:
  templates, stub introductions, stdio introductions and input descriptions, example forms, endings) and other
  function and argument names (each problem module's ``Wording.aliases``); the answer is adapted to what the
  prompt asks (the function and argument names it uses; for stdio, a whole program: the function and a main
  that reads the JSON argument list from stdin and prints the JSON answer), its reasoning and code otherwise
  the hand-written ones;
- more traces where the model is weakest: arithmetic, parentheses and two_sum get twice as many as the rest.

What each set holds out, so that scores can be told apart (``traces.wording_coverage`` reads it from the traces):
- one whole style: no trace asks in it, so its score is a transfer across styles;
- the evaluation's own wording of every other style but contract (``PHRASINGS`` item 0 of each part, the stub's
  own names and its doctest): those scores are transfers across wording;
- only the contract style is also asked in the evaluation's words (half its traces), as the reference set does,
  so its score stays comparable with the reference adapter's.

Provenance: as the reference set, written by hand for algodistill (no model was sampled).

Run: python scripts/build_varied_traces.py   (then: python -m algodistill traces verify assets/traces/varied*.jsonl)
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_reference_traces import ALTERNATIVES, PROVENANCE, STEPS, TEACHER  # noqa: E402

from algodistill.problems import PROBLEM_TYPES, REGISTRY, TRAIN_SEED, make_instance  # noqa: E402
from algodistill.problems.base import _py  # noqa: E402
from algodistill.problems.styles import PHRASINGS, STYLES as ALL_STYLES, stdin_text, stdio_prompt  # noqa: E402

TRACES = ROOT / "assets" / "traces"
# each bundled set: the one style it holds out entirely (its score is a transfer across styles), and its answers'
# order ("plan": opening, steps, then the code; "code": the code, then the steps), and the self-distilled set whose
# student answers replace the teacher's for the same prompt (None: the teacher's answers only)
SETS = {"varied.jsonl": ("stdio", "plan", None), "varied-no-terse.jsonl": ("terse", "plan", None),
        "varied-code-first.jsonl": ("terse", "code", None),
        "varied-code-first-self.jsonl": ("terse", "code", "varied-no-terse-self.jsonl")}
HARD = ("arithmetic", "parentheses", "two_sum")  # where plain SFT left the model weakest
PER_TYPE = {name: 12 if name in HARD else 6 for name in PROBLEM_TYPES}
DIFFICULTIES = (1, 3, 5, 7, 9, 10, 2, 4, 6, 8, 10, 5)

OPENINGS = [
    "Let me restate the task. We need `{entry}`; for example `{call}` must return `{result}`.",
    "Goal: implement `{entry}` as asked. The example, `{call}` == `{result}`, is a good check for each step.",
    "The function to write is `{entry}`. A quick check for later: `{call}` should give `{result}`.",
]
CLOSINGS = [
    "Tracing the example `{call}` with this plan gives `{result}`, as required. Here is the code:",
    "Checking against the example: `{call}` -> `{result}`. The complete function:",
    "With that, `{call}` returns `{result}`. The code:",
]


def params(signature: str) -> list[str]:
    return [a.arg for a in ast.parse(signature + "\n    pass").body[0].args.args]


def words(text: str, names: dict[str, str]) -> str:
    """``text`` with each name renamed: whole words only, and not after an apostrophe ("it's" keeps its s)."""
    for old, new in names.items():
        if old != new:
            text = re.sub(rf"(?<![\w'’]){re.escape(old)}\b", new, text)
    return text


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def visit_FunctionDef(self, node):
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_Name(self, node):
        node.id = self.names.get(node.id, node.id)
        return node


def renamed_code(code: str, names: dict[str, str]) -> str:
    if all(old == new for old, new in names.items()):
        return code  # the hand-written layout, untouched
    return ast.unparse(_Rename(names).visit(ast.parse(code))) + "\n"


def ask(problem: str, instance, style: str, k: int, n_styles: int = 3) -> dict:
    """The prompt of trace ``k`` in ``style``: which phrasing, which names, and the renames its answer needs."""
    ptype, wording = REGISTRY[problem], REGISTRY[problem].wording
    canonical_args = params(ptype.signature)
    round_ = k // n_styles  # the how-many-th trace of this style for this problem
    example = instance.example
    if style == "stdio":  # never the evaluation's phrasing of any part, and half with other argument names
        aliased = round_ % 2 == 1
        name, args = wording.aliases[round_ % 3] if aliased else (ptype.entry_point, tuple(canonical_args))
        rename = dict(zip(canonical_args, args)) | ({ptype.entry_point: name} if aliased else {})
        parts = {"intro": 1 + round_ % 2, "io": 1 + (round_ + 1) % 2, "example": 1 + round_ % 2,
                 "ending": 1 + (round_ // 2) % 2}
        prompt = stdio_prompt(list(args), words(ptype.contract, rename), stdin_text(example.args).strip(),
                              json.dumps(example.expected), **parts)
        return {"prompt": prompt, "name": name, "rename": rename,
                "wording": parts | {"names": "alias" if aliased else "canonical", "main": round_ % 2}}
    if style == "contract":
        canonical = round_ % 2 == 0  # half in the evaluation's own words, as the reference set
        name, args = (ptype.entry_point, tuple(canonical_args)) if canonical else wording.aliases[round_ % 3]
        rename = dict(zip(canonical_args, args)) | ({ptype.entry_point: name} if not canonical else {})
        ending = 0 if canonical else 1 + round_ % 2
        signature = words(ptype.signature, rename)
        prompt = (f"Write a Python function `{name}`.\n\nSignature:\n```python\n{signature}\n```\n\n"
                  f"Contract:\n{words(ptype.contract.strip(), rename)}\n\n"
                  f"Example:\n```python\n>>> {example.call_repr(name)}\n{_py(example.expected)}\n```\n\n"
                  f"{PHRASINGS['ending'][ending]}")
        return {"prompt": prompt, "name": name, "rename": rename,
                "wording": {"template": 0, "ending": ending, "names": "canonical" if canonical else "alias"}}
    if style == "terse":
        template = 1 + round_ % 3  # never 0: the evaluation's terse prompt
        aliased = round_ % 2 == 1
        name, args = wording.aliases[round_ % 3] if aliased else (ptype.entry_point, tuple(canonical_args))
        rename = dict(zip(canonical_args, args)) | ({ptype.entry_point: name} if aliased else {})
        spoken = " and ".join(f"`{a}`" for a in args)
        prompt = PHRASINGS["terse"][template].format(sig=f"{name}({', '.join(args)})", name=name, args=spoken,
                                                      task=words(wording.terse, rename))
        return {"prompt": prompt, "name": name, "rename": rename,
                "wording": {"template": template, "names": "alias" if aliased else "canonical"}}
    # stub: never the evaluation's introduction, nor its names
    intro = 1 + round_ % 2
    form = (round_ + 1) % 3
    name, args = wording.aliases[round_ % 3]
    stub_rename = dict(zip(wording.stub_args, args))
    rename = dict(zip(canonical_args, args)) | {ptype.entry_point: name}
    shown = PHRASINGS["stub_example"][form].format(call=example.call_repr(name), result=_py(example.expected))
    doc = words(wording.docstring.strip(), stub_rename) + (f"\n\n{shown}" if shown else "")
    doc = "\n".join(("    " + line).rstrip() for line in doc.splitlines()).strip()
    raw = "r" if "\\" in doc else ""
    stub = f'def {name}({", ".join(args)}):\n    {raw}"""{doc}\n    """\n'
    prompt = (f"{PHRASINGS['stub_intro'][intro]}\n\n```python\n{stub.rstrip()}\n```\n\n"
              "Give the complete function (with any imports or helpers it needs) in one ```python code block.")
    return {"prompt": prompt, "name": name, "rename": rename,
            "wording": {"intro": intro, "example": form, "names": "alias"}}


# a stdio answer is the function and a main that reads the JSON argument list and prints the JSON answer
MAINS = (
    "\n\ndef main():\n    args = json.loads(sys.stdin.read())\n    print(json.dumps({name}(*args)))\n\n\n"
    "if __name__ == \"__main__\":\n    main()\n",
    "\n\nif __name__ == \"__main__\":\n    data = json.loads(input())\n    print(json.dumps({name}(*data)))\n",
)
STDIO_OPENINGS = [
    "The program reads one JSON line such as `{stdin}` and must print `{stdout}` for it. I will write a function "
    "`{entry}` for the task and a main that reads the arguments, calls it and prints the answer as JSON.",
    "Plan: a function `{entry}` that solves the task, and a main around it that parses the JSON list from stdin "
    "and prints the result with json.dumps. Check: the input `{stdin}` should print `{stdout}`.",
]
STDIO_CLOSINGS = [
    "With the input `{stdin}` this prints `{stdout}`, as required. The whole program:",
    "Reading `{stdin}` gives `{stdout}`. Here is the complete program:",
]
# code-first answers: the steps come after the code, under one of these, and end on the example's check
AFTERWORDS = ["How it works, step by step:", "Why this is right:", "The idea, step by step:"]
CHECKS = ["For example `{call}` returns `{result}`, as required.", "Check: `{call}` gives `{result}`.",
          "On the example, `{call}` -> `{result}`."]
STDIO_CHECKS = ["With the input `{stdin}` it prints `{stdout}`, as required.",
                "Check: reading `{stdin}` prints `{stdout}`."]


def response(problem: str, instance, asked: dict, k: int, style: str = "contract", order: str = "plan") -> str:
    example = instance.example
    steps = "\n".join(f"{n}. {words(step, asked['rename'])}" for n, step in enumerate(STEPS[problem], 1))
    code = ALTERNATIVES[problem] if k % 2 and problem in ALTERNATIVES else REGISTRY[problem].reference
    code = renamed_code(code, asked["rename"])
    if style == "stdio":
        stdin = stdin_text(example.args).strip()
        stdin = stdin if len(stdin) <= 120 else stdin[:100] + " ...]"
        fields = {"entry": asked["name"], "stdin": stdin, "stdout": json.dumps(example.expected)}
        program = "import json\nimport sys\n\n" + code.rstrip() + MAINS[asked["wording"]["main"]].format(
            name=asked["name"])
        if order == "code":
            return (f"```python\n{program.rstrip()}\n```\n\n{AFTERWORDS[k % 3]}\n{steps}\n\n"
                    f"{STDIO_CHECKS[(k // 3) % 2].format(**fields)}")
        return (f"{STDIO_OPENINGS[k % 2].format(**fields)}\n\nStep by step:\n{steps}\n\n"
                f"{STDIO_CLOSINGS[(k // 2) % 2].format(**fields)}\n\n```python\n{program.rstrip()}\n```")
    call = example.call_repr(asked["name"])
    if len(call) > 120:
        call = call[:100] + " ...)"
    fields = {"entry": asked["name"], "call": call, "result": repr(example.expected)}
    if order == "code":
        return (f"```python\n{code.rstrip()}\n```\n\n{AFTERWORDS[k % 3]}\n{steps}\n\n"
                f"{CHECKS[(k // 3) % 3].format(**fields)}")
    return (f"{OPENINGS[k % 3].format(**fields)}\n\nStep by step:\n{steps}\n\n"
            f"{CLOSINGS[(k // 3) % 3].format(**fields)}\n\n```python\n{code.rstrip()}\n```")


def records(held_out: str = "stdio", order: str = "plan") -> list[dict]:
    """The set's traces: every style but ``held_out``, in turn, over each problem's instances, their answers in
    ``order`` (``SETS``)."""
    styles = [style for style in ALL_STYLES if style != held_out]
    out = []
    for problem in PROBLEM_TYPES:
        for k in range(PER_TYPE[problem]):
            difficulty = DIFFICULTIES[k]
            style = styles[k % len(styles)]
            instance = make_instance(problem, difficulty, TRAIN_SEED, k)
            asked = ask(problem, instance, style, k, len(styles))
            record = {"id": f"{problem}-d{difficulty}-s{TRAIN_SEED}-i{k}-{style}", "problem": problem,
                      "difficulty": difficulty, "seed": TRAIN_SEED, "index": k, "style": style,
                      "prompt": asked["prompt"], "response": response(problem, instance, asked, k, style, order),
                      "wording": asked["wording"], "teacher": TEACHER, "provenance": PROVENANCE}
            if style != "stdio" and (asked["name"] != REGISTRY[problem].entry_point or style == "stub"):
                record["entry_point"] = asked["name"]  # a stdio answer is a program: the sandbox calls no name
            out.append(record)
    return out


def with_own(rows: list[dict], own: Path) -> list[dict]:
    """``rows`` with the student's answer from the self-distilled set ``own`` wherever it holds one for the same
    prompt (a line whose teacher is not the hand-written one); the other rows unchanged. ValueError when ``own``
    asks prompts that ``rows`` does not: it was distilled from another set."""
    answers = {}
    for line in own.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            answers[record["prompt"]] = record
    if set(answers) - {r["prompt"] for r in rows}:
        raise ValueError(f"{own} asks prompts this set does not: it was self-distilled from another set")
    return [answers[r["prompt"]] if answers.get(r["prompt"], {}).get("teacher", TEACHER) != TEACHER else r
            for r in rows]


def main() -> None:
    for name, (held_out, order, own) in SETS.items():
        rows = records(held_out, order)
        if own:
            rows = with_own(rows, TRACES / own)
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        (TRACES / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        mine = sum(r["teacher"] != TEACHER for r in rows)
        print(f"wrote {len(lines)} traces to {TRACES / name} ({held_out} held out, {order} first"
              + (f", {mine} the student's own from {own})" if own else ")"))


if __name__ == "__main__":
    main()
