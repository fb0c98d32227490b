"""Training speed and memory for the reference recipe: LoRA r16/a32 all-linear, effective batch 4, max
length 1024, on the bundled traces, through the product's own `run_training`. Prints one JSON object.

    python bench/train.py                           # tiny random model, 10 steps (any machine, seconds)
    python bench/train.py --arch qwen2.5-0.5b       # the Qwen2.5-0.5B architecture with random weights,
                                                    # the full 3-epoch loop (the GPU target: <= 30 s, <= 4 GB)
    python bench/train.py --model qwen2.5-coder-0.5b --max-steps 3 --compare
                                                    # real weights: today's defaults against the old ones
                                                    # (batch 4 padded, gradient checkpointing, float32), each
                                                    # in its own process (peak RSS), first losses side by side
    [--tokenizer DIR]  a real tokenizer for real token counts (e.g. a converted Qwen GGUF directory)
    [--max-steps N] [--device cpu|cuda] [--batch-size B] [--[no-]gradient-checkpointing] [--dtype D]

Weights do not change the cost, so random weights give valid speed and memory figures. Name the CPU next to
CPU figures (the JSON carries /proc/cpuinfo's model name and flags that matter).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.models import DTYPES, cpu_has_bf16, default_device, tiny_model  # noqa: E402
from algodistill.store import Store  # noqa: E402
from algodistill.train_sft import SFTSettings, run_training  # noqa: E402

OLD_DEFAULTS = ["--batch-size", "4", "--gradient-checkpointing", "--dtype", "float32"]  # before issue 20


def cpu() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    name = re.search(r"model name\s*:\s*(.+)", text)
    flags = set(re.search(r"flags\s*:\s*(.+)", text).group(1).split()) if "flags" in text else set()
    return {"cpu": name.group(1).strip() if name else None, "bf16_native": cpu_has_bf16(),
            "flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})}


def one(args) -> dict:
    device = default_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        import torch
        began = time.perf_counter()
        model = args.model or tiny_model(Path(tmp) / "model", arch=args.arch, tokenizer_from=args.tokenizer,
                                         dtype=torch.bfloat16 if device.startswith("cuda") else None)
        build_s = time.perf_counter() - began
        steps = args.max_steps if args.max_steps is not None else (10 if args.arch == "tiny" and not args.model else -1)
        settings = SFTSettings(model=model, max_steps=steps, device=device, output_dir=str(Path(tmp) / "adapter"),
                               batch_size=args.batch_size, gradient_checkpointing=args.gradient_checkpointing,
                               dtype=args.dtype, checkpoint_steps=0, checkpoint_minutes=0)
        store = Store(Path(tmp) / "runs.db")
        run = store.create_run("train", vars(settings))
        began = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its logs; stdout is the JSON
            summary = run_training(store, run, settings, log=lambda m: print(m, file=sys.stderr))
        total_s = time.perf_counter() - began
        losses = [round(m["value"], 5) for m in store.metrics(run, names=["loss"])]
    chosen = summary.get("chosen", {})
    return {
        "bench": "train", "model": args.model or args.arch, "tokenizer": args.tokenizer or "byte-level",
        "device": device, "dtype": summary["dtype"], "per_device_batch": chosen.get("per_device_batch"),
        "grad_accum": chosen.get("grad_accum"), "gradient_checkpointing": chosen.get("gradient_checkpointing"),
        "steps": summary["steps"], "epochs": settings.epochs if steps < 0 else None,
        "traces": summary["traces"]["kept"], "tokens": summary["tokens"],
        "train_loop_s": round(summary["train_seconds"], 2), "run_total_s": round(total_s, 2),
        "model_build_s": round(build_s, 2), "tokens_per_s": round(summary["tokens_per_s"] or 0, 1),
        "peak_gpu_mb": round(summary.get("peak_gpu_mb", 0), 1) or None,
        "peak_rss_mb": round(summary["peak_rss_mb"], 1), "losses": losses,
        "trainable_params": summary["parameters"]["trainable"], **cpu(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "qwen2.5-0.5b"), default="tiny")
    parser.add_argument("--model", help="a real model spec (hub id, directory, .gguf, offline name) instead of --arch")
    parser.add_argument("--tokenizer", help="model directory whose tokenizer to use")
    parser.add_argument("--max-steps", type=int, default=None, help="default: 10 for tiny, full 3 epochs otherwise")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=0, help="per-device batch (0: the product's auto choice)")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="trade compute for activation memory (default: the product's auto choice)")
    parser.add_argument("--dtype", choices=DTYPES, default="auto")
    parser.add_argument("--compare", action="store_true",
                        help="run the old defaults and today's, each in a process of its own, and report both")
    args = parser.parse_args()
    if not args.compare:
        print(json.dumps(one(args), indent=2))
        return
    keep = [a for a in sys.argv[1:] if a != "--compare"]
    results = {}
    for name, extra in (("old", OLD_DEFAULTS), ("new", [])):
        out = subprocess.run([sys.executable, __file__, *keep, *extra], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(out.stdout)
    old, new = results["old"], results["new"]
    first = min(len(old["losses"]), len(new["losses"]))
    print(json.dumps({"bench": "train-compare", **cpu(), "old": old, "new": new,
                      "speedup_tokens_per_s": round(new["tokens_per_s"] / old["tokens_per_s"], 2) if old["tokens_per_s"] else None,
                      "peak_rss_ratio": round(new["peak_rss_mb"] / old["peak_rss_mb"], 2),
                      "loss_max_abs_diff": max((abs(a - b) for a, b in zip(old["losses"][:first], new["losses"][:first])),
                                               default=None)}, indent=2))


if __name__ == "__main__":
    main()
