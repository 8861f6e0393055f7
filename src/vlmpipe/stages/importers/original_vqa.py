"""Import the original study's visual-question-answering results (its layout, as in ``../shared/peer-vqa``).

``summary_test_stats.xlsx`` (required): one row per (model, screenshot, question): ``model_name``, ``Image``,
``Question``, ``Answer`` (the human answer), ``Device`` (``pc``/``phone``), ``Temperature``, ``candidate``,
``Time Taken (sec)``, ``Errors (cnt)``, ``Error Words``, ``Non cyrillic and non latin chars (cnt)``,
``Perplexity``. ``judgement_scores.xlsx`` (optional): ``model_name``, ``Image``, ``question``, ``Candidate_Score``
(1–10 against the human answer), ``Judge Explanation``. ``auto_metrics_stats.xlsx`` (optional): the study's ROUGE and
BLEURT per answer.

Each (screenshot, question) becomes one item of a ``task: vqa`` run: id ``<Image>#<k>`` (its k-th question, in the
file's order), the question, the human answer as its reference, ``Device`` as the tag ``device``, the screenshot
``<images>/<Device>/<Image>`` as the cluster its intervals resample. Each row becomes one generation (an empty
``candidate`` is a failed generation); the recorded grades become graded judgements (candidate score = the grade,
the human answer counting as 10, so the ratio is grade / 10, as the study computes it). The study's own per-row
metrics are kept as ``recorded_<metric>`` scores for comparison.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from vlmpipe.core.store import Store
from vlmpipe.stages.importers.common import (
    ImportDataError,
    ImportedGeneration,
    ImportedItem,
    clean_number,
    clean_text,
    read_results,
    read_xlsx,
    write_run,
)
from vlmpipe.stages.importers.original import RECORDED_AUTO, RECORDED_SUMMARY, words
from vlmpipe.stages.judge.run import GRADED

log = logging.getLogger("vlmpipe.import")

SUMMARY = "summary_test_stats.xlsx"
JUDGEMENTS = "judgement_scores.xlsx"
AUTO = "auto_metrics_stats.xlsx"
REQUIRED = ("model_name", "Image", "Question", "Answer", "candidate", "Time Taken (sec)")
GRADE_RANGE = (1.0, 10.0)


def _image_path(images: Path | None, device: str | None, image: str) -> str:
    """The screenshot under ``images``: ``<device>/<image>`` when that file exists (the study's layout)."""
    if images is not None and device and (images / device / image).is_file():
        return f"{device}/{image}"
    return image


def import_original_vqa(results: Path, images: Path | None, out: Path) -> Path:
    """Import the study's VQA results folder into the run directory ``out`` (a ``task: vqa`` run)."""
    results = Path(results)
    summary = read_results(results, images, SUMMARY, REQUIRED, "the study's per-answer table")
    summary_path = results / SUMMARY
    auto = _auto_metrics(results / AUTO)

    items: dict[tuple[str, str], ImportedItem] = {}
    asked: dict[str, int] = {}
    gens: list[ImportedGeneration] = []
    for idx, row in summary.iterrows():
        model, image = str(row["model_name"]).strip(), str(row["Image"]).strip()
        question = clean_text(row["Question"])
        if not model or model == "nan" or not image or image == "nan" or not question:
            raise ImportDataError(f"{summary_path}: row {int(idx) + 2}: empty model_name, Image or Question")
        device = clean_text(row.get("Device"))
        item = items.get((image, question))
        if item is None:
            asked[image] = asked.get(image, 0) + 1
            path = _image_path(images, device, image)
            item = ImportedItem(f"{image}#{asked[image]}", path, clean_text(row["Answer"]), question=question,
                                tags={"device": device} if device else {}, screenshot=path)
            items[(image, question)] = item
        recorded: dict[str, tuple[float | None, Any]] = {}
        for col, name in RECORDED_SUMMARY.items():
            if col in summary.columns:
                detail = words(row.get("Error Words")) if name == "recorded_spelling_errors" else None
                recorded[name] = (clean_number(row[col]), detail)
        recorded.update(auto.get((model, image, item.reference or ""), {}))
        text = clean_text(row["candidate"])
        gens.append(ImportedGeneration(
            model=model, item=item.id, repeat=0, text=text, error=None if text is not None else "no text recorded",
            latency_s=clean_number(row["Time Taken (sec)"]), temperature=clean_number(row.get("Temperature")),
            recorded=recorded))
    notes = [f"imported from {results} (the study's VQA layout)"]
    write_run(out, list(items.values()), gens, images=images, source=f"original-vqa:{results.resolve()}",
              notes=notes, task="vqa")
    if (results / JUDGEMENTS).is_file():
        with Store(Path(out) / "run.sqlite") as store:
            n = import_recorded_grades(store, results / JUDGEMENTS, {k: it.id for k, it in items.items()})
            notes.append(f"{JUDGEMENTS}: {n} recorded grade(s) imported")
            meta = store.get_meta("imported", {})
            meta["notes"] = notes
            store.set_meta("imported", meta)
    return Path(out)


def _auto_metrics(path: Path) -> dict[tuple[str, str, str], dict[str, tuple[float | None, Any]]]:
    """The study's ROUGE/BLEURT per (model, image, human answer), when the file is there."""
    if not path.is_file():
        return {}
    frame = read_xlsx(path)
    out: dict[tuple[str, str, str], dict[str, tuple[float | None, Any]]] = {}
    for rec in frame.to_dict(orient="records"):
        key = (str(rec.get("model_name")), str(rec.get("Image")), clean_text(rec.get("reference")) or "")
        out[key] = {name: (clean_number(rec.get(col)), None) for col, name in RECORDED_AUTO.items() if col in rec}
    return out


def import_recorded_grades(store: Store, xlsx_path: Path, item_ids: dict[tuple[str, str], str]) -> int:
    """Store the study's grades (``Candidate_Score`` 1–10 per answer) as graded judgements; returns how many.

    ``item_ids``: ``(Image, question) → item id``. A grade outside 1–10 or missing is a failed judgement with its raw
    value; a row matching no stored generation is skipped with a warning.
    """
    frame = read_xlsx(xlsx_path)
    missing = [c for c in ("model_name", "Image", "question", "Candidate_Score") if c not in frame.columns]
    if missing:
        raise ImportDataError(f"{xlsx_path}: missing column(s) {missing}; found {list(frame.columns)}")
    signature = "recorded:" + hashlib.sha256(xlsx_path.read_bytes()).hexdigest()[:12]
    generations = {(g["model"], g["item"]): g for g in store.generations(role="candidate", planned=False)}
    rows: list[dict[str, Any]] = []
    unmatched = 0
    low, high = GRADE_RANGE
    for idx, rec in enumerate(frame.to_dict(orient="records")):
        model, image, question = str(rec["model_name"]), str(rec["Image"]), clean_text(rec["question"]) or ""
        gen = generations.get((model, item_ids.get((image, question), "")))
        if gen is None:
            unmatched += 1
            continue
        score = clean_number(rec["Candidate_Score"])
        explanation = clean_text(rec.get("Judge Explanation"))
        row: dict[str, Any] = {
            "key": hashlib.sha256(f"{signature}:{gen['key']}".encode()).hexdigest()[:32],
            "generation_key": gen["key"], "model": model, "item": gen["item"], "repeat": gen["repeat"],
            "candidate_position": GRADED, "signature": signature, "reference_sha": None,
            "explanation_candidate": explanation, "attempts": 1,
            "raw": json.dumps({"row": idx + 2, "Candidate_Score": rec["Candidate_Score"]}, ensure_ascii=False,
                              default=str),
        }
        if score is None:
            row.update(error="the grade is missing or not a number", error_kind="malformed")
        elif not low <= score <= high:
            row.update(error=f"grade {score:g} outside {low:g}–{high:g}", error_kind="out_of_range")
        else:
            row.update(candidate_score=score, reference_score=high)
        rows.append(row)
    if unmatched:
        log.warning("%s: %d row(s) match no stored generation and were skipped", xlsx_path.name, unmatched)
    store.put_judgements(rows)
    store.set_judge_meta({"signature": signature, "mode": "recorded", "seed": 0, "kind": "graded",
                          "model": "recorded (the study's judge)", "templates": None,
                          "source": f"recorded grades from {xlsx_path.name} (ratio = grade / 10)"})
    return len(rows)
