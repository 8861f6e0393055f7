"""What makes thousand-screenshot runs fast, checked for giving the same numbers as the plain way:

* the cluster bootstrap draws its resamples once per (seed, number of clusters) and resamples every series by a
  matrix product: the same resamples and intervals as gathering each series' draws (0/1 and integer values
  bit-identical, others to rounding);
* chrF++ counts each text's n-grams once and compares two texts once for both directions: sacrebleu's numbers;
* OCR hands Tesseract many files per process, by path when it can read them as they are: ``ocr_lines``' text;
* the model-free metrics scored in worker processes: the scores of scoring in one process;
* each (model, item)'s consistency, kept by the score stage: the summary of computing it in the summary.

Timings live in ``benchmarks/scale.py``; nothing here compares wall-clock times.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmpipe.app.pipeline import open_store, run_config
from vlmpipe.core import stats
from vlmpipe.core.ocr import ocr_available, ocr_files, ocr_lines
from vlmpipe.metrics.overlap import chrf_pair, chrf_scorer
from vlmpipe.stages.importers.table import import_table
from vlmpipe.stages.score import score_run

DEMO = Path(__file__).resolve().parent.parent / "src" / "vlmpipe" / "app" / "demo" / "data"


def gathered_ci95(values: list[float], clusters: list[str], *, n_resamples: int, seed: int) -> list[float]:
    """The interval as it was computed before: each resample's clusters gathered and summed."""
    ids = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    idx = np.asarray([ids[c] for c in clusters])
    sums = np.bincount(idx, weights=np.asarray(values, dtype=float), minlength=len(ids))
    counts = np.bincount(idx, minlength=len(ids)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n_resamples, len(ids)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def test_resample_counts_are_the_seeded_draws() -> None:
    for k in (1, 3, 257):
        draws = np.random.default_rng(11).integers(0, k, size=(2500, k))
        expected = np.stack([np.bincount(row, minlength=k) for row in draws])
        assert np.array_equal(stats.resample_counts(k, n_resamples=2500, seed=11), expected)


@pytest.mark.parametrize("kind", ["rate", "integer", "float"])
def test_vectorised_bootstrap_matches_gathering_each_series(kind: str) -> None:
    rng = np.random.default_rng(5)
    for trial in range(6):
        k = int(rng.integers(2, 400))
        clusters = [f"s{j}" for j in range(k) for _ in range(int(rng.integers(1, 6)))]
        n = len(clusters)
        values = ((rng.random(n) > 0.6).astype(float) if kind == "rate" else rng.integers(0, 7, n).astype(float)
                  if kind == "integer" else rng.random(n) * 100).tolist()
        new = stats.cluster_bootstrap_ci95(values, clusters, n_resamples=3000, seed=trial)
        old = gathered_ci95(values, clusters, n_resamples=3000, seed=trial)
        if kind == "float":  # the same resamples; sums added in another order: equal to rounding
            assert new == pytest.approx(old, rel=1e-12, abs=1e-12)
        else:
            assert new == old


def test_many_series_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    clusters = [f"s{j}" for j in range(50) for _ in range(5)]
    series = [rng.random(250).tolist() for _ in range(4)] + [(rng.random(250) > 0.5).astype(float).tolist()]
    batch = stats.cluster_bootstrap_many([stats.cluster_table(v, clusters) for v in series], seed=3)
    assert batch == [stats.cluster_bootstrap_ci95(v, clusters, seed=3) for v in series]
    other = [f"t{j}" for j in range(7) for _ in range(3)]  # another number of clusters in the same call
    mixed = stats.cluster_bootstrap_many([stats.cluster_table(series[0], clusters),
                                          stats.cluster_table(series[1][:21], other)], seed=3)
    assert mixed == [batch[0], stats.cluster_bootstrap_ci95(series[1][:21], other, seed=3)]


def test_paired_bootstrap_matches_gathering() -> None:
    rng = np.random.default_rng(8)
    clusters = [f"s{j}" for j in range(120) for _ in range(4)]
    a = (rng.random(480) > 0.3).astype(float).tolist()
    b = (rng.random(480) > 0.4).astype(float).tolist()
    res = stats.paired_bootstrap(a, clusters, b, clusters, n_resamples=4000, seed=1)
    assert res is not None
    # gathered: sums and counts of the shared clusters, A and B resampled jointly
    sa = np.asarray(a).reshape(120, 4).sum(axis=1)
    sb = np.asarray(b).reshape(120, 4).sum(axis=1)
    draws = np.random.default_rng(1).integers(0, 120, size=(4000, 120))
    diffs = sa[draws].sum(axis=1) / (4.0 * 120) - sb[draws].sum(axis=1) / (4.0 * 120)
    assert res["ci95"] == [float(x) for x in np.percentile(diffs, [2.5, 97.5])]
    assert res["p_a_better"] == float(np.mean(diffs > 0))
    assert res["diff"] == pytest.approx(np.mean(a) - np.mean(b))


def test_chrf_pair_is_sacrebleus_sentence_score_both_ways() -> None:
    texts = ["Здравствуйте, мой заказ 02632305-0222 отменили, помогите.", "Заказ 02632305-0222 отменили!",
             "Hello, my order was cancelled.", "", "a", "  ", "Да.", "ok, ok, ok"]
    scorer = chrf_scorer()
    for a in texts:
        for b in texts:
            ab, ba = chrf_pair(a, b)
            assert ab == scorer.sentence_score(a, [b]).score
            assert ba == scorer.sentence_score(b, [a]).score


def test_batched_ocr_reads_what_one_by_one_reads(tmp_path: Path) -> None:
    ok, why = ocr_available()
    if not ok:
        pytest.fail(f"the set-up must install Tesseract: {why}")
    files = sorted(DEMO.glob("*.png"))[:4]
    rgba = tmp_path / "rgba.png"  # not handed over as it is: converted to RGB PNG, as ocr_lines does
    Image.open(files[0]).convert("RGBA").save(rgba)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    # a resolution in the file: Tesseract uses it when it reads the file itself, and ocr_lines' copy has none. On
    # these screenshots a 300-dpi header changes what Tesseract reads, so handing such a file over as it is made
    # the grounding OCR disagree with the OCR baseline (which then "invented" the numbers it had read).
    with_dpi = tmp_path / "dpi300.png"
    Image.open(files[0]).save(with_dpi, dpi=(300, 300))
    jpeg_dpi = tmp_path / "dpi300.jpg"
    Image.open(files[2]).convert("RGB").save(jpeg_dpi, quality=95, dpi=(300, 300))
    paths = [*files, rgba, broken, files[1], with_dpi, jpeg_dpi]
    expected = []
    for p in paths:
        try:
            expected.append(ocr_lines(p.read_bytes()))
        except Exception:
            expected.append([])
    assert ocr_files(paths, workers=2) == expected
    assert any(expected)


def write_table(folder: Path, screenshots: int = 6, models: int = 3, repeats: int = 3) -> Path:
    folder.mkdir(parents=True)
    shots = sorted(DEMO.glob("*.png"))
    for i in range(screenshots):
        shutil.copy(shots[i % len(shots)], folder / f"s{i}.png")
    answers = ["Здравствуйте, мой заказ 02632305-0222 отменили, помогите разобраться.",
               "Добрый день, не проходит оплата 1 490 ₽, памагите.", "Hello, my payment of 43 roubles failed.",
               "Извините, но я не могу помочь с этим запросом.", "Заказ 02632305-0222 отменили 23 октября."]
    with (folder / "gens.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "item", "image", "repeat", "text", "error", "latency_s", "reference"])
        n = 0
        for m in range(models):
            for i in range(screenshots):
                for r in range(repeats):
                    n += 1
                    failed = n % 17 == 0
                    w.writerow([f"model-{m}", f"s{i}", f"s{i}.png", r, "" if failed else answers[(n * 7 + m) % 5],
                                "timeout" if failed else "", 1.0 + n % 5,
                                "Здравствуйте, заказ 02632305-0222 на 1 490 ₽ отменили 23 октября."])
    return folder / "gens.csv"


def test_worker_processes_score_what_one_process_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("VLMPIPE_DEFAULT_METRICS_EXCLUDE", "perplexity,bleurt,bertscore")
    caplog.set_level(logging.INFO, logger="vlmpipe.score")
    table = write_table(tmp_path / "in")
    found = {}
    for name, kwargs in (("here", {"workers": 1}), ("pool", {"workers": 2, "pool_min_rows": 0})):
        run = import_table(table, tmp_path / name, images=tmp_path / "in")
        with open_store(run) as store:
            score_run(run_config(run), store, show_progress=False, **kwargs)
            found[name] = sorted(tuple(r) for r in store.conn.execute(
                "SELECT g.model, g.item, g.repeat, s.metric, s.value, s.detail FROM scores s"
                " JOIN generations g ON g.key = s.key"))
            found[name + " ocr"] = [i["ocr_text"] for i in store.items()]
            found[name + " stability"] = store.stability()
    assert not [r.message for r in caplog.records if "scoring in this process" in r.message]  # workers scored
    assert found["here"] == found["pool"]
    assert found["here ocr"] == found["pool ocr"]
    assert found["here stability"] == found["pool stability"] and len(found["here stability"]) == 3 * 6
    assert {r[3] for r in found["here"]} >= {"chrf", "rouge1_f", "spelling_errors", "language", "hallucinated_numbers"}


def test_stored_stability_gives_the_summary_computing_it_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """The score stage keeps each (model, item)'s consistency with a key of its texts; the summary uses it while the
    texts are the same and computes it again when they changed."""
    from vlmpipe.analysis.aggregate import build_summary

    monkeypatch.setenv("VLMPIPE_DEFAULT_METRICS_EXCLUDE", "perplexity,bleurt,bertscore,grounding")
    run = import_table(write_table(tmp_path / "in"), tmp_path / "run", images=tmp_path / "in")
    cfg = run_config(run)
    with open_store(run) as store:
        score_run(cfg, store, show_progress=False, workers=1)
        assert len(store.stability()) == 3 * 6  # every (model, screenshot): 3 repeats, at most one failed
        kept = build_summary(cfg, store).model_dump(mode="json")
        store.conn.execute("DELETE FROM stability")
        assert build_summary(cfg, store).model_dump(mode="json") == kept
        score_run(cfg, store, show_progress=False, workers=1)  # nothing to score: the stability is filled again
        assert len(store.stability()) == 3 * 6
        # a changed answer: the stored figure no longer matches its texts and is not used
        key = store.conn.execute("SELECT key FROM generations WHERE model = 'model-0' AND item = 's0' AND repeat = 0"
                                 ).fetchone()[0]
        store.conn.execute("UPDATE generations SET text = 'совсем другой ответ' WHERE key = ?", (key,))
        changed = build_summary(cfg, store).model_dump(mode="json")
        store.conn.execute("DELETE FROM stability")
        assert build_summary(cfg, store).model_dump(mode="json") == changed
        assert changed["models"]["model-0"]["consistency_mean"] != kept["models"]["model-0"]["consistency_mean"]
