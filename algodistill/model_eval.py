"""A model's evaluation: generate the grid's (or HumanEval's) answers with a model, judge each as it arrives and store
it, for an adapter and its base-model twin on the same instances, with progress lines that move while answers are
written and an estimate of the time left from the token rate. Scoring, summaries and the run layout are evaluate.py's;
this module is what runs a model."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

from .evaluate import EvalSettings, record_isolation, sample_seed, score_and_store, summarize
from .problems import Instance
from .stopping import StopTraining, StopWatch
from .store import Store

OOM_HINT = ("out of memory while generating: lower the batch size (0 = automatic halves on OOM) or "
            "max new tokens, or use a smaller model")


def evaluate_model(store: Store, run_id: int, settings: EvalSettings, *, base_run: int | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, log: Callable[[str], None] = print,
                   instances: list[Instance] | None = None) -> dict:
    """Generate and score the grid for ``run_id`` (and, with ``base_run``, the adapter-less base model on
    the very same instances). Samples are stored as they are judged; what a run already holds is skipped,
    so calling this again on an interrupted run resumes it. ``instances``: only these of the settings' grid (one
    process's shard, ``distributed.evaluate_sharded``); progress then counts them. Returns {run_id: summary}."""
    from concurrent.futures import ThreadPoolExecutor

    from .generation import Generator

    settings.check()
    passes = [(run_id, True)] + ([(base_run, False)] if base_run is not None else [])
    instances = settings.instances() if instances is None else instances
    done = {rid: store.done_keys(rid) for rid, _ in passes}
    # the (instance, sample number) pairs a run still lacks: a resumed run draws only those
    todo = {rid: [(i, k) for i in instances for k in range(settings.samples) if (*i.key, k) not in done[rid]]
            for rid, _ in passes}
    wanted = len(instances) * settings.samples  # progress counts samples, not instances
    total = wanted * len(passes)
    tracker = _Progress(store, [rid for rid, _ in passes], wanted,
                        {rid: wanted - len(todo[rid]) for rid, _ in passes}, samples=settings.samples)
    sampling = dict(temperature=settings.temperature, top_p=settings.top_p) if settings.temperature else {}
    store.mark_started(run_id)
    for rid, _ in passes:
        record_isolation(store, rid)
    for rid in tracker.ids[1:]:  # waits for the adapter pass, tied to this process so a crash shows
        store.update_run(rid, status="queued", error=None, finished=None)
        store.attach_process(rid)
    tracker.write()
    results, current = {}, run_id

    def judge(rid: int, items: list[tuple[Instance, str]], extras: list[dict]) -> None:
        tracker.judged(rid, score_and_store(store, rid, items, settings.limits(), extras=extras))

    # a Stop (store request or SIGTERM) interrupts the batch being generated within seconds, as in training;
    # batches already generated are still judged and stored when the verifier pool closes below
    watch = StopWatch(lambda: any(store.stop_requested(r) for r in tracker.ids))
    try:
        watch.__enter__()
        watch.arm()
        generator = Generator(settings.model, settings.adapter, device=settings.device, backend=settings.backend,
                              dtype=settings.dtype, log=log)
        for rid in tracker.ids:  # what the answers were computed in stays with the runs
            store.update_run(rid, settings=store.get_run(rid)["settings"] | {"dtype_used": generator.dtype})
        with ThreadPoolExecutor(1) as verifier:  # verification of batch k overlaps generation of batch k+1
            for rid, with_adapter in passes:
                current, pending, stopped = rid, [], False
                if rid != run_id:
                    store.mark_started(rid)
                tracker.begin(rid)
                with (contextlib.nullcontext() if with_adapter else generator.base_model()):
                    items = todo[rid]
                    seeds = {"seeds": [sample_seed(settings.seed, i.key, k) for i, k in items]} if sampling else {}
                    for batch in generator.generate([i.prompt for i, _ in items], settings.max_new_tokens,
                                                    settings.batch_size, **sampling, **seeds):
                        pending.append(verifier.submit(
                            judge, rid, [(items[g.index][0], g.text) for g in batch],
                            [{"sample": items[g.index][1], "gen_time": g.seconds, "tokens": g.tokens,
                              "cut_off": int(g.cut_off)} for g in batch]))
                        tracker.generated(rid, len(batch))
                        if progress:
                            progress(sum(tracker.gen.values()), total)
                        if (should_stop and should_stop()) or store.stop_requested(rid):  # Stop on either run
                            stopped = True
                            break
                for future in pending:
                    future.result()
                if stopped:
                    for r in tracker.ids:
                        if r not in results:
                            tracker.finish(r, "stopped", error="stopped on request; the samples judged so far are kept: "
                                                                    "Resume (or eval --resume) finishes it")
                    return results
                summary = summarize(store.samples(rid))
                tracker.finish(rid, "completed", summary=summary)
                results[rid] = summary
    except BaseException as exc:
        watch.disarm()
        if isinstance(exc, Exception):
            status = "failed"
            message = OOM_HINT if "out of memory" in str(exc).lower() else f"{type(exc).__name__}: {exc}"
        else:  # StopTraining (a stop request, SIGTERM) or Ctrl-C: what was judged is kept
            status, message = "stopped", "stopped on request; the samples judged so far are kept: Resume (or eval --resume) finishes it"
        for rid in tracker.ids:
            if rid not in results:
                tracker.finish(rid, status, error=message if rid == current or status == "failed" else None)
        if isinstance(exc, StopTraining):
            return results
        raise
    finally:
        watch.__exit__(None, None, None)
    return results


class _Progress:
    """Each run's counts (generated, judged and solved, of its total) and ETA, written to its run row as they
    change, so the app shows both runs of a comparison: the one generating, and the one waiting its turn.
    The generation loop reports batches and the verifier thread reports verdicts, hence the lock."""

    def __init__(self, store: Store, ids: list[int], total: int, done: dict[int, int], samples: int = 1):
        self.store, self.ids, self.total = store, ids, total  # counts of samples (instances x samples each)
        self.gen, self.judge_count = dict(done), dict(done)
        self.solved = {rid: sum(s["status"] == "passed" and s.get("sample", 0) < samples for s in store.samples(rid))
                       for rid in ids}
        self.current: int | None = None  # None: loading the model
        self.finished: set[int] = set()
        self.lock = threading.RLock()
        self.began: float | None = None  # when generation began (the rate leaves out model loading)
        self.generated_since = 0

    def begin(self, rid: int) -> None:
        with self.lock:
            self.current = rid
            self.began = self.began or time.time()
            self.write()

    def generated(self, rid: int, n: int) -> None:
        with self.lock:
            self.gen[rid] += n
            self.generated_since += n
            self.write()

    def judged(self, rid: int, rows: list[dict]) -> None:
        with self.lock:
            self.judge_count[rid] += len(rows)
            self.solved[rid] += sum(r["status"] == "passed" for r in rows)
            self.write()

    def counts(self, rid: int) -> str:
        return f"{self.judge_count[rid]}/{self.total} judged, {self.solved[rid]} solved"

    def write(self) -> None:
        with self.lock:
            elapsed = time.time() - self.began if self.began else 0.0
            rate = self.generated_since / elapsed if self.generated_since and elapsed > 0 else None
            ahead = 0.0  # seconds until a waiting run's turn
            for rid in self.ids:
                if rid in self.finished:
                    continue
                left = self.total - self.gen[rid]
                eta = ahead + left / rate if rate else None
                if self.current is None and rid == self.ids[0]:
                    message = "loading the model" + (f" (resuming: {self.counts(rid)})" if self.gen[rid] else "")
                elif rid == self.current:
                    message = f"{self.gen[rid]}/{self.total} generated, {self.counts(rid)}"
                    if not left:
                        message += "; judging the last answers"
                else:
                    message = f"waiting for the adapter pass (run #{self.ids[0]}) to finish"
                self.store.update_run(rid, progress=self.judge_count[rid] / self.total if self.total else 0.0,
                                      eta=eta, message=message)
                ahead = eta or 0.0

    def finish(self, rid: int, status: str, error: str | None = None, summary: dict | None = None) -> None:
        """The final word on a run: its message says how it ended, never a stale progress line."""
        with self.lock:
            self.finished.add(rid)
            message = {"completed": f"completed: {self.counts(rid)}",
                       "stopped": f"stopped: {self.counts(rid)}; Resume (or eval --resume) finishes it",
                       }.get(status, f"{status} after {self.counts(rid)}")
            self.store.update_run(rid, progress=self.judge_count[rid] / self.total if self.total else 0.0, eta=None)
            self.store.finish_run(rid, status, error=error, summary=summary, message=message)
