"""Seconds to score 400 short texts with the offline default perplexity scorer (Gemma 3 270M in llama-cpp-python).

Texts: the peer's 400 recorded answers (../shared/peer/summary_test_stats.xlsx, column ``candidate``) when present,
else the demo dataset's references repeated to 400. The model is loaded once, before the clock starts; the figure is
the scoring time. Last line: ``seconds=<float>``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vlmpipe.metrics.lm_logprobs import LlamaCppScorer, perplexity
from vlmpipe.metrics.model_files import default_gguf

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "summary_test_stats.xlsx"


def texts() -> tuple[list[str], str]:
    if PEER.is_file():
        import pandas as pd

        return [str(t) for t in pd.read_excel(PEER)["candidate"]][:400], "peer candidates"
    manifest = ROOT / "src" / "vlmpipe" / "demo" / "data" / "manifest.jsonl"
    refs = [json.loads(line)["reference"] for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (refs * (400 // len(refs) + 1))[:400], "demo references, repeated"


def main() -> int:
    batch, source = texts()
    t0 = time.perf_counter()
    scorer = LlamaCppScorer(default_gguf())
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    values = [perplexity(lp) for lp in scorer.token_logprobs(batch)]
    seconds = time.perf_counter() - t0
    ok = [v for v in values if v is not None]
    print(f"texts={len(batch)} ({source}), model load {load_s:.1f} s, mean perplexity {sum(ok) / len(ok):.2f}",
          file=sys.stderr)
    print(f"seconds={seconds:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
