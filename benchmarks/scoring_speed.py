"""Wall time of scoring the peer's 400 recorded generations with every metric that needs no model (target: < 10 s).

Imports ../shared/peer into a temporary run, loads the dictionaries and language models and fills the
screenshots' OCR text first (each is done once and kept: per process, or in the store), then times the
score stage with the model-free metrics only (letters, spelling, language, ROUGE-1/2/L, chrF++, grounding,
injection; not perplexity, BLEURT or BERTScore: benchmarks/perplexity_speed.py times the default perplexity scorer)
plus the per-model aggregation (which computes stability). Last line: ``seconds=<float>``.

    python benchmarks/scoring_speed.py [--peer ../shared/peer]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from vlmpipe.analysis.aggregate import build_summary
from vlmpipe.app.pipeline import load_run_config, open_store
from vlmpipe.core.config import RunConfig
from vlmpipe.metrics.base import REGISTRY, ScoreContext
from vlmpipe.metrics.grounding import _ocr_enabled, ensure_ocr_text
from vlmpipe.metrics.language import detect
from vlmpipe.metrics.overlap import chrf, rouge
from vlmpipe.metrics.spelling import misspelled
from vlmpipe.stages.importers.original import import_original
from vlmpipe.stages.score import enabled_metrics, score_run

ROOT = Path(__file__).resolve().parent.parent
#: every default metric that needs no model
MODEL_FREE = [name for name, cls in REGISTRY.items() if cls.default_enabled and "model" not in cls.needs]


def warm_up(cfg: RunConfig) -> None:
    """Load Hunspell dictionaries, lingua's models and the scorers on text that is not in the data."""
    sample = "Добрый день! Не приходит код подтверждения на телефон, помогите войти в личный кабинет."
    misspelled(sample)
    codes = tuple(sorted({*cfg.metrics.languages, cfg.metrics.expected_language}))
    detect(sample, codes, 1)
    detect("Good morning, the confirmation code never arrives on my phone.", codes, 1)
    rouge(sample, sample)
    chrf(sample, sample)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", type=Path, default=ROOT.parent / "shared" / "peer")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = import_original(args.peer, args.peer / "screenshots", Path(tmp) / "peer")
        cfg = load_run_config(run_dir)
        cfg = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"enabled": MODEL_FREE})})
        with open_store(run_dir) as store:
            warm_up(cfg)
            items = {i["id"]: i for i in store.items()}
            ctx = ScoreContext(cfg=cfg, items=items, store=store)
            t0 = time.perf_counter()
            ocr_on, why = _ocr_enabled(ctx)
            if ocr_on:
                ensure_ocr_text(ctx, set(items))
            if ocr_on:
                print(f"ocr: {time.perf_counter() - t0:.2f} s for {len(items)} screenshots (once, then stored)")
            else:
                print(f"ocr: unavailable: {why}")
            print("metrics:", ", ".join(m.name for m in enabled_metrics(cfg)), "+ stability")
            t0 = time.perf_counter()
            unavailable = score_run(cfg, store, show_progress=False)
            summary = build_summary(cfg, store)
            seconds = time.perf_counter() - t0
            print(f"generations: {sum(m.n for m in summary.models.values())}; unavailable: {unavailable}")
    print(f"seconds={seconds:.3f}")


if __name__ == "__main__":
    main()
