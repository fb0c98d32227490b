"""Why answers failed: every sample of an evaluation counted under one cause, for the Eval tab's failure
breakdown, and the Inspect verdict filter that lists the samples of a cause."""

from __future__ import annotations

from ..verify import FAILURE_KINDS

CUT_OFF = "cut_off"
# a failing answer the max-new-tokens cap cut off failed because it was cut off, whatever its verdict says
CAUSES = ("passed",) + tuple(FAILURE_KINDS) + (CUT_OFF,)
LABELS = {"passed": "passed", "no_code": "no code", "syntax_error": "syntax error",
          "missing_function": "missing function", "exception": "exception", "wrong_answer": "wrong answer",
          "timeout": "timeout", "crash": "crash", CUT_OFF: "cut off"}


def cause(sample: dict) -> str:
    if sample["status"] == "passed":
        return "passed"
    return CUT_OFF if sample.get("cut_off") else sample["status"]


def failure_breakdown(samples: list[dict]) -> dict[str, int]:
    """Samples per cause, every cause present (zeros too), in the order of ``CAUSES``."""
    counts = dict.fromkeys(CAUSES, 0)
    for s in samples:
        counts[cause(s)] = counts.get(cause(s), 0) + 1
    return counts


def inspect_filter(name: str) -> str:
    """The Inspect verdict filter for a cause: the verdict itself; cut-off answers are listed among the
    failing ones (Inspect flags each of them)."""
    return "failing only" if name == CUT_OFF else name


def breakdown_line(label: str, samples: list[dict]) -> str:
    """One markdown line: the samples of an evaluation by cause, the causes that occur only."""
    counts = failure_breakdown(samples)
    parts = [f"{n} {LABELS[c]}" for c, n in counts.items() if n]
    return f"**{label}**: {len(samples)} samples" + (" — " + " · ".join(parts) if parts else "")
