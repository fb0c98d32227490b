"""Several processes, one run: data-parallel training and sharded evaluation through Accelerate.

A launcher (``accelerate launch``, ``torchrun``) starts one copy of a ``train`` or ``eval`` command per GPU, or
per CPU share, on one machine or several. The copies meet through torch.distributed as Accelerate sets it up
(``PartialState``: NCCL on GPUs, gloo on CPUs) and split the work; the run store sees one run:

- **Only the main process touches the store.** It creates or resumes the run, writes its row, metrics and
  samples, and hands the run's id and settings to the others (``Processes.from_main``). The others are given a
  ``Follower`` instead of the store: a stand-in whose writes go nowhere but whose samples are kept, to be sent to
  the main process. So no process but the main one needs the store's file: the processes may sit on other
  machines, and SQLite is never shared over a network file system.
- **Training** is TRL/Transformers' own data parallelism: every process runs ``train_sft.run_training``, the
  Trainer wraps the model in DistributedDataParallel and gives each process its share of each batch. What is
  added: the effective batch stays the total over all processes (``SFTSettings.split``), so a run has the same
  steps however many processes share it; every process stops and checkpoints at the same step, as the main
  process decides (``StoreCallback``); only the main process writes files (the Trainer's own ``save_model`` is
  main-only already; the tokenizer, model card and checkpoint clean-up are guarded the same way).
- **Evaluation** (``evaluate_sharded``): ``PartialState.split_between_processes`` gives each process its shard
  of the instances (dealt round-robin first, so each shard mixes problem types and difficulties instead of
  taking the first half of the types); each process generates and verifies its shard with ``evaluate_model``
  (greedy answers do not depend on which process gives them); the main process stores its own samples as they
  are judged, as ever, and at the end of each pass ``gather_object`` brings it the others' samples, which it
  stores in the same run before finishing it with one summary. While the pass runs, the run's progress line
  counts the main process's shard.

A single process (no launcher, or a launcher with one process) never initializes torch.distributed: every
method is then the plain single-process path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Callable

# A process that finishes its evaluation shard first waits for the others at the gather; the default timeout of
# torch.distributed's collectives (30 min for gloo) could end a long evaluation on CPUs there.
COLLECTIVE_TIMEOUT = timedelta(hours=12)
_WORST_FIRST = ("failed", "stopped", "completed")


def launched() -> bool:
    """Whether a launcher started this process as one of several (it sets WORLD_SIZE for each)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """The process that owns the run store: rank 0 of a launch, or the only process. Reads the launcher's
    environment, so it can be asked before (or without) torch.distributed being set up."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Processes:
    """This process's place in a launch: ``world`` processes, this one ``rank`` (0: the main one)."""
    world: int = 1
    rank: int = 0
    state: Any = None  # accelerate's PartialState when several

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def from_main(self, make: Callable[[], Any] | None) -> Any:
        """``make()`` on the main process; its result on every process, or the exception it raised raised on
        every process (so a refused command ends every copy with the same message instead of leaving them
        waiting). The other processes' ``make`` is never called."""
        if self.world == 1:
            return make()
        from accelerate.utils import broadcast_object_list
        outcome: list = [None]
        if self.is_main:
            try:
                outcome[0] = ("ok", make())
            except Exception as exc:  # noqa: BLE001 - handed over, then raised here too
                outcome[0] = ("error", exc)
        broadcast_object_list(outcome, from_process=0)
        kind, value = outcome[0]
        if kind == "error":
            raise value
        return value

    def shard(self, items: list) -> list:
        """This process's share of ``items`` through ``split_between_processes``, dealt round-robin first:
        process k gets items k, k + world, k + 2 world ... (each shard a mix of the whole list; the sizes
        ``split_between_processes`` gives, which differ by at most one)."""
        if self.world == 1:
            return list(items)
        dealt = [items[k] for start in range(self.world) for k in range(start, len(items), self.world)]
        with self.state.split_between_processes(dealt) as mine:
            return list(mine)

    def gather(self, value: Any) -> list:
        """Every process's ``value``, in rank order, on every process (``gather_object``)."""
        if self.world == 1:
            return [value]
        from accelerate.utils import gather_object
        return gather_object([value])


_current: list[Processes] = []


def processes(device: str | None = "auto") -> Processes:
    """This process's ``Processes``, set up by the first call (later calls return it, whatever they pass). Under a
    launcher this initializes Accelerate's ``PartialState``: on the CPU when ``device`` resolves to it (gloo),
    else on this process's GPU (NCCL; Accelerate selects GPU ``LOCAL_RANK``, so "cuda" means that one)."""
    if not _current:
        if launched():
            from accelerate import PartialState

            from .models import default_device
            state = PartialState(cpu=default_device(device) == "cpu", timeout=COLLECTIVE_TIMEOUT)
            _current.append(Processes(world=state.num_processes, rank=state.process_index, state=state))
        else:
            _current.append(Processes())
    return _current[0]


class Follower:
    """The run store as a process other than the main one sees it: no run row, nothing written, no stop request
    (a stop reaches it as a signal from the launcher, or through the main process at a training step's end). The
    samples it judges are kept (``kept``) for ``evaluate_sharded`` to send to the main process, with each run's
    final status (``finished``); ``done`` holds the sample keys the main process's store already has (a resumed
    evaluation), which ``evaluate_model`` skips. It has exactly the store methods that training and evaluation
    call, so a new call shows up as an AttributeError in the multi-process tests rather than as a silent write."""

    path = "(main process)"

    def __init__(self, done: dict[int, set] | None = None):
        self.done = done or {}
        self.kept: dict[int, list[dict]] = {}
        self.finished: dict[int, tuple[str, str | None]] = {}

    def mark_started(self, run_id: int, pid: int | None = None) -> None:
        pass

    def attach_process(self, run_id: int, pid: int | None = None) -> None:
        pass

    def update_run(self, run_id: int, **fields: Any) -> None:
        pass

    def finish_run(self, run_id: int, status: str, error: str | None = None, summary: dict | None = None,
                   message: str | None = None) -> None:
        self.finished[run_id] = (status, error)

    def get_run(self, run_id: int) -> dict:
        return {"id": run_id, "settings": {}}

    def stop_requested(self, run_id: int) -> bool:
        return False

    def last_step(self, run_id: int) -> int | None:
        return None

    def log_metrics(self, run_id: int, step: int, values: dict, epoch: float | None = None) -> None:
        pass

    def add_sample(self, run_id: int, sample: dict) -> None:
        self.kept.setdefault(run_id, []).append(dict(sample))

    def samples(self, run_id: int, **_) -> list[dict]:
        return list(self.kept.get(run_id, []))

    def done_keys(self, run_id: int) -> set:
        return set(self.done.get(run_id, ()))


class _Held:
    """The main process's store during a sharded pass: everything goes through, except that finishing a run
    waits (``finished``) until the other processes' samples are in it; meanwhile its progress line says so."""

    def __init__(self, store):
        self._store = store
        self.finished: dict[int, tuple[str, str | None]] = {}

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def finish_run(self, run_id: int, status: str, error: str | None = None, summary: dict | None = None,
                   message: str | None = None) -> None:
        self.finished[run_id] = (status, error)
        self._store.update_run(run_id, message=f"this process's shard {status}; waiting for the other processes")


def evaluate_sharded(store, run_id: int, settings, *, base_run: int | None = None, **kwargs) -> dict:
    """``model_eval.evaluate_model`` for this process's shard of the instances; with one process, exactly it.

    Every process of a launch calls it with the same runs and settings (``store``: the run store on the main
    process, ignored elsewhere). Each generates and judges its shard of every pass; the main process then stores
    the others' samples, summarizes each run over all of them and finishes it: completed when every process
    completed it, else as the worst of them ended (failed, then stopped), with the first error given. Returns, on
    every process, {run id: summary} for the runs completed (the summaries on the main process, None elsewhere).
    The generation backend is transformers' (``hf``) here: vLLM spreads one engine over GPUs itself."""
    from .model_eval import evaluate_model
    procs = processes()
    if procs.world == 1:
        return evaluate_model(store, run_id, settings, base_run=base_run, **kwargs)
    if settings.backend == "vllm":
        raise ValueError("several processes evaluate with the transformers backend (hf); for vLLM use one process "
                         "(vLLM uses several GPUs through its own tensor parallelism)")
    ids = [run_id] + ([base_run] if base_run is not None else [])
    done = procs.from_main(lambda: {rid: store.done_keys(rid) for rid in ids})
    instances = settings.instances()
    local = _Held(store) if procs.is_main else Follower(done)
    failure: BaseException | None = None
    try:
        evaluate_model(local, run_id, replace(settings, backend="hf"), base_run=base_run,
                       instances=procs.shard(instances), **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the others still wait for this process's samples
        failure = exc
    parts = procs.gather({"finished": local.finished, "samples": {} if procs.is_main else local.kept})
    results: dict = {}
    for rid in ids:
        ends = [part["finished"].get(rid, ("failed", f"process {rank} did not finish it"))
                for rank, part in enumerate(parts)]
        status = min((end[0] for end in ends), key=_WORST_FIRST.index)
        if procs.is_main:
            _merge(store, rid, parts, status, next((end[1] for end in ends if end[1]), None),
                   len(instances) * settings.samples)
        if status == "completed":
            results[rid] = store.get_run(rid)["summary"] if procs.is_main else None
    if failure is not None:
        raise failure
    return results


def _merge(store, rid: int, parts: list[dict], status: str, error: str | None, wanted: int) -> None:
    """Store the other processes' samples of run ``rid`` and finish it as ``status``, with its summary over every
    process's samples when completed (a stopped or failed run keeps its samples and resumes, as with one)."""
    from .evaluate import summarize
    for part in parts[1:]:
        for row in part["samples"].get(rid, []):
            store.add_sample(rid, row)
    samples = store.samples(rid)
    solved = sum(s["status"] == "passed" for s in samples)
    counts = f"{len(samples)}/{wanted} judged, {solved} solved by {len(parts)} processes"
    store.update_run(rid, progress=len(samples) / wanted if wanted else 0.0, eta=None)
    store.finish_run(rid, status, error=error, summary=summarize(samples) if status == "completed" else None,
                     message=f"{status}: {counts}" + ("; Resume (or eval --resume) finishes it"
                                                       if status == "stopped" else ""))
