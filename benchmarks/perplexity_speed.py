"""Seconds to score 400 short texts with the offline default perplexity scorer (Gemma 3 270M; target: < 60 s).

``python benchmarks/perplexity_speed.py [auto|hf|llama_cpp]``: the runtime (default ``auto``, what a run uses:
torch with prefix trees where torch is installed, else llama-cpp-python).

Texts: the peer's 400 recorded answers (../shared/peer/summary_test_stats.xlsx, column ``candidate``: the rows
benchmarks/scoring_speed.py scores) when present, else the demo dataset's references repeated to 400. They go
through the metric's own path (identical texts scored once). The model is loaded once, before the clock starts; the
figure is the scoring time. Last line: ``seconds=<float>``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vlmpipe.metrics.lm_logprobs import perplexity
from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "summary_test_stats.xlsx"


def texts() -> tuple[list[str], str]:
    if PEER.is_file():
        import pandas as pd

        return [str(t) for t in pd.read_excel(PEER, engine="openpyxl")["candidate"]][:400], "peer candidates"
    manifest = ROOT / "src" / "vlmpipe" / "app" / "demo" / "data" / "manifest.jsonl"
    refs = [json.loads(line)["reference"] for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (refs * (400 // len(refs) + 1))[:400], "demo references, repeated"


def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "auto"
    batch, source = texts()
    t0 = time.perf_counter()
    scorer = build_scorer(PerplexitySettings(backend=backend))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    unique = list(dict.fromkeys(batch))
    by_text = dict(zip(unique, scorer.token_logprobs(unique), strict=True))
    values = [perplexity(by_text[t]) for t in batch]
    seconds = time.perf_counter() - t0
    ok = [v for v in values if v is not None]
    print(f"texts={len(batch)} ({len(unique)} distinct, {source}), scorer {scorer.identity}, "
          f"model load {load_s:.1f} s, mean perplexity {sum(ok) / len(ok):.2f}", file=sys.stderr)
    print(f"seconds={seconds:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
