"""Training speed and memory for the reference recipe: LoRA r16/a32 all-linear, effective batch 4, max
length 1024, on the bundled traces, through the product's own `run_training`. Prints one JSON object.

    python bench/train.py                           # tiny random model, 10 steps (any machine, seconds)
    python bench/train.py --arch qwen2.5-0.5b       # the Qwen2.5-0.5B architecture with random weights,
                                                    # the full 3-epoch loop (the GPU target: <= 30 s, <= 4 GB)
    [--tokenizer DIR]  a real tokenizer for real token counts (e.g. a converted Qwen GGUF directory)
    [--max-steps N] [--device cpu|cuda]

Weights do not change the cost, so random weights give valid speed and memory figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.models import default_device, tiny_model  # noqa: E402
from algodistill.store import Store  # noqa: E402
from algodistill.train_sft import SFTSettings, run_training  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "qwen2.5-0.5b"), default="tiny")
    parser.add_argument("--tokenizer", help="model directory whose tokenizer to use")
    parser.add_argument("--max-steps", type=int, default=None, help="default: 10 for tiny, full 3 epochs otherwise")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=SFTSettings.batch_size,
                        help="per-device batch (the rest of the effective batch 4 is accumulation)")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                        default=SFTSettings.gradient_checkpointing, help="trade compute for activation memory")
    args = parser.parse_args()
    device = default_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        import torch
        began = time.perf_counter()
        model = tiny_model(Path(tmp) / "model", arch=args.arch, tokenizer_from=args.tokenizer,
                           dtype=torch.bfloat16 if device.startswith("cuda") else None)
        build_s = time.perf_counter() - began
        steps = args.max_steps if args.max_steps is not None else (10 if args.arch == "tiny" else -1)
        settings = SFTSettings(model=model, max_steps=steps, device=device, output_dir=str(Path(tmp) / "adapter"),
                               batch_size=args.batch_size, gradient_checkpointing=args.gradient_checkpointing)
        store = Store(Path(tmp) / "runs.db")
        run = store.create_run("train", vars(settings))
        began = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its logs; stdout is the JSON
            summary = run_training(store, run, settings, log=lambda m: print(m, file=sys.stderr))
        total_s = time.perf_counter() - began
    print(json.dumps({
        "bench": "train", "arch": args.arch, "tokenizer": args.tokenizer or "byte-level", "device": device,
        "dtype": summary["dtype"], "batch_size": settings.batch_size,
        "gradient_checkpointing": settings.gradient_checkpointing, "steps": summary["steps"], "epochs": settings.epochs if steps < 0 else None,
        "traces": summary["traces"]["kept"], "tokens": summary["tokens"],
        "train_loop_s": round(summary["train_seconds"], 2), "run_total_s": round(total_s, 2),
        "model_build_s": round(build_s, 2), "tokens_per_s": round(summary["tokens_per_s"] or 0, 1),
        "peak_gpu_mb": round(summary.get("peak_gpu_mb", 0), 1) or None,
        "peak_rss_mb": round(summary["peak_rss_mb"], 1),
        "trainable_params": summary["parameters"]["trainable"],
    }, indent=2))


if __name__ == "__main__":
    main()
