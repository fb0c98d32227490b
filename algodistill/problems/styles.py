"""Prompt styles: the same instance asked in other words, to measure how much a model depends on the wording
it was trained on (a model can score well on its own templates and far worse on the same skill asked
differently).

Every style keeps the instance's tests, expected values and contract; only the prompt, and with it what the
answer must define, changes:

- ``contract``: the grid's own prompt (function name, signature, contract, worked example); the default,
  and what training traces use;
- ``terse``: one sentence a user could plausibly write, naming the function and its arguments and stating
  only what the tests depend on (the problem module's ``Wording.terse``);
- ``stub``: a docstring-only stub with another function name and other argument names, with a doctest
  example, as HumanEval asks (an answer that is only the body is read as the stub's body);
- ``stdio``: a whole program that reads the arguments as one line of JSON on stdin and prints the answer as
  JSON on stdout. The sandbox is unchanged: the verifier runs the program through a driver,
  ``STDIO_ENTRY(stdin_text)`` (``stdio_program``), which runs its source as ``__main__`` with ``sys.stdin``
  and ``sys.stdout`` swapped for in-memory files and returns what it printed; the parent parses the last
  non-empty printed line as JSON and compares it with the expected value (``verify.py``).

Each styled instance carries its reference solution adapted to the style (renamed for ``stub``, with a JSON
main for ``stdio``), so ``eval --reference --prompt-style all`` proves every style solvable and verified.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace

from .base import STDIO_ENTRY, Instance, ProblemType, _py

STYLES = ("contract", "terse", "stub", "stdio")
ALL = "all"

# Other phrasings of each style, for training prompts in varied wording (scripts/build_varied_traces.py). Item 0
# of each list is how the evaluation asks; a trace set that holds it out never trains on it. ``{sig}`` is
# ``name(arg, ...)``, ``{name}`` the function's name, ``{args}`` its arguments in words, ``{task}`` the problem
# module's ``Wording.terse`` (its argument names renamed to the ones asked for).
PHRASINGS = {
    "terse": (
        "Write a Python function `{sig}` that {task}.",
        "Implement `{sig}` in Python: it {task}.",
        "I need a Python function called `{name}`. Given {args}, it {task}. Please write it.",
        "Create `{sig}`, a function that {task}. Reply with the code in a ```python block.",
    ),
    "stub_intro": (
        "Complete the following Python function so that it does what its docstring says.",
        "Fill in the body of this Python function; keep its name and arguments.",
        "Here is a function stub. Write the implementation.",
    ),
    # how the stub's docstring shows the worked example: item 0 is the evaluation's doctest
    "stub_example": (
        ">>> {call}\n{result}",
        "For example, {call} returns {result}.",
        "",
    ),
    "ending": (
        "Explain your approach step by step, then give the complete function (with any imports or helpers it "
        "needs) in one ```python code block.",
        "Think it through step by step first; then write the whole function in a single ```python block.",
        "Describe your plan briefly, then give the full code in one ```python code block.",
    ),
    # stdio: how the program is asked for, and how its input and output are described; item 0 of each is the
    # evaluation's ({params} the argument names, comma-separated)
    "stdio_intro": (
        "Write a complete Python program (not just a function) that reads its input from standard input and "
        "prints the answer to standard output.",
        "Write a Python script: it reads one line from stdin and writes the result to stdout.",
        "I need a command-line Python program that takes its input on stdin and prints its answer.",
    ),
    "stdio_io": (
        "Input: one line of JSON, the list of arguments [{params}].\nOutput: the answer as JSON on one line.",
        "The input line is a JSON array holding [{params}]; print the answer as one line of JSON.",
        "stdin: a JSON list [{params}]. stdout: the result, JSON-encoded, on a single line.",
    ),
    # how the worked example is shown: item 0 is the evaluation's input/output blocks
    "stdio_example": (
        "Example:\ninput:\n```\n{stdin}\n```\noutput:\n```\n{stdout}\n```",
        "For example, the input `{stdin}` must print `{stdout}`.",
        "",
    ),
    "stdio_ending": (
        "Explain your approach step by step, then give the complete program in one ```python code block.",
        "Plan it step by step, then write the whole program in a single ```python block.",
        "Briefly explain the idea, then give the full script in one ```python code block.",
    ),
}


def choose(choice: str) -> list[str]:
    """The styles a ``--prompt-style`` value names: one style, or every one for ``all``."""
    if choice == ALL:
        return list(STYLES)
    if choice not in STYLES:
        raise ValueError(f"unknown prompt style {choice!r}; choose from {', '.join(STYLES)} or {ALL}")
    return [choice]


def styled(instance: Instance, style: str) -> Instance:
    """``instance`` asked in ``style``: same tests, another prompt and entry point (ValueError for a style
    that does not exist, or for an instance whose problem type declares no wording, e.g. HumanEval)."""
    choose(style)
    if style == instance.style:
        return instance
    if instance.style != "contract":
        raise ValueError("restyle the contract-style instance, not an already styled one")
    from . import REGISTRY  # the registry imports the problem modules, which import base: no cycle at load

    ptype = REGISTRY.get(instance.problem)
    if ptype is None or ptype.wording is None:
        raise ValueError(f"{instance.problem} has only its own prompt style (contract)")
    return {"terse": _terse, "stub": _stub, "stdio": _stdio}[style](instance, ptype)


def _params(ptype: ProblemType) -> list[str]:
    node = ast.parse(ptype.signature + "\n    pass").body[0]
    return [a.arg for a in node.args.args]


def _terse(instance: Instance, ptype: ProblemType) -> Instance:
    prompt = f"Write a Python function `{ptype.entry_point}({', '.join(_params(ptype))})` that {ptype.wording.terse}."
    return replace(instance, prompt=prompt, style="terse")


def _stub(instance: Instance, ptype: ProblemType) -> Instance:
    w = ptype.wording
    call = instance.example.call_repr(w.stub_name)
    doc = "\n".join(("    " + line).rstrip() for line in
                    (w.docstring.strip() + f"\n\n>>> {call}\n{_py(instance.example.expected)}").splitlines())
    raw = "r" if "\\" in doc else ""  # a backslash in the example must not become an escape sequence
    signature = f"def {w.stub_name}({', '.join(w.stub_args)}):"
    stub = f'{signature}\n    {raw}"""{doc.strip()}\n    """\n'
    prompt = ("Complete the following Python function so that it does what its docstring says.\n\n"
              f"```python\n{stub.rstrip()}\n```\n\n"
              "Give the complete function (with any imports or helpers it needs) in one ```python code block.")
    reference = re.sub(rf"\b{re.escape(ptype.entry_point)}\b", w.stub_name, instance.reference)
    return replace(instance, prompt=prompt, entry_point=w.stub_name, signature=signature, reference=reference,
                   stub=stub, style="stub")


_MAIN = '''

def main():
    args = json.loads(sys.stdin.read())
    print(json.dumps({entry}(*args)))


if __name__ == "__main__":
    main()
'''


def stdio_prompt(params: list[str], contract: str, stdin: str, stdout: str, intro: int = 0, io: int = 0,
                 example: int = 0, ending: int = 0) -> str:
    """A ``stdio`` prompt for a task with arguments ``params``: phrasing 0 of each part is the evaluation's."""
    names = ", ".join(f"`{p}`" for p in params)
    shown = PHRASINGS["stdio_example"][example].format(stdin=stdin, stdout=stdout)
    return (f"{PHRASINGS['stdio_intro'][intro]}\n\n{PHRASINGS['stdio_io'][io].format(params=', '.join(params))}\n\n"
            f"The task, where {names} {'is' if len(params) == 1 else 'are'} the input (\"return\" means print as "
            f"the answer):\n{contract.strip()}\n\n" + (f"{shown}\n\n" if shown else "")
            + PHRASINGS["stdio_ending"][ending])


def _stdio(instance: Instance, ptype: ProblemType) -> Instance:
    params = _params(ptype)
    prompt = stdio_prompt(params, ptype.contract, stdin_text(instance.example.args).strip(),
                          json.dumps(instance.example.expected))
    reference = "import json\nimport sys\n\n" + instance.reference.rstrip("\n") + "\n" + \
        _MAIN.format(entry=ptype.entry_point)
    return replace(instance, prompt=prompt, entry_point=STDIO_ENTRY, signature="", reference=reference,
                   style="stdio")


# ---------------------------------------------------------------------------------------------- stdio

def stdin_text(args: list) -> str:
    """What a ``stdio`` program reads for one test: its arguments as one line of JSON."""
    return json.dumps(args) + "\n"


_DRIVER = '''

# ---- added by algodistill's stdio driver, not part of the answer
import io as _algodistill_io, sys as _algodistill_sys

_algodistill_program = compile({source!r}, "<solution>", "exec")


class _AlgodistillOut(_algodistill_io.BytesIO):
    def close(self):  # a program that closes stdout keeps what it printed
        pass


def {entry}(stdin_text):
    sys = _algodistill_sys
    saved = sys.stdin, sys.stdout, sys.argv
    raw = _AlgodistillOut()
    out = _algodistill_io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    sys.stdin = _algodistill_io.TextIOWrapper(_algodistill_io.BytesIO(stdin_text.encode("utf-8")), encoding="utf-8")
    sys.stdout, sys.argv = out, ["main.py"]
    try:
        # exit/quit: the sandbox's python runs without site, which is what defines them
        exec(_algodistill_program, {{"__name__": "__main__", "__builtins__": __builtins__,
                                     "exit": sys.exit, "quit": sys.exit}})
    except SystemExit:
        pass  # sys.exit() ends a program normally: what it printed is its answer
    finally:
        sys.stdin, sys.stdout, sys.argv = saved
        try:
            out.flush()
        except ValueError:
            pass
    return raw.getvalue().decode("utf-8", "replace")
'''


def stdio_program(code: str) -> str:
    """The program the sandbox defines for a ``stdio`` answer: a driver holding ``code`` as text, whose
    ``STDIO_ENTRY(stdin_text)`` runs it as ``__main__`` on that input and returns what it printed."""
    return _DRIVER.format(source=code, entry=STDIO_ENTRY).lstrip("\n")


def printed_answer(text: str) -> tuple[object, str | None]:
    """(value, None) from the last non-empty line a ``stdio`` program printed, read as JSON; or (None, why
    not) when it printed nothing or that line is not JSON."""
    lines = [line for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    if not lines:
        return None, "the program printed nothing to stdout (it must print the answer as JSON on one line)"
    try:
        return json.loads(lines[-1]), None
    except (ValueError, RecursionError):
        return None, f"the last line the program printed is not JSON: {lines[-1][:200]!r}"
