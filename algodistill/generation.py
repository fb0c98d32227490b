"""Batched generation for the evaluation grid, greedy or sampled: transformers by default, vLLM when installed.

Prompts are wrapped in the model's own chat template (as in training), sorted by length and generated in
left-padded batches; ``batch_size=0`` means "as few batches as memory allows": everything in one batch
on a GPU, halving on out-of-memory, and batches of 2 on CPU with ``batching="static"`` (the CPU default refills
slots instead, see below; once measured on 2 cores, 8 prompts of ~600 tokens: batches of 8 took 92 s, of 2 31 s, the first pair
done after 19 s), so as not to delay the first results. Each batch is yielded as soon as it is done so the
caller can verify and store it while the next one generates.
Both backends yield the same ``Generation`` records.

Generation on CPU, greedy or sampled, refills its batch instead (``batching="continuous"``): ``CPU_SLOTS`` rows
decode side by side, a row whose answer ends leaves at once and the next prompt, prefilled alone, takes its slot;
each answer is yielded as soon as it ends. Why, from a profile on 2 cores with Qwen2.5-Coder-0.5B in fp32 (a loaded machine, so
ratios only): a decoding step reads all the weights whatever the batch (matmuls ~63% of a step, the KV-cache
concatenation ~10%, attention ~5%), so a step cost ~1.2 s for 1 row, ~2.0 s for 2 and ~2.3 s for 8, i.e. ~0.98 s
a token in batches of 2 and ~0.29 s in batches of 8, while prefill cost ~17 ms a token. Padded batches also keep
every row stepping until their longest answer ends (grid answers run from ~100 to ~650 tokens). The tokens are
those of the padded path (``batching="static"``, kept for GPUs; ``bench/eval.py --compare`` checks it on the real
model).

Sampling (temperature > 0) gives every prompt row its own seed: several samples of one instance are the same
prompt repeated, batched like any other rows, and each answer depends on its seed only, not on the batch it
lands in, so a resumed run draws the missing samples exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from typing import Iterator

from .models import (ModelSource, ModelUnavailable, default_device, inference_dtype, load_model, load_tokenizer,
                     materialize)

CPU_BATCH = 2  # static batching on CPU: first answers (and their verdicts) after one short batch, not 8 long ones
CPU_SLOTS = 16  # continuous batching on CPU: answers decoded side by side; each is yielded as soon as it ends


@dataclass
class Generation:
    index: int        # position in the caller's prompt list
    text: str         # the decoded completion, special tokens removed
    tokens: int       # new tokens up to and including the end-of-turn token
    seconds: float    # wall time of the batch it was generated in
    cut_off: bool = False  # stopped by the max_new_tokens cap, not by the model: the answer may be incomplete


@dataclass
class Live:
    """What generation is doing between two finished answers, for progress lines that move while a long answer is
    written: read from another thread (plain values, replaced whole, so a reader never sees half an update).
    ``written`` counts every new token since the generator was made, over all ``generate`` calls."""
    written: int = 0             # new tokens so far, finished answers and those in flight
    steps: int = 0               # decoding steps (one token for each row in flight)
    flight: tuple[int, ...] = ()  # tokens written so far by each answer in flight


def vllm_available() -> bool:
    try:
        import importlib.util
        import torch
        return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    except ImportError:
        return False


def _attention_kernels(device_type: str):
    """Keep cuDNN's attention out of decoding: it builds a plan for every new key length, and each decoding
    step has a new one (measured on an H100: ~94 ms a step the first time a length is seen, ~25 ms after).
    Flash and memory-efficient attention need no plans and take the left-padding mask."""
    if device_type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


class SeededSampling:
    """Temperature and top-p (nucleus) sampling in which each batch row draws from its own seeded stream. It
    runs as a logits processor under greedy decoding: it draws the row's token itself and leaves only that
    token selectable, so generate's argmax takes it, while the stop tokens, padding and batching stay those
    of the greedy path (transformers' own sampling shares one random stream across the batch)."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float = 1.0):
        self.streams = [random.Random(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids, scores):
        import torch
        token = draw(scores, self.streams, self.temperature, self.top_p).unsqueeze(1)
        return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)


def draw(scores, streams: list[random.Random], temperature: float, top_p: float = 1.0):
    """One token per row of ``scores`` [rows, vocabulary], row i drawing from its own stream ``streams[i]`` (one
    number a token): the same answer for a seed whichever rows it shares a batch with."""
    import torch
    probs = torch.softmax(scores.float() / temperature, dim=-1)
    order = None
    if top_p < 1:  # keep the likeliest tokens until their mass reaches top_p (the first always)
        probs, order = probs.sort(dim=-1, descending=True)
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
    cdf = probs.cumsum(-1)  # float32: a float64 copy of a big batch x 150k vocabulary costs GPU memory
    total = cdf[:, -1:]
    u = torch.tensor([r.random() for r in streams], dtype=cdf.dtype, device=cdf.device).unsqueeze(1)
    # inverse CDF: the first token whose cumulative mass exceeds u * total, which is kept below the total
    # (u rounds to 1.0 in float32 now and then), so the token found always has mass
    target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))
    pick = torch.searchsorted(cdf, target, right=True)
    return (order.gather(1, pick) if order is not None else pick).squeeze(1)


class Generator:
    """A model (plus optional LoRA adapter) ready to answer prompts, greedily or by seeded sampling."""

    def __init__(self, model: str, adapter: str | None = None, *, device: str = "auto", backend: str = "auto",
                 batching: str = "auto", dtype: str = "auto", log=print):
        self.source: ModelSource = materialize(model, log=log)
        self.adapter = adapter
        self.live = Live()
        self.device = default_device(device)
        if backend == "auto":
            backend = "vllm" if vllm_available() and self.device.startswith("cuda") else "hf"
        if backend == "vllm" and not vllm_available():
            raise ModelUnavailable("the vLLM backend needs the vllm package and a CUDA GPU; use backend 'hf'")
        self.backend = backend
        self.tokenizer = load_tokenizer(self.source)
        self._adapter_on = adapter is not None
        if backend == "vllm":
            self._init_vllm()
        else:
            self.model = load_model(self.source, dtype=inference_dtype(self.device, dtype), device=self.device)
            if adapter:
                from peft import PeftModel
                try:
                    self.model = PeftModel.from_pretrained(self.model, adapter)
                except (OSError, ValueError) as exc:
                    raise ModelUnavailable(f"could not load the LoRA adapter {adapter}: {exc}") from None
            self.model.eval()
        self._settle(batching)

    @property
    def dtype(self) -> str:
        """The dtype the model generates in, by name ("float32", "bfloat16" ...; vLLM's own: "auto")."""
        return str(self.model.dtype).removeprefix("torch.") if self.backend == "hf" else "auto"

    @classmethod
    def wrap(cls, model, tokenizer, batching: str = "auto") -> "Generator":
        """A generator around a model already loaded (a training's, adapter included), transformers backend."""
        self = cls.__new__(cls)
        self.source, self.adapter, self._adapter_on = None, None, False
        self.live = Live()
        self.model, self.tokenizer, self.backend = model, tokenizer, "hf"
        self.device = model.device.type
        self._settle(batching)
        return self

    def _settle(self, batching: str) -> None:
        """What follows from the device and the tokenizer: the batching, "continuous" (refilled slots, greedy or
        sampled) or "static" (padded batches), auto being continuous on CPU; and the tokens that end an answer."""
        self.batching = batching if batching != "auto" else ("continuous" if self.device == "cpu" else "static")
        tok = self.tokenizer
        self.stop_ids = sorted({i for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"),
                                            tok.convert_tokens_to_ids("<|endoftext|>"))
                                if isinstance(i, int) and i != tok.unk_token_id})

    def chat(self, prompt: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    @contextlib.contextmanager
    def base_model(self):
        """Generate with the adapter switched off: the base model on the very same weights."""
        previous, self._adapter_on = self._adapter_on, False
        context = self.model.disable_adapter() if self.adapter and self.backend == "hf" else contextlib.nullcontext()
        try:
            with context:
                yield self
        finally:
            self._adapter_on = previous

    def generate(self, prompts: list[str], max_new_tokens: int = 1024, batch_size: int = 0, temperature: float = 0.0,
                 top_p: float = 1.0, seeds: list[int] | None = None) -> Iterator[list[Generation]]:
        """Answer ``prompts`` (a prompt may repeat: one row per sample) in batches. ``temperature`` 0 is greedy;
        above 0, row i samples with seed ``seeds[i]``."""
        if temperature and (seeds is None or len(seeds) != len(prompts)):
            raise ValueError("sampling needs one seed per prompt row")
        if self.backend == "vllm":
            yield from self._generate_vllm(prompts, max_new_tokens, batch_size, temperature, top_p, seeds)
            return
        chats = {p: self.chat(p) for p in dict.fromkeys(prompts)}  # samples repeat their prompt: tokenize once
        sizes = {p: len(self.tokenizer(t).input_ids) for p, t in chats.items()}
        texts = [chats[p] for p in prompts]
        lengths = [sizes[p] for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # longest first: OOM shows up early
        if self.batching == "continuous":
            sampling = (temperature, top_p, seeds) if temperature else None
            yield from self._generate_continuous(texts, order, max_new_tokens, batch_size or CPU_SLOTS, sampling)
            return
        size = batch_size or (len(texts) if self.device.startswith("cuda") else CPU_BATCH)
        start = 0
        while start < len(order):
            chunk = order[start:start + size]
            self.live.flight = (0,) * len(chunk)  # a padded batch reports its tokens when it ends
            try:
                sampler = SeededSampling([seeds[i] for i in chunk], temperature, top_p) if temperature else None
                out = self._generate_hf([texts[i] for i in chunk], max_new_tokens, sampler)
            except Exception as exc:  # torch.OutOfMemoryError, without importing torch at module level
                if "out of memory" not in str(exc).lower() or size == 1:
                    raise
                import torch
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                continue
            self.live.written += sum(r[1] for r in out)
            self.live.flight = ()
            yield [Generation(i, *result) for i, result in zip(chunk, out)]
            start += len(chunk)

    def _generate_hf(self, texts: list[str], max_new_tokens: int,
                     sampler: SeededSampling | None = None) -> list[tuple[str, int, float, bool]]:
        import torch
        tok = self.tokenizer
        tok.padding_side = "left"
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        extra = {}
        if sampler is not None:
            from transformers import LogitsProcessorList
            extra["logits_processor"] = LogitsProcessorList([sampler])
        began = time.perf_counter()
        with torch.inference_mode(), _attention_kernels(self.model.device.type):
            output = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                         top_p=None, top_k=None, eos_token_id=self.stop_ids,
                                         pad_token_id=tok.pad_token_id, **extra)
        seconds = time.perf_counter() - began
        new = output[:, batch["input_ids"].shape[1]:].tolist()
        results = []
        for ids in new:
            # no stop token means this row ran to max_new_tokens (the batch only ends early once all rows stopped)
            stop = next((k + 1 for k, t in enumerate(ids) if t in self.stop_ids), None)
            cut = stop or len(ids)
            results.append((tok.decode(ids[:cut], skip_special_tokens=True), cut, seconds, stop is None))
        return results

    def _generate_continuous(self, texts: list[str], order: list[int], max_new_tokens: int, slots: int,
                             sampling: tuple | None = None) -> Iterator[list[Generation]]:
        """Answers in ``slots`` rows that are refilled: a row whose answer ends (stop token or cap) leaves the batch at
        once and the next prompt, prefilled alone, joins it (its KV cache left-padded to the batch's length, or the
        batch's to its). Each answer is yielded as soon as it ends (``seconds``: from its prefill to its last token);
        the step is the one ``generate`` takes (same mask, positions and argmax), so the tokens match. Sampled
        (``sampling``: temperature, top_p, one seed per text), each row draws from its own seeded stream
        (``draw``), one number a token as in the padded path, so a seed gives the same answer in either.

        transformers' own continuous batching (``init_continuous_batching``) was tried first: it gives the same
        tokens but, with sdpa on CPU, attends over one flattened sequence of all rows (every step reads the whole
        paged cache back with index_select and repeats it for the 14 query heads: ~60% of a step in a py-spy profile),
        so its steps cost more than padded ones here."""
        import torch
        from transformers import DynamicCache
        tok, model, device = self.tokenizer, self.model, self.model.device
        tok.padding_side = "left"
        queue = list(order)
        rows: list[dict] = []        # index, tokens (generated so far), began
        cache = mask = last = None   # DynamicCache [B, heads, L, dim]; mask [B, L]; last token per row [B]

        def pick(logits, which: list[dict]):  # the next token of each row: argmax, or its own seeded draw
            if sampling is None:
                return logits.argmax(-1)
            return draw(logits, [row["stream"] for row in which], sampling[0], sampling[1])

        def finish(row) -> Generation:
            new = row["tokens"]
            stop = next((k + 1 for k, t in enumerate(new) if t in self.stop_ids), None)
            cut = stop or len(new)
            return Generation(row["index"], tok.decode(new[:cut], skip_special_tokens=True), cut,
                              time.perf_counter() - row["began"], stop is None)

        def done(row) -> bool:
            return row["tokens"][-1] in self.stop_ids or len(row["tokens"]) >= max_new_tokens

        def left_pad(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
            if n == 0:
                return t
            shape = list(t.shape)
            shape[dim] = n
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        with torch.inference_mode(), _attention_kernels(device.type):
            while queue or rows:
                if queue and len(rows) < slots:  # prefill the newcomers together, then merge them into the batch
                    chunk, queue = queue[:slots - len(rows)], queue[slots - len(rows):]
                    began = time.perf_counter()
                    batch = tok([texts[i] for i in chunk], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                    pads = batch["attention_mask"] == 0
                    positions = (batch["attention_mask"].long().cumsum(-1) - 1).masked_fill_(pads, 1)  # as generate
                    fresh = DynamicCache(config=model.config)
                    out = model(**batch, position_ids=positions, past_key_values=fresh, use_cache=True,
                                logits_to_keep=1)
                    newcomers = [{"index": i, "tokens": [], "began": began,
                                  "stream": random.Random(sampling[2][i]) if sampling else None} for i in chunk]
                    first = pick(out.logits[:, -1, :], newcomers)
                    for row, t in zip(newcomers, first.tolist()):
                        row["tokens"].append(t)
                    self.live.written += len(newcomers)
                    if cache is None:
                        cache, mask, last = fresh, batch["attention_mask"], first
                    else:
                        old, young = mask.shape[1], batch["attention_mask"].shape[1]
                        for layer, add in zip(cache.layers, fresh.layers):
                            layer.keys = torch.cat([left_pad(layer.keys, young - old if young > old else 0, 2),
                                                    left_pad(add.keys, old - young if old > young else 0, 2)])
                            layer.values = torch.cat([left_pad(layer.values, max(0, young - old), 2),
                                                      left_pad(add.values, max(0, old - young), 2)])
                        mask = torch.cat([left_pad(mask, max(0, young - old), 1),
                                          left_pad(batch["attention_mask"], max(0, old - young), 1)])
                        last = torch.cat([last, first])
                    rows += newcomers
                else:  # one decoding step for every row
                    positions = mask.sum(-1, keepdim=True)
                    mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                    out = model(input_ids=last[:, None], attention_mask=mask, position_ids=positions,
                                past_key_values=cache, use_cache=True)
                    last = pick(out.logits[:, -1, :], rows)
                    for row, t in zip(rows, last.tolist()):
                        row["tokens"].append(t)
                    self.live.written += len(rows)
                    self.live.steps += 1
                ended = [k for k, row in enumerate(rows) if done(row)]
                keep = [k for k in range(len(rows)) if k not in ended]
                self.live.flight = tuple(len(rows[k]["tokens"]) for k in keep)  # what is still being written
                if not ended:
                    continue
                for k in ended:
                    yield [finish(rows[k])]  # one answer a list: verified and stored while the rest decode
                rows = [rows[k] for k in keep]
                if not rows:
                    cache = mask = last = None
                    continue
                kept = torch.tensor(keep, device=device)
                trim = int((mask[kept].sum(0) == 0).long().cumprod(0).sum())  # columns now padding in every row
                for layer in cache.layers:
                    layer.keys = layer.keys[kept, :, trim:]
                    layer.values = layer.values[kept, :, trim:]
                mask, last = mask[kept, trim:], last[kept]

    # --------------------------------------------------------------------------------------- vLLM
    def _init_vllm(self) -> None:
        from vllm import LLM
        kwargs = {"enable_lora": True, "max_lora_rank": 64} if self.adapter else {}
        self.llm = LLM(model=self.source.path, dtype="auto", seed=0, **kwargs)

    def _generate_vllm(self, prompts: list[str], max_new_tokens: int, batch_size: int, temperature: float = 0.0,
                       top_p: float = 1.0, seeds: list[int] | None = None) -> Iterator[list[Generation]]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest
        greedy = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        lora = LoRARequest("adapter", 1, self.adapter) if self.adapter and self._adapter_on else None
        size = batch_size or len(prompts)  # vLLM schedules memory itself
        for start in range(0, len(prompts), size):
            chunk = list(range(start, min(start + size, len(prompts))))
            began = time.perf_counter()
            # one request per sample with its own seed rather than n=K per prompt: a resumed run then asks only
            # for the missing samples and gets what an uninterrupted run would have (prefix caching shares prompts)
            params = [SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seeds[i])
                      for i in chunk] if temperature else greedy
            outs = self.llm.generate([self.chat(prompts[i]) for i in chunk], params, lora_request=lora)
            seconds = time.perf_counter() - began
            self.live.written += sum(len(o.outputs[0].token_ids) for o in outs)
            yield [Generation(i, o.outputs[0].text, len(o.outputs[0].token_ids), seconds,
                              o.outputs[0].finish_reason == "length") for i, o in zip(chunk, outs)]
