"""Generation and grid speed: aggregate tokens/s of batched generation against one prompt at a time (same
model, same prompts, same run), then the wall time of the whole grid from settings to stored results
(model load, generation, sandboxed verification, store). Prints one JSON object.

    python bench/eval.py                            # tiny random model (any machine)
    python bench/eval.py --arch qwen2.5-0.5b        # the Qwen2.5-0.5B architecture, random weights
    [--model SPEC]  a real model instead (e.g. smollm2-135m or a .gguf file)
    [--tokenizer DIR] [--prompts 16] [--max-new-tokens 128] [--grid-max-new-tokens 256] [--device cpu|cuda]
    --compare [--batch-size N]   only this: the same prompts (spread over the grid) through padded batches of N
                                 (0: the automatic size) and through refilled slots, same model, same run; the
                                 greedy answers must be identical (asserted)
        [--samples K --temperature T]   sampled, K seeded samples per prompt (how many answers agree is
                                 reported: the same seed draws the same answer up to the batch's rounding)

Random models rarely emit the end-of-turn token, so each answer runs to max-new-tokens: the cap keeps the
figures comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.evaluate import EvalSettings  # noqa: E402
from algodistill.model_eval import evaluate_model  # noqa: E402
from algodistill.generation import Generator  # noqa: E402
from algodistill.models import default_device, tiny_model  # noqa: E402
from algodistill.problems import grid  # noqa: E402
from algodistill.store import Store  # noqa: E402


def rate(generator: Generator, prompts: list[str], max_new: int, batch: int) -> dict:
    began = time.perf_counter()
    tokens = sum(g.tokens for out in generator.generate(prompts, max_new, batch_size=batch) for g in out)
    seconds = time.perf_counter() - began
    return {"batch_size": batch, "tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def compare(generator: Generator, prompts: list[str], max_new: int, batch: int, samples: int = 1,
            temperature: float = 0.0) -> dict:
    """The padded static path and the refilled continuous one on the same prompts, one after the other; sampled
    (``temperature`` > 0), each prompt ``samples`` times with a seed per row, as an evaluation draws them."""
    runs, texts = {}, {}
    rows = [p for p in prompts for _ in range(samples)]
    seeds = list(range(len(rows))) if temperature else None
    for mode in ("static", "continuous"):
        generator.batching = mode
        began = time.perf_counter()
        out = [g for chunk in generator.generate(rows, max_new, batch_size=batch, temperature=temperature,
                                                  seeds=seeds) for g in chunk]
        seconds = time.perf_counter() - began
        texts[mode] = {g.index: g.text for g in out}
        tokens = sum(g.tokens for g in out)
        runs[mode] = {"seconds": round(seconds, 1), "tokens": tokens, "tokens_per_s": round(tokens / seconds, 2),
                      "cut_off": sum(g.cut_off for g in out)}
        print(f"{mode}: {runs[mode]}", file=sys.stderr, flush=True)
    same = texts["static"] == texts["continuous"]
    differ = [i for i in texts["static"] if texts["static"][i] != texts["continuous"].get(i)]
    if not temperature:
        assert same, f"greedy answers differ between the paths for prompts {differ}"
    return {"prompts": len(prompts), "samples": samples, "temperature": temperature, "rows": len(rows),
            "max_new_tokens": max_new, "batch_size": batch, "dtype": generator.dtype, **runs, "identical": same,
            "identical_answers": len(rows) - len(differ),
            "speedup": round(runs["static"]["seconds"] / runs["continuous"]["seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "qwen2.5-0.5b"), default="tiny")
    parser.add_argument("--model", help="a real model spec instead of a random one")
    parser.add_argument("--tokenizer", help="model directory whose tokenizer to use (random models)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--grid-max-new-tokens", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compare", action="store_true", help="static vs continuous batching only (see above)")
    parser.add_argument("--batch-size", type=int, default=0, help="static batch size for --compare (0: automatic)")
    parser.add_argument("--samples", type=int, default=1, help="--compare: samples per prompt (seeded)")
    parser.add_argument("--temperature", type=float, default=0.0, help="--compare: > 0 samples (with --samples)")
    args = parser.parse_args()
    device = default_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        import torch
        model = args.model or tiny_model(Path(tmp) / "model", arch=args.arch, tokenizer_from=args.tokenizer,
                                         dtype=torch.bfloat16 if device.startswith("cuda") else None)
        generator = Generator(model, device=device, backend="hf", log=lambda m: print(m, file=sys.stderr))
        if args.compare:  # every k-th grid prompt: all problem types, short and long answers
            every = [i.prompt for i in grid()]
            prompts = every[:: max(1, len(every) // args.prompts)][: args.prompts]
            result = compare(generator, prompts, args.max_new_tokens, args.batch_size, args.samples,
                             args.temperature)
            print(json.dumps({"bench": "eval --compare", "model": args.model or f"random {args.arch}",
                              "device": device, **result}, indent=2))
            return
        prompts = [i.prompt for i in grid()][: args.prompts]
        rate(generator, prompts[:2], 4, 2)  # warm-up
        batched = rate(generator, prompts, args.max_new_tokens, len(prompts))
        print(f"batched: {batched}", file=sys.stderr, flush=True)
        single = rate(generator, prompts, args.max_new_tokens, 1)
        print(f"one at a time: {single}", file=sys.stderr, flush=True)
        del generator
        store = Store(Path(tmp) / "runs.db")
        settings = EvalSettings(model=model, max_new_tokens=args.grid_max_new_tokens, device=device, backend="hf")
        run = store.create_run("eval", vars(settings))
        began = time.perf_counter()
        summary = evaluate_model(store, run, settings, log=lambda m: print(m, file=sys.stderr))[run]
        grid_s = time.perf_counter() - began
    print(json.dumps({
        "bench": "eval", "model": args.model or f"random {args.arch}", "device": device,
        "generation": {"prompts": len(prompts), "max_new_tokens": args.max_new_tokens, "batched": batched,
                       "one_at_a_time": single,
                       "speedup": round(batched["tokens_per_s"] / single["tokens_per_s"], 2)},
        "grid": {"problems": summary["n"], "solved": summary["solved"], "max_new_tokens": args.grid_max_new_tokens,
                 "wall_s": round(grid_s, 2), "stored_samples": len(store.samples(run))},
    }, indent=2))


if __name__ == "__main__":
    main()
