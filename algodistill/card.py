"""The model card of a LoRA adapter trained here: base model, data, training, settings, and the results of
every evaluation run on it once they exist (newest first, each saying which grid it covered)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .models import HUB_IDS

CARD_EVAL_MARK = "<!-- algodistill:evaluation -->"


def _sft_text(settings: Any, summary: dict, run_id: int) -> tuple[str, str, str]:
    """(how it was trained, the Data section, the training result line) of an SFT adapter."""
    traces = summary.get("traces", {})
    loss = summary.get("final_loss")
    how = (f"Trained with algodistill (run {run_id}) by supervised fine-tuning on verified\nteacher traces: each "
           "trace's code was run against its problem's hidden tests before training, and only\nthose that passed "
           "were used.")
    data = (f"- Trace file: `{traces.get('file', settings.traces)}`\n"
            f"- Kept (verified): {traces.get('kept', '?')}; rejected: {traces.get('rejected', '?')}")
    return how, data, f"- Final loss: {f'{loss:.4f}' if isinstance(loss, float) else loss}"


def _grpo_text(settings: Any, summary: dict, run_id: int) -> tuple[str, str, str]:
    """(how it was trained, the Data section, the training result line) of a GRPO adapter."""
    prompts = summary.get("prompts", {})
    start = f" It started from the SFT adapter `{settings.adapter}`." if settings.adapter else ""
    how = (f"Trained with algodistill (run {run_id}) by GRPO (TRL's GRPOTrainer) with the verifier as the\nreward: "
           "every sampled answer's code ran in the sandbox against its problem's hidden tests, and its reward\nwas "
           f"the fraction of tests passed, plus {settings.format_bonus:g} for one well-formed python block defining "
           f"the function.{start}")
    data = (f"- Prompts from the problem generator, training seed {prompts.get('seed', '?')}: "
            f"{prompts.get('instances', '?')} instances of {', '.join(settings.problems)} at difficulties "
            f"{', '.join(map(str, settings.difficulties))} (no traces)\n"
            f"- Dropped as identical to an evaluation instance: {prompts.get('dropped_in_eval_grid', '?')}")
    first, last, passed = (summary.get(k) for k in ("first_reward", "final_reward", "final_pass_rate"))
    shown = [f"{v:.3f}" if isinstance(v, float) else "?" for v in (first, last)]
    rate = f"; all tests passed by {passed:.0%} of the last step's answers" if isinstance(passed, float) else ""
    return how, data, f"- Mean reward: {shown[0]} at the first step, {shown[1]} at the last{rate}"


def write_model_card(out: Path, settings: Any, summary: dict, run_id: int) -> None:
    """README.md (the card), the hub model in adapter_config.json, and algodistill.json (run, settings, summary).
    ``settings``: an SFT run's, or a GRPO run's (``method`` "grpo")."""
    method = getattr(settings, "method", "sft")
    how, data, result = (_grpo_text if method == "grpo" else _sft_text)(settings, summary, run_id)
    rows = "\n".join(f"| {k} | {v} |" for k, v in asdict(settings).items())
    hub = HUB_IDS.get(settings.model)
    base = hub or settings.model
    quantized = (f"\n\nThe base weights were the offline `{settings.model}` GGUF, dequantized: close to `{hub}` but "
                 "not identical, so this adapter on the hub weights may score slightly differently." if hub else "")
    card = f"""---
base_model: {base}
library_name: peft
pipeline_tag: text-generation
tags: [lora, {method}, trl, algodistill]
---

# {settings.experiment}: LoRA adapter for {settings.model}

{how}{quantized}

## Data
{data}

## Training
- Steps: {summary.get('steps')} of {summary.get('max_steps')}{' (stopped early on request)' if summary.get('stopped_early') else ''}
{result}
- Trainable parameters: {summary.get('parameters', {}).get('trainable')} of {summary.get('parameters', {}).get('total')}
- Device: {summary.get('device')}, dtype {summary.get('dtype')}; {summary.get('train_seconds', 0):.0f} s

| setting | value |
|---|---|
{rows}

## Evaluation
{CARD_EVAL_MARK}
Not evaluated yet: `python -m algodistill eval --model {settings.model} --adapter {out} --compare-base`

## Load it
```python
from transformers import AutoModelForCausalLM
from peft import PeftModel
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "{out}")
```
"""
    (out / "README.md").write_text(card, encoding="utf-8")
    config = out / "adapter_config.json"
    if hub and config.is_file():  # name the hub model, not this machine's dequantized cache
        data = json.loads(config.read_text())
        data["base_model_name_or_path"] = hub
        config.write_text(json.dumps(data, indent=2))
    (out / "algodistill.json").write_text(json.dumps({"run": run_id, "settings": asdict(settings),
                                                      "summary": summary}, indent=2, default=str))


def add_eval_to_card(adapter_dir: str | Path, summary: dict, run_id: int, *, grid: str = "",
                     base: tuple[int, dict] | None = None) -> bool:
    """Put an evaluation's results into the adapter's model card: one entry per evaluation run, newest
    first, saying which grid it was (a partial grid must not read as the headline) and, when the base
    model ran on the same instances, its score. Re-evaluating a run replaces its own entry."""
    card = Path(adapter_dir) / "README.md"
    if not card.is_file():
        return False
    text = card.read_text(encoding="utf-8")
    if CARD_EVAL_MARK not in text:
        return False
    per = "\n".join(f"| {p} | {g['solved']}/{g['n']} | {g['partial_credit']:.0%} |"
                    for p, g in summary["per_problem"].items())
    low, high = summary["accuracy_ci"]
    entry = (f"### Evaluation run {run_id}\n"
             + (f"Grid: {grid}.\n\n" if grid else "")
             + f"**{summary['solved']}/{summary['n']} solved ({summary['accuracy']:.1%}, 95% CI {low:.0%}-{high:.0%})**, "
             f"partial credit {summary['partial_credit']:.1%}; all tests must pass for a problem to count as solved.")
    if base:
        base_run, b = base
        entry += (f" The base model on the same problems (run {base_run}): {b['solved']}/{b['n']} "
                  f"({b['accuracy']:.1%}), so {summary['solved'] - b['solved']:+d}.")
    entry += f"\n\n| problem | solved | partial credit |\n|---|---|---|\n{per}\n"
    head, _, rest = text.partition(CARD_EVAL_MARK)
    end = rest.find("\n## ")
    body, tail = (rest[:end], rest[end:]) if end >= 0 else (rest, "\n")
    kept = [e for e in re.split(r"\n(?=### Evaluation run )", body)
            if e.strip().startswith("### Evaluation run ") and not e.strip().startswith(f"### Evaluation run {run_id}\n")]
    entries = [entry] + [e.strip("\n") + "\n" for e in kept]
    card.write_text(head + CARD_EVAL_MARK + "\n" + "\n".join(entries) + tail, encoding="utf-8")
    return True

