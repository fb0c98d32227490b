"""GRPO cost: the reward's throughput through the sandbox, and a GRPO step's wall time split into generation,
reward and the rest (log-probabilities, forward, backward, optimizer). Prints one JSON object.

    python bench/grpo.py                          # tiny random model (any machine, ~1 min on 2 cores)
    python bench/grpo.py --model smollm2-135m     # a real model (offline name, hub id, dir or .gguf)
    [--steps 4] [--generations 8] [--prompts-per-step 2] [--max-completion-length 128] [--device cpu|cuda]
    [--reward-completions 512]

Reward throughput: ``grpo.judge`` (every answer's program run in the sandbox against its hidden tests, in
parallel, plus the format check) over answers in batches of one step's completions (prompts x generations),
half of them the reference solution and half a wrong function, as a policy's answers would mix: verified
completions/s and tests/s.

Step time: a real ``run_grpo`` for ``--steps`` steps, with two of ``GRPOTrainer``'s methods timed in-process
(TRL's own profiling leaves the plain transformers generation path untimed and reports only to wandb, mlflow
or trackio); each step's wall time is the time between successive logged steps. Generation is
``_generate_single_turn`` (transformers or vLLM), reward is ``_calculate_rewards`` (our reward functions: the
sandbox, and storing the step's samples), the rest is the update (log-probabilities, forward, backward,
optimizer). The first step is reported apart (it includes warm-up). A random model never stops, so every
answer runs to the completion cap: the worst case for generation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill import grpo  # noqa: E402
from algodistill.models import tiny_model  # noqa: E402
from algodistill.problems import PROBLEM_TYPES, TRAIN_SEED, grid  # noqa: E402
from algodistill.store import Store  # noqa: E402
from algodistill.verify import fenced  # noqa: E402


def reward_throughput(completions: int, per_step: int) -> dict:
    instances = (grid(PROBLEM_TYPES, range(1, 11), seed=TRAIN_SEED) * (completions // 110 + 1))[:completions]
    answers = [fenced(i.reference) if k % 2 == 0 else f"```python\ndef {i.entry_point}(*args):\n    return None\n```"
               for k, i in enumerate(instances)]
    began, tests, passed = time.perf_counter(), 0, 0
    for start in range(0, completions, per_step):
        judged = grpo.judge(instances[start:start + per_step], answers[start:start + per_step])
        tests += sum(v.total for v, _ in judged)
        passed += sum(v.solved for v, _ in judged)
    seconds = time.perf_counter() - began
    assert passed == (completions + 1) // 2, f"{passed} passed: every reference must pass, no wrong answer may"
    return {"completions": completions, "batch": per_step, "seconds": round(seconds, 2),
            "completions_per_s": round(completions / seconds, 1), "tests_per_s": round(tests / seconds, 1),
            "cores": os.cpu_count()}


TIMED = ("_generate_single_turn", "_calculate_rewards")  # GRPOTrainer's generation (any backend) and reward phases


def step_times(model: str, steps: int, generations: int, prompts_per_step: int, length: int, device: str,
               tmp: Path) -> dict:
    from trl import GRPOTrainer
    phases: dict[tuple[int, str], float] = defaultdict(float)
    originals = {name: getattr(GRPOTrainer, name) for name in TIMED}

    def timed(name, method):
        def run(self, *args, **kwargs):
            began = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                phases[(self.state.global_step, name)] += time.perf_counter() - began
        return run

    for name, method in originals.items():
        setattr(GRPOTrainer, name, timed(name, method))
    store = Store(tmp / "runs.db")
    settings = grpo.GRPOSettings(model=model, problems=list(PROBLEM_TYPES), difficulties=[1, 3], per_cell=2,
                                 max_steps=steps, num_generations=generations, prompts_per_step=prompts_per_step,
                                 batch_size=generations, max_completion_length=length, device=device,
                                 gradient_checkpointing=False, output_dir=str(tmp / "adapter"))
    run = grpo.create_grpo_run(store, settings)
    began = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its logs; stdout is the JSON alone
        summary = grpo.run_grpo(store, run, settings, log=lambda m: print(m, file=sys.stderr))
    for name, method in originals.items():
        setattr(GRPOTrainer, name, method)
    assert store.get_run(run)["status"] == "completed", store.get_run(run)["error"]
    logged = {m["step"]: m["time"] for m in store.metrics(run, ["loss"])}
    start = min(m["time"] for m in store.metrics(run)) if not logged else began
    times, previous = [], store.get_run(run)["started"] or start
    for step in sorted(logged):
        times.append((step, logged[step] - previous))
        previous = logged[step]

    def phase(step: int, names: tuple[str, ...]) -> float:
        # the global step during step k's work is k - 1 (it counts completed steps)
        return sum(v for (s, name), v in phases.items() if s == step - 1 and name in names)

    rows = []
    for step, total in times:
        generation = phase(step, ("_generate_single_turn",))
        reward = phase(step, ("_calculate_rewards",))
        rows.append({"step": step, "seconds": round(total, 2), "generation": round(generation, 2),
                     "reward": round(reward, 2), "update": round(max(total - generation - reward, 0.0), 2)})
    steady = rows[1:] or rows
    mean = {key: round(statistics.mean(r[key] for r in steady), 2) for key in ("seconds", "generation", "reward",
                                                                                "update")}
    share = {key: f"{mean[key] / mean['seconds']:.0%}" for key in ("generation", "reward", "update")}
    tokens = [m["value"] for m in store.metrics(run, ["completions/mean_length"])]
    return {"model": model, "device": summary.get("device"), "steps": steps,
            "completions_per_step": generations * prompts_per_step, "max_completion_length": length,
            "mean_completion_length": round(statistics.mean(tokens), 1) if tokens else None,
            "first_step": rows[0] if rows else None, "steady_mean_s": mean, "steady_share": share, "per_step": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a real model; default: a tiny random one built here")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--prompts-per-step", type=int, default=2)
    p.add_argument("--max-completion-length", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reward-completions", type=int, default=512)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "tiny", hidden=64)
        out = {"reward": reward_throughput(args.reward_completions, args.generations * args.prompts_per_step),
               "step": step_times(model, args.steps, args.generations, args.prompts_per_step,
                                  args.max_completion_length, args.device, tmp)}
    if not args.model:
        out["step"]["model"] = "tiny random (hidden 64, 2 layers)"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
