"""Self-distil a trace set (``python -m algodistill traces self-distill``, which this calls; see
algodistill/self_distill.py). Kept for the traces that name it in their provenance.

    python scripts/self_distill.py --model qwen2.5-coder-0.5b --traces assets/traces/varied-no-terse.jsonl \\
        --out varied-self.jsonl
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from algodistill.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["traces", "self-distill", *sys.argv[1:]]))
