"""Re-aggregating the peer's recorded judgements (../shared/peer/judgement_scores.xlsx) reproduces its table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from vlmpipe.analysis.aggregate import build_summary
from vlmpipe.core.config import config_from_dict
from vlmpipe.core.store import Store
from vlmpipe.stages.importers.recorded_judgements import import_recorded_judgements

# model: (ratio, ± half-width) as published in ../shared/peer/README.md
PUBLISHED = {
    "Qwen2-VL-7B-Instruct": (0.868, 0.026),
    "Qwen2-VL-7B-Instruct-GPTQ-Int8": (0.852, 0.037),
    "Qwen2-VL-7B-Instruct-AWQ": (0.832, 0.027),
    "Qwen2-VL-7B-Instruct-GPTQ-Int4": (0.792, 0.027),
    "Qwen2-VL-2B-Instruct": (0.596, 0.061),
    "Qwen2-VL-2B-Instruct-GPTQ-Int8": (0.571, 0.054),
    "Qwen2-VL-2B-Instruct-GPTQ-Int4": (0.570, 0.038),
    "Qwen2-VL-2B-Instruct-AWQ": (0.536, 0.049),
}


def _store_from_peer(peer: Path, tmp_path: Path) -> tuple[Store, object]:
    """A store holding the peer's 400 generations, as the import of summary_test_stats.xlsx would make it."""
    frame = pd.read_excel(peer / "summary_test_stats.xlsx", engine="openpyxl")
    store = Store(tmp_path / "run.sqlite")
    images = list(dict.fromkeys(frame["Image"]))
    store.put_items({"id": i, "image": f"{i}.jpg"} for i in images)
    store.put_models((m, "candidate", {"name": m}) for m in dict.fromkeys(frame["model_name"]))
    seen: dict[tuple[str, str], int] = {}
    plan = []
    for n, rec in enumerate(frame.to_dict(orient="records")):
        model, item = rec["model_name"], rec["Image"]
        repeat = seen.get((model, item), 0)
        seen[(model, item)] = repeat + 1
        key = f"peer-{n}"
        plan.append((key, model, "candidate", item, repeat))
        store.put_generation({"key": key, "model": model, "role": "candidate", "item": item, "repeat": repeat,
                              "text": str(rec["candidate"]), "latency_s": float(rec["Time Taken (sec)"])})
    store.set_plan(plan)
    cfg = config_from_dict({"name": "peer", "dataset": {"path": str(tmp_path)}, "models": [{"name": "x"}],
                            "repeats": 5}, base_dir=tmp_path)
    return store, cfg


def test_recorded_judgements_reproduce_published_ratios(peer_dir: Path, tmp_path: Path) -> None:
    store, cfg = _store_from_peer(peer_dir, tmp_path)
    assert import_recorded_judgements(store, peer_dir / "judgement_scores.xlsx") == 400
    summary = json.loads(build_summary(cfg, store).to_json())  # type: ignore[arg-type]
    assert summary["judge_status"]["state"] == "recorded"
    total_failed = 0
    for model, (ratio, half) in PUBLISHED.items():
        j = summary["models"][model]["judge"]
        assert j["ratio_mean"] == pytest.approx(ratio, abs=0.001), model
        lo, hi = j["ratio_ci95_naive"]
        assert (hi - lo) / 2 == pytest.approx(half, abs=0.002), model
        assert round((hi - lo) / 2, 3) == half, model  # the sample std (ddof 1) rounds exactly to the peer's ±
        assert (lo + hi) / 2 == pytest.approx(j["ratio_mean"], abs=1e-9)
        # the cluster bootstrap interval is wider than the naive one, as the peer README reports (1.3–2×)
        clo, chi = j["ratio_ci95"]
        assert clo < j["ratio_mean"] < chi
        assert 1.2 < (chi - clo) / (hi - lo) < 2.2, model
        assert j["n"] + j["n_failed"] == 50
        assert j["n_items"] == 10
        total_failed += j["n_failed"]
    assert total_failed == 6  # the six rows with summed scores (34, 35, 36...) are failed, not zeros
    seven_b = summary["models"]["Qwen2-VL-7B-Instruct"]["judge"]["ratio_ci95"]
    assert seven_b == pytest.approx([0.834, 0.903], abs=0.006)
    int8 = summary["models"]["Qwen2-VL-7B-Instruct-GPTQ-Int8"]["judge"]
    assert int8["n"] == 49 and int8["n_failed"] == 1
    # the 7B BF16 and GPTQ-Int8 variants are not separable on this data; 7B BF16 vs 2B AWQ clearly is
    pairs = {(p["a"], p["b"]): p for p in summary["pairwise"]["judge.ratio"]}
    close = pairs[("Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8")]
    assert close["ci95"][0] < 0 < close["ci95"][1] and not close["separable"]
    assert close["diff"] == pytest.approx(0.868 - 0.852, abs=0.003)
    far = pairs[("Qwen2-VL-7B-Instruct", "Qwen2-VL-2B-Instruct-AWQ")]
    assert far["separable"] and far["p_a_better"] == 1.0
    assert len(pairs) == 28
    store.close()


def test_recorded_judgements_are_idempotent_and_keep_raw(peer_dir: Path, tmp_path: Path) -> None:
    store, _cfg = _store_from_peer(peer_dir, tmp_path)
    import_recorded_judgements(store, peer_dir / "judgement_scores.xlsx")
    import_recorded_judgements(store, peer_dir / "judgement_scores.xlsx")
    rows = store.conn.execute("SELECT error_kind, raw FROM judgements WHERE error IS NOT NULL").fetchall()
    assert len(rows) == 6
    assert {r[0] for r in rows} == {"out_of_range"}
    assert any('"Reference_Score": 35' in r[1] for r in rows)
    assert store.conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 400
    store.close()


def test_recorded_judgements_accept_a_store_path_and_row_keys(peer_dir: Path, tmp_path: Path) -> None:
    """The form the original-layout importer calls: the run.sqlite path and the (model, image, repeat) of each row."""
    store, _cfg = _store_from_peer(peer_dir, tmp_path)
    keys = [(g["model"], g["item"], g["repeat"]) for g in sorted(store.generations(), key=lambda g: int(g["key"][5:]))]
    store.close()
    assert import_recorded_judgements(tmp_path / "run.sqlite", peer_dir / "judgement_scores.xlsx", keys) == 400
    with Store(tmp_path / "run.sqlite") as again:
        n_ok = again.conn.execute("SELECT COUNT(*) FROM judgements WHERE error IS NULL").fetchone()[0]
        first = again.conn.execute("SELECT candidate_score, reference_score FROM judgements j JOIN generations g "
                                   "ON g.key = j.generation_key WHERE g.key = 'peer-0'").fetchone()
    assert n_ok == 394
    assert tuple(first) == (8.0, 9.0)  # row 2 of the workbook: Reference_Score 9, Candidate_Score 8
