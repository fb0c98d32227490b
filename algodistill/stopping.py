"""Prompt stops for long jobs: a stop request ends a run within seconds, whatever its step time.

Checking for a stop between steps is not enough on a CPU, where one optimizer step of a 0.5B model takes a
minute or two. ``StopWatch`` makes the stop interrupt the step in progress instead:

- a thread polls ``requested()`` (the app's Stop button writes the request to runs.db) and sees SIGTERM and
  SIGINT through a wakeup pipe; on either it sends SIGTERM to the main thread;
- the handler raises ``StopTraining`` in the main thread. Python runs handlers between bytecodes, and a
  forward pass (or a backward with gradient checkpointing, which re-runs the forward) runs plenty of them,
  so the step ends within about a second. The caller then keeps what the last completed step produced;
- code that must not be cut in half (writing a checkpoint) runs under ``hold()``: the stop waits for it;
- if the main thread does not run the handler within ``fallback_s`` (it is inside one long C call, e.g. a
  backward pass without gradient checkpointing), ``fallback`` runs on the watcher thread under ``lock``: it
  is meant to save what it can and end the process. The main thread takes ``lock`` before it finishes, so
  the two never save at once.

It only works in the main thread of a process (signals reach no other thread); elsewhere it does nothing and
the caller's own step-end check is the only stop. This module imports nothing from the package.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from typing import Callable


class StopTraining(BaseException):
    """A stop request reached the main thread. A BaseException, like KeyboardInterrupt, so that a library's
    ``except Exception`` cannot swallow it."""


class StopWatch:
    def __init__(self, requested: Callable[[], bool], *, poll_s: float = 1.0,
                 fallback: Callable[[str], None] | None = None, fallback_s: float = 5.0):
        self.requested, self.poll_s, self.fallback, self.fallback_s = requested, poll_s, fallback, fallback_s
        self.lock = threading.Lock()
        self.reason = ""
        self.active = False     # handlers installed (main thread only)
        self._armed = False     # the next signal raises StopTraining
        self._held = 0          # inside hold(): defer the stop
        self._pending = False
        self._seen = False      # the main thread ran the handler
        self._done = threading.Event()
        self._sending = threading.Lock()  # no signal from the watcher once handlers are being restored

    # ------------------------------------------------------------------------------------------ setup
    def __enter__(self) -> "StopWatch":
        if threading.current_thread() is not threading.main_thread():
            return self
        self._main = threading.get_ident()
        self._read, write = os.pipe()
        os.set_blocking(write, False)
        self._write = write
        self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self.active = True
        self._thread = threading.Thread(target=self._watch, name="stop-watch", daemon=True)
        self._thread.start()
        return self

    def arm(self) -> None:
        """From now on a stop raises StopTraining here, in the main thread; one that came earlier (even during
        ``__enter__``, where raising would skip ``__exit__``) raises now. Call it first thing in the ``with``
        block, inside the ``try`` that handles the stop."""
        if self._pending and not self._done.is_set():
            self._pending = False
            raise StopTraining(self.reason)
        self._armed = not self._done.is_set()

    def __exit__(self, *exc) -> None:
        with self._sending:
            self.disarm()
        if not self.active:
            return
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")  # wake the watcher from its wait
        self._thread.join(timeout=self.poll_s + 1)
        signal.set_wakeup_fd(self._previous_fd)
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        os.close(self._read)
        os.close(self._write)
        self.active = False

    def disarm(self) -> None:
        """From now on a stop changes nothing (the work is finishing); signals are still caught, not fatal."""
        self._armed = False
        self._done.set()

    # ------------------------------------------------------------------------------------------ main thread
    def _handler(self, signum, frame) -> None:
        self._seen = True
        if not self.reason:
            self.reason = f"{signal.Signals(signum).name} received"
        if not self._armed:
            self._pending = not self._done.is_set()  # not armed yet: arm() raises it
            return
        if self._held:
            self._pending = True
            return
        self._armed = False
        raise StopTraining(self.reason)

    @contextlib.contextmanager
    def hold(self):
        """Run a block that a stop must not cut (a checkpoint being written); the stop happens after it."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self._pending and self._armed:
            self._pending = self._armed = False
            raise StopTraining(self.reason)

    # ------------------------------------------------------------------------------------------ watcher
    def _watch(self) -> None:
        signalled = False
        while True:
            if self._done.is_set():
                return
            try:
                if signalled or self.requested():
                    break
            except Exception:  # a busy database: ask again at the next poll
                pass
            ready, _, _ = select.select([self._read], [], [], self.poll_s)
            if ready:  # a signal, or __exit__ waking us up
                with contextlib.suppress(BlockingIOError):
                    signalled = bool({signal.SIGTERM, signal.SIGINT} & set(os.read(self._read, 512)))
        self.reason = self.reason or "stop requested"
        with self._sending:
            if self._done.is_set():
                return
            signal.pthread_kill(self._main, signal.SIGTERM)
        deadline = time.monotonic() + self.fallback_s
        while time.monotonic() < deadline:
            if self._done.wait(0.1) or self._seen:
                return
        if self.fallback is not None and self.lock.acquire(blocking=False):
            try:
                self.fallback(f"{self.reason}; the step in progress did not yield within {self.fallback_s:.0f} s")
            finally:
                self.lock.release()
