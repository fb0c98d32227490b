#!/usr/bin/env bash
# The checks only a GPU can show, in one script of under 8 minutes on one GPU; writes one JSON of figures to
# ${OUT:-/tmp}/gpu.json (and each step's log next to it). Run it whenever a GPU is available:
#
#   bash bench/gpu.sh                      # here, on a CUDA machine with the project's venv active
#   device run: bash bench/gpu.sh          # the lent GPU machine (python3.12 with torch, transformers, peft,
#                                          # accelerate; carry .whl with trl, datasets, sqlite-utils: see below)
#
# What it measures (random weights of the Qwen2.5-0.5B architecture, which cost what the real ones cost; the real
# tokenizer when .gpu/qwen-tokenizer holds one, for real token counts):
#   1. the reference SFT loop (3 epochs of the bundled traces): time, tokens/s, peak GPU memory;
#   2. the 55-grid with transformers generation (answers capped at 256 new tokens: random models do not stop);
#   3. the same with vLLM when it imports (requirements-vllm.txt; it cannot be carried to a machine without a
#      registry, so there it is reported as skipped);
#   4. a few GRPO steps (generation, reward, update);
#   5. a 2-process evaluation against one process (accelerate launch), when the machine has 2 GPUs or more.
# Each step has its own time limit; one that fails is recorded with its error and the rest go on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then  # the device machine: wheels carried from here (see its README)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
TOK=()
[ -f .gpu/qwen-tokenizer/tokenizer.json ] && TOK=(--tokenizer .gpu/qwen-tokenizer)
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)

step() {  # step NAME SECONDS COMMAND...: the command's last line of stdout (its JSON) into $OUT/NAME.json
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)" >&2
  if timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"; then
    $PY - "$OUT/$name.out" "$OUT/$name.json" <<'PYEOF'
import json, sys
text = open(sys.argv[1]).read()
start = text.find("{")
json.dump(json.loads(text[start:]) if start >= 0 else {"error": "no JSON printed"}, open(sys.argv[2], "w"))
PYEOF
  else
    printf '{"error": "exit %s", "log_tail": %s}\n' "$?" "$($PY -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()[-1500:]))' "$OUT/$name.log")" >"$OUT/$name.json"
  fi
}

# one random Qwen2.5-0.5B-architecture model for the steps that take a model directory
ARCH=$($PY -c "
import sys; from pathlib import Path; from algodistill.models import tiny_model
print(tiny_model(Path('/tmp/qwen-arch'), arch='qwen2.5-0.5b', tokenizer_from=(sys.argv[1:] or [None])[0]))" \
  "${TOK[@]:1}" 2>"$OUT/arch.log" | tail -1)

step sft 150 $PY bench/train.py --arch qwen2.5-0.5b "${TOK[@]}" --device cuda
step grid_hf 120 $PY bench/eval.py --arch qwen2.5-0.5b "${TOK[@]}" --device cuda --prompts 16 --max-new-tokens 128 \
  --grid-max-new-tokens 256
if $PY -c "import vllm" 2>/dev/null; then
  step grid_vllm 150 $PY -m algodistill eval --model "$ARCH" --backend vllm --max-new-tokens 256 --json
else
  echo '{"skipped": "vllm is not installed here (pip install -r requirements-vllm.txt needs a registry)"}' >"$OUT/grid_vllm.json"
fi
step grpo 150 $PY bench/grpo.py --model "$ARCH" --device cuda --steps 3
if [ "${GPUS:-0}" -ge 2 ]; then
  step shards 150 $PY bench/eval_shards.py --processes 2
else
  echo "{\"skipped\": \"$GPUS GPU(s): a 2-process evaluation needs 2\"}" >"$OUT/shards.json"
fi

$PY - "$OUT" <<'PYEOF'
import json, subprocess, sys, time
from pathlib import Path
out = Path(sys.argv[1])
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
    gpu = None
figures = {"bench": "gpu", "date": time.strftime("%Y-%m-%d"), "gpu": gpu}
for name in ("sft", "grid_hf", "grid_vllm", "grpo", "shards"):
    path = out / f"{name}.json"
    figures[name] = json.loads(path.read_text()) if path.is_file() else {"error": "not run"}
(out / "gpu.json").write_text(json.dumps(figures, indent=2))
print(json.dumps(figures, indent=2))
PYEOF
