"""A model's evaluation: generate the grid's (or HumanEval's) answers with a model, judge each as it arrives and store
it, for an adapter and its base-model twin on the same instances, with progress lines that move while answers are
written and an estimate of the time left from the token rate. Scoring, summaries and the run layout are evaluate.py's;
this module is what runs a model."""

from __future__ import annotations

import collections
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
                        {rid: wanted - len(todo[rid]) for rid, _ in passes}, samples=settings.samples,
                        cap=settings.max_new_tokens)
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
    ticker = None
    try:
        watch.__enter__()
        watch.arm()
        generator = Generator(settings.model, settings.adapter, device=settings.device, backend=settings.backend,
                              dtype=settings.dtype, log=log)
        tracker.watch(generator.live)
        ticker = _Ticker(tracker.tick, TICK_S)  # the line moves between answers: in flight, tokens written, tokens/s
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
                        tracker.generated(rid, [g.tokens for g in batch])
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
        if ticker is not None:
            ticker.close()
        watch.__exit__(None, None, None)
    return results


TICK_S = 2.0  # how often the running pass's line is rewritten while answers are being written
# past the longest answer seen, S(t) falls as t^-TAIL_ALPHA: an answer already w tokens long goes on w/(alpha-1) more.
# Chosen on scripted lognormal grids (tests/test_eval_progress.py): 2 over-estimated the batch's last answers 2.6x,
# 3 keeps the estimate within 0.5-2x from a tenth done to the last tenth for spreads of 0.4-0.6 (2.05x at 0.9); on
# SmolLM2's real grid it read 0.50-0.96 of the truth (docs/benchmarks.md)
TAIL_ALPHA = 3.0
LENGTHS_KEPT = 2000  # the estimate reads the newest this many answer lengths (a line is written after every answer)
RECENT_STEPS = 32  # the time a decoding step takes is measured over at least this many recent steps


def expected_lengths(flight: tuple[int, ...] | list[int], lengths: list[int], cap: int) -> tuple[float, list[float]]:
    """(tokens an answer not begun will take, tokens each answer in flight still needs). ``flight``: the tokens each
    answer in flight has written; ``lengths``: those of the finished answers. The answers that finish first are the
    short ones, so their mean would say too little: the lengths come from the Kaplan-Meier estimate over the finished
    answers and those in flight (cut off where they are), with a power-law tail past the longest seen (``_survival``),
    up to ``cap``. Before any answer has finished, an answer is taken to be twice the longest in flight (half the cap
    before any token)."""
    if not lengths:
        guess = min(cap, 2 * max(flight, default=0)) or cap / 2
        return guess, [max(0.0, guess - w) for w in flight]
    expected = _survival(lengths, list(flight), cap)
    return expected(0), [max(0.0, expected(w) - w) for w in flight]


def tokens_left(left: int, flight: tuple[int, ...] | list[int], lengths: list[int], cap: int) -> float:
    """The new tokens still to write: ``left`` answers not begun and the rest of those in flight."""
    new, rest = expected_lengths(flight, lengths, cap)
    return left * new + sum(rest)


def steps_left(rest: list[float], left: int, new: float, slots: int) -> float:
    """Decoding steps until every answer is written when ``slots`` answers decode side by side (one token each a
    step), those in flight needing ``rest`` tokens and ``left`` more of ``new`` tokens each taking the first slot
    that frees: the batch's tail, where fewer rows share a step, is in it."""
    import heapq
    free = sorted(rest) + [0.0] * max(0, slots - len(rest))
    heapq.heapify(free)
    for _ in range(left):
        heapq.heappush(free, heapq.heappop(free) + new)
    return max(free, default=0.0)


def _survival(ended: list[int], censored: list[int], cap: int) -> Callable[[float], float]:
    """E[length | length > w] as a function of w, from answer lengths ``ended`` and lower bounds ``censored``: the
    Kaplan-Meier curve up to the longest answer seen, T; past it, a power-law tail S(t) = S(T) (T/t)^TAIL_ALPHA, cut
    at ``cap``. An exponential tail at the observed end rate was tried first: early on, when only the short answers
    have ended, it expected answers 2-3x too long (a scripted lognormal grid in tests/test_eval_progress)."""
    ends = collections.Counter(ended)
    everyone = sorted(ended + censored)
    at_risk = {}  # t -> how many answers are at least t tokens long
    for i, t in enumerate(everyone):
        at_risk.setdefault(t, len(everyone) - i)
    steps, s = [], 1.0  # the survival curve's steps: (t, S just after t)
    for t in sorted(ends):
        s *= 1 - ends[t] / at_risk[t]
        steps.append((t, s))
    last = max(everyone[-1], 1)
    alpha = TAIL_ALPHA

    def s_at(w: float) -> float:
        value = 1.0
        for t, after in steps:
            if t > w:
                break
            value = after
        return value * (last / w) ** alpha if w > last else value

    def area(w: float) -> float:
        """The integral of S(t) from w to cap."""
        total, prev_t, prev_s = 0.0, 0.0, 1.0
        for t, after in steps:
            if t > w:
                total += prev_s * (min(t, cap) - max(prev_t, w))
            prev_t, prev_s = t, after
        start = max(prev_t, w)
        if start < last:  # flat from the last answer that ended to the longest seen
            total += prev_s * (min(last, cap) - start)
            start = last
        if start < cap:  # the tail: the integral of S(T) (T/t)^alpha from start to cap
            total += prev_s * last ** alpha * (start ** (1 - alpha) - cap ** (1 - alpha)) / (alpha - 1)
        return total

    def expected(w: float) -> float:
        sw = s_at(w)
        return min(cap, w + area(w) / sw) if sw > 0 else min(cap, 2 * w)

    return expected


class _Progress:
    """Each run's counts (generated, judged and solved, of its total) and ETA, written to its run row as they
    change, so the app shows both runs of a comparison: the one generating, and the one waiting its turn.
    Between two finished answers, ``tick`` (every ``TICK_S`` from a thread) says what is being written: answers in
    flight, tokens so far and the token rate, read from the generator's ``live`` record. The time left is ``eta``'s:
    the decoding steps left at the recent seconds a step, else the tokens left at the token rate, else the answers
    left at the answer rate. The generation loop reports answers, the verifier thread verdicts, the ticker the
    in-between: hence the lock."""

    def __init__(self, store: Store, ids: list[int], total: int, done: dict[int, int], samples: int = 1,
                 cap: int = 1024, clock: Callable[[], float] = time.time):
        self.store, self.ids, self.total = store, ids, total  # counts of samples (instances x samples each)
        self.cap, self.clock = cap, clock
        self.gen, self.judge_count = dict(done), dict(done)
        kept = {rid: store.samples(rid) for rid in ids}
        self.solved = {rid: sum(s["status"] == "passed" and s.get("sample", 0) < samples for s in kept[rid])
                       for rid in ids}
        # answer lengths seen: a resumed run's stored ones count; the base twin's are kept apart (often longer)
        self.lengths = {rid: [s["tokens"] for s in kept[rid] if s.get("tokens")] for rid in ids}
        self.current: int | None = None  # None: loading the model
        self.finished: set[int] = set()
        self.lock = threading.RLock()
        self.began: float | None = None  # when generation began (the rate leaves out model loading)
        self.generated_since = 0
        self.live = None  # the generator's Live record, once there is a generator
        self.written_at_begin = self.steps_at_begin = 0
        self.slots = 0  # the most answers seen in flight at once: the batch's width
        self.history: collections.deque = collections.deque(maxlen=256)  # (time, decoding steps) as they were seen

    def watch(self, live) -> None:
        """Read the generator's ``live`` record from now on; its counts start at ``begin``."""
        with self.lock:
            self.live = live

    def begin(self, rid: int) -> None:
        with self.lock:
            self.current = rid
            if self.began is None:
                self.began = self.clock()
                if self.live is not None:
                    self.written_at_begin, self.steps_at_begin = self.live.written, self.live.steps
            self.write()

    def generated(self, rid: int, lengths: list[int]) -> None:
        with self.lock:
            self.gen[rid] += len(lengths)
            self.generated_since += len(lengths)
            self.lengths[rid] += [n for n in lengths if n]
            self.write()

    def judged(self, rid: int, rows: list[dict]) -> None:
        with self.lock:
            self.judge_count[rid] += len(rows)
            self.solved[rid] += sum(r["status"] == "passed" for r in rows)
            self.write()

    def tick(self) -> None:
        """The running pass's line again, with the tokens written since the last one."""
        with self.lock:
            if self.current is not None and self.current not in self.finished:
                self.write()

    def counts(self, rid: int) -> str:
        return f"{self.judge_count[rid]}/{self.total} judged, {self.solved[rid]} solved"

    def _rates(self) -> tuple[float | None, float | None, int]:
        """(tokens a second, answers a second, tokens written) since generation began."""
        elapsed = self.clock() - self.began if self.began else 0.0
        written = self.live.written - self.written_at_begin if self.live is not None else 0
        if elapsed <= 0:
            return None, None, written
        return (written / elapsed if written else None,
                self.generated_since / elapsed if self.generated_since else None, written)

    def eta(self, rid: int, token_rate: float | None, answer_rate: float | None,
            per_step: float | None = None) -> float | None:
        """Seconds until ``rid``'s pass has generated every answer, from its turn (now, for the running pass): the
        decoding steps left (``steps_left``) at the seconds a step has taken, where the generator counts steps (the
        CPU's refilled batch); else the tokens left at the token rate; else the answers left at the answer rate."""
        running = rid == self.current
        flight = tuple(self.live.flight) if self.live is not None and running else ()
        left = max(0, self.total - self.gen[rid] - len(flight))
        # a waiting pass has no lengths of its own yet: the running pass's are the best guess
        lengths = (self.lengths[rid] or [n for r in self.ids for n in self.lengths[r]])[-LENGTHS_KEPT:]
        if per_step and self.slots:
            new, rest = expected_lengths(flight, lengths, self.cap)
            return steps_left(rest, left, new, self.slots) * per_step
        if token_rate:
            return tokens_left(left, flight, lengths, self.cap) / token_rate
        return (self.total - self.gen[rid]) / answer_rate if answer_rate else None

    def _seconds_a_step(self) -> float | None:
        """The seconds a decoding step has taken lately (over the last ``RECENT_STEPS`` steps at least): a step with
        fewer answers in flight is cheaper, so the batch's tail is timed by its own steps, not the full batch's."""
        if self.live is None or not self.began or self.live.steps <= self.steps_at_begin:
            return None
        now, steps = self.clock(), self.live.steps
        if not self.history or self.history[-1][1] != steps:
            self.history.append((now, steps))
        since, at = self.began, self.steps_at_begin
        for t, k in reversed(self.history):
            if steps - k >= RECENT_STEPS:
                since, at = t, k
                break
        return (now - since) / (steps - at) if steps > at else None

    def write(self) -> None:
        with self.lock:
            if self.live is not None:
                self.slots = max(self.slots, len(self.live.flight))
            token_rate, answer_rate, written = self._rates()
            per_step = self._seconds_a_step()  # once a line: it also records where the step count stands
            ahead = 0.0  # seconds until a waiting run's turn
            for rid in self.ids:
                if rid in self.finished:
                    continue
                eta = self.eta(rid, token_rate, answer_rate, per_step)
                eta = ahead + eta if eta is not None else None
                if self.current is None and rid == self.ids[0]:
                    message = "loading the model" + (f" (resuming: {self.counts(rid)})" if self.gen[rid] else "")
                elif rid == self.current:
                    left = self.total - self.gen[rid]
                    writing = []
                    if self.live is not None and left:
                        flight = len(self.live.flight)
                        writing = [f"{flight} in flight" if flight else "", f"{written:,} tokens written" if written
                                   else "", f"{token_rate:.1f} tokens/s" if token_rate else ""]
                    writing = ", ".join(part for part in writing if part)
                    message = (f"{self.gen[rid]}/{self.total} generated" + (f" ({writing})" if writing else "")
                               + f", {self.counts(rid)}")
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


class _Ticker:
    """Calls ``tick`` every ``every`` seconds on a daemon thread until closed."""

    def __init__(self, tick: Callable[[], None], every: float = TICK_S):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(tick, every), daemon=True, name="eval-progress")
        self._thread.start()

    def _run(self, tick, every) -> None:
        while not self._stop.wait(every):
            try:
                tick()
            except Exception:  # noqa: BLE001 - a progress line is never worth a failed evaluation
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
