"""Where a teacher's answers come from: an OpenAI-compatible chat-completions endpoint (``_Endpoint``, through the
``openai`` client, several requests in flight, retried after the server's Retry-After or with backoff), or a model
the app loads and generates with in batches (``_Local``). Each gives every (instance, sample) its seed, as the
evaluation does, and hands each answer with its provenance to the judge (teacher.py) as it arrives."""

from __future__ import annotations

import email.utils
import math
import os
import queue
import random
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit, urlunsplit

from .evaluate import sample_seed
from .problems import Instance
from .stopping import StopTraining

if TYPE_CHECKING:
    from .teacher import TeacherSettings, _Judge

RETRIED_STATUS = {408, 409, 429}  # and every 5xx
BACKOFF_S, MAX_BACKOFF_S, MAX_RETRY_AFTER_S = 1.0, 60.0, 300.0
CONNECT_TIMEOUT_S = 15.0


class TeacherError(Exception):
    """The teacher cannot be used (authentication, unknown model, unreachable or failing endpoint, a refused
    request); the message says what to fix."""


class _Cancelled(Exception):
    """A request abandoned because the run is ending."""


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: what provenance and messages may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        host += f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number
        pass
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def retry_after(headers) -> float | None:
    """The seconds a server asks a client to wait (``retry-after-ms``, or ``Retry-After`` in seconds or as an
    HTTP date), at most ``MAX_RETRY_AFTER_S``; None when it does not say."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        return min(MAX_RETRY_AFTER_S, max(0.0, seconds)) if not math.isnan(seconds) else None
    return None


def backoff(retries: int) -> float:
    """Exponential backoff with jitter before retry number ``retries`` + 1 (from 0)."""
    return min(MAX_BACKOFF_S, BACKOFF_S * 2 ** retries) * random.uniform(0.75, 1.25)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------ the endpoint

def asked(instance: Instance) -> tuple:
    """What identifies one question to the teacher: the instance, and its wording when not the contract one (so
    a contract-only run draws with the same seeds as before styles existed)."""
    return instance.key if instance.style == "contract" else (instance.style, *instance.key)


class _Endpoint:
    """An OpenAI-compatible chat endpoint, asked from several threads at once (the client is thread-safe)."""

    def __init__(self, settings: TeacherSettings, log: Callable[[str], None]):
        import openai
        self.openai, self.settings, self.log = openai, settings, log
        self.cancel = threading.Event()  # the run is ending: no new request, no more waiting for a retry
        key = os.environ.get(settings.api_key_env) or ""
        self.key_note = "" if key else f" (${settings.api_key_env} is not set)"
        # the client's own retries are off: ours honour Retry-After, count retries and stop with the run
        self.client = openai.OpenAI(api_key=key or "unset", base_url=settings.base_url or None, max_retries=0,
                                    timeout=openai.Timeout(settings.request_timeout,
                                                           connect=min(CONNECT_TIMEOUT_S, settings.request_timeout)))
        self.url = public_url(str(self.client.base_url))
        self.reached = threading.Event()  # the endpoint has answered once: a connection error is then transient

    def draw(self, todo: list[Instance], judge: "_Judge", stop: Callable[[], bool]) -> None:
        """Ask for every sample of ``todo``, ``concurrency`` requests at a time, handing each answer to ``judge``.
        The askers are daemon threads: when the run ends, a request still in flight is abandoned, not waited for
        (that could take the whole request timeout)."""
        s = self.settings
        asks: queue.SimpleQueue = queue.SimpleQueue()
        for inst in todo:
            for k in range(s.samples):
                asks.put((inst, k))
        answers: queue.SimpleQueue = queue.SimpleQueue()

        def asker() -> None:
            while not self.cancel.is_set():
                try:
                    instance, sample = asks.get_nowait()
                except queue.Empty:
                    return
                try:
                    answers.put((instance, sample, self.ask(instance, sample), None))
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                    answers.put((instance, sample, None, exc))

        self.log(f"asking {s.endpoint_model} at {self.url}, {s.concurrency} request(s) at a time")
        for _ in range(min(s.concurrency, len(todo) * s.samples)):
            threading.Thread(target=asker, name="teacher", daemon=True).start()
        try:
            for _ in range(len(todo) * s.samples):
                while True:
                    try:
                        instance, sample, answer, error = answers.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if stop():
                            raise StopTraining("stop requested") from None
                if error is not None:
                    raise error
                judge.add(instance, sample, *answer)
                if stop():
                    raise StopTraining("stop requested")
        finally:  # no new request, no more waiting for a retry
            self.cancel.set()

    def ask(self, instance: Instance, sample: int) -> tuple[str, dict]:
        """One sample: (the answer's text, its provenance)."""
        s, openai = self.settings, self.openai
        seed = sample_seed(s.seed, asked(instance), sample)
        retries = 0
        while True:
            if self.cancel.is_set():
                raise _Cancelled()
            began = time.perf_counter()
            try:
                response = self.client.chat.completions.create(
                    model=s.endpoint_model, messages=[{"role": "user", "content": instance.prompt}],
                    temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_new_tokens, seed=seed)
                self.reached.set()
                return self._answer(response, sample, seed, time.perf_counter() - began, retries)
            except openai.APIStatusError as exc:
                self.reached.set()
                if exc.status_code not in RETRIED_STATUS and exc.status_code < 500:
                    raise TeacherError(self._refusal(exc)) from None
                error, wait_s = f"HTTP {exc.status_code}", retry_after(exc.response.headers)
            except openai.APIConnectionError as exc:  # timeouts included
                connecting = not isinstance(exc, openai.APITimeoutError) or "Connect" in type(exc.__cause__).__name__
                if connecting and not self.reached.is_set():
                    raise TeacherError(f"cannot reach the endpoint {self.url} ({_cause(exc)}): check the base URL "
                                       "and that the server is up") from None
                error, wait_s = ("timed out" if isinstance(exc, openai.APITimeoutError) else
                                 f"connection error: {_cause(exc)}"), None
            except openai.OpenAIError as exc:  # an answer the client cannot read
                raise TeacherError(f"the endpoint {self.url} gave an answer that cannot be read ({_cause(exc)})") \
                    from None
            if retries >= s.retries:
                raise TeacherError(f"the endpoint {self.url} still failed after {retries} retries ({error})")
            retries += 1
            if self.cancel.wait(wait_s if wait_s is not None else backoff(retries - 1)):
                raise _Cancelled()

    def _answer(self, response, sample: int, seed: int, seconds: float, retries: int) -> tuple[str, dict]:
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content if choice is not None and choice.message is not None else None) or ""
        usage = response.usage
        cost = getattr(usage, "cost", None) if usage is not None else None  # OpenRouter and others report one
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
            cost = None
        return text, {"endpoint": self.url, "model": response.model or self.settings.endpoint_model,
                      **self.settings.sampling(sample, seed), "time": _now(), "seconds": round(seconds, 3),
                      "tokens": {"prompt": getattr(usage, "prompt_tokens", None),
                                 "completion": getattr(usage, "completion_tokens", None)},
                      "cost": cost, "finish_reason": choice.finish_reason if choice is not None else None,
                      "retries": retries}

    def _refusal(self, exc) -> str:
        detail = f"HTTP {exc.status_code}: {str(exc.message)[:300]}"
        if exc.status_code in (401, 403):
            return (f"the endpoint {self.url} refused the API key from ${self.settings.api_key_env}"
                    f"{self.key_note} ({detail})")
        if exc.status_code == 404:
            return (f"the endpoint {self.url} has no chat completions for model {self.settings.endpoint_model!r} "
                    f"({detail}); check the base URL (it usually ends in /v1) and the model name")
        return f"the endpoint {self.url} refused the request ({detail})"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {str(cause)[:200]}" if str(cause) else type(cause).__name__


# ------------------------------------------------------------------------------------------ a local model

class _Local:
    """A model the app loads, generating in batches (``generation.Generator``), samples seeded as in the evaluation."""

    def __init__(self, settings: TeacherSettings, log: Callable[[str], None]):
        from .generation import Generator
        self.settings, self.log = settings, log
        self.generator = Generator(settings.teacher, device=settings.device, backend=settings.backend, log=log)

    def draw(self, todo: list[Instance], judge: "_Judge", stop: Callable[[], bool]) -> None:
        """Generate every sample of ``todo`` in batches, handing each answer to ``judge``."""
        s, generator = self.settings, self.generator
        rows = [(inst, k) for inst in todo for k in range(s.samples)]
        seeds = [sample_seed(s.seed, asked(inst), k) for inst, k in rows] if s.temperature else None
        sampling = dict(temperature=s.temperature, top_p=s.top_p, seeds=seeds) if seeds else {}
        prompt_tokens = {asked(inst): len(generator.tokenizer(generator.chat(inst.prompt)).input_ids) for inst in todo}
        where = {"backend": generator.backend, "device": generator.device}
        self.log(f"generating {len(rows)} sample(s) with {s.teacher} ({generator.backend} on {generator.device})")
        for batch in generator.generate([inst.prompt for inst, _ in rows], s.max_new_tokens, s.batch_size,
                                        **sampling):
            for g in batch:
                instance, sample = rows[g.index]
                judge.add(instance, sample, g.text, {
                    **where, **s.sampling(sample, seeds[g.index] if seeds else None), "time": _now(),
                    "seconds": round(g.seconds, 3),
                    "tokens": {"prompt": prompt_tokens[asked(instance)], "completion": g.tokens},
                    "cost": None, "finish_reason": "length" if g.cut_off else "stop", "retries": 0})
            if stop():
                raise StopTraining("stop requested")
