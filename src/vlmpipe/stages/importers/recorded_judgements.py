"""Recorded judgements: the original pipeline's ``judgement_scores.xlsx`` read into the judgements table.

The workbook has one row per candidate generation, in the same order as ``summary_test_stats.xlsx``:
``model_name``, ``Image``, ``candidate``, ``reference``, ``Reference_Score``, ``Candidate_Score``,
``Judge Explanation``. A row is matched to the stored generation of the same model and item whose repeat is
the row's order of appearance within its (model, Image). The original shuffled the answers but did not record
the order, so ``candidate_position`` stays unknown. Rows whose scores fall outside 0–10 (the judge summed four
criteria: 34, 35, 36...) are stored as failed judgements with the raw values — the original dropped them before
aggregating, so re-aggregation reproduces its numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from vlmpipe.core.store import Store
from vlmpipe.stages.importers.common import clean_number, clean_text

log = logging.getLogger("vlmpipe.stages.judge")

REQUIRED = ("model_name", "Image", "Reference_Score", "Candidate_Score")
RECORDED_RANGE = (0.0, 10.0)


def import_recorded_judgements(store: Store | str | Path, xlsx_path: str | Path,
                               keys: list[tuple[str, str, int]] | None = None) -> int:
    """Store every row of ``judgement_scores.xlsx`` that matches a stored generation; returns how many.

    ``store`` is an open :class:`Store` or the path of ``run.sqlite``. ``keys`` (optional): the
    ``(model, image, repeat)`` of each row in file order, as the generations were imported; without it the
    repeat is the row's order of appearance within its (model, Image). Raises ``ValueError`` when a required
    column is missing. Sets the run's judge metadata to mode ``recorded`` so that aggregation uses these rows.
    """
    if not isinstance(store, Store):
        with Store(store) as opened:
            return import_recorded_judgements(opened, xlsx_path, keys)
    path = Path(xlsx_path)
    frame = pd.read_excel(path, engine="openpyxl")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {missing}; found {list(frame.columns)}")
    signature = "recorded:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    generations = {(g["model"], g["item"], int(g["repeat"])): g
                   for g in store.generations(role="candidate", planned=False)}
    items = {i["id"]: i for i in store.items()}
    seen: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    unmatched = 0
    low, high = RECORDED_RANGE
    for idx, rec in enumerate(frame.to_dict(orient="records")):
        model, item = str(rec["model_name"]), str(rec["Image"])
        repeat = seen.get((model, item), 0)
        seen[(model, item)] = repeat + 1
        if keys is not None and len(keys) == len(frame) and keys[idx][:2] == (model, item):
            repeat = int(keys[idx][2])
        gen = generations.get((model, item, repeat))
        if gen is None:
            unmatched += 1
            continue
        cand, ref = clean_number(rec["Candidate_Score"]), clean_number(rec["Reference_Score"])
        explanation = clean_text(rec.get("Judge Explanation"))
        row: dict[str, Any] = {
            "key": hashlib.sha256(f"{signature}:{gen['key']}".encode()).hexdigest()[:32],
            "generation_key": gen["key"], "model": model, "item": item, "repeat": repeat,
            "candidate_position": None, "signature": signature, "reference_sha": None,
            "explanation_candidate": explanation, "attempts": 1,
            "raw": json.dumps({"row": idx + 2, "Reference_Score": rec["Reference_Score"],
                               "Candidate_Score": rec["Candidate_Score"], "Judge Explanation": explanation},
                              ensure_ascii=False, default=str),
        }
        if cand is None or ref is None:
            row.update(error="a score is missing or not a number", error_kind="malformed")
        elif not (low <= cand <= high and low <= ref <= high):
            row.update(error=f"scores outside {low:g}–{high:g} (reference {ref:g}, candidate {cand:g}); "
                             "the original dropped this row", error_kind="out_of_range")
        else:
            row.update(candidate_score=cand, reference_score=ref)
        rows.append(row)
        reference = clean_text(rec.get("reference"))
        if reference and item in items and not items[item].get("reference"):
            store.set_reference(item, reference)
            items[item]["reference"] = reference
    if unmatched:
        log.warning("%s: %d row(s) match no stored generation and were skipped", path.name, unmatched)
    store.put_judgements(rows)
    store.set_judge_meta({"signature": signature, "mode": "recorded", "seed": 0,
                           "model": "recorded (original pipeline)", "templates": None,
                           "source": f"recorded judgements from {path.name}"})
    return len(rows)
