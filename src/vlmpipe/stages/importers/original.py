"""Import the original pipeline's results (its xlsx layout, as in ``../shared/peer``).

``summary_test_stats.xlsx`` (required): ``model_name``, ``Image``, ``Temperature``, ``candidate``,
``Time Taken (sec)``, ``Text Length (char)``, ``Chars/sec``, ``Errors (cnt)``, ``Error Words``,
``Non cyrillic and non latin chars (cnt)``, ``Perplexity``. ``auto_metrics_stats.xlsx`` (optional, same rows
in the same order): ``reference``, ``rouge1``, ``rouge2``, ``rougeL``, ``bleurt``. ``judgement_scores.xlsx``
(optional) is handed to ``vlmpipe.stages.importers.recorded_judgements`` when that module is installed.

Each row becomes one generation: ``item`` = ``Image``, ``repeat`` = its order within (model, image),
``text`` = ``candidate`` exactly as recorded (some keep surrounding quotes; the original's lengths count
them), ``latency_s`` = ``Time Taken (sec)`` (already rounded to 0.1 s by the original, so
length / latency reproduces its ``Chars/sec``). The original's own per-row metrics are kept as scores
named ``recorded_<metric>`` for comparison.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

from vlmpipe.stages.importers.common import (
    ImportDataError,
    ImportedGeneration,
    ImportedItem,
    clean_number,
    clean_text,
    find_image,
    read_results,
    read_xlsx,
    write_run,
)

log = logging.getLogger("vlmpipe.import")

SUMMARY = "summary_test_stats.xlsx"
AUTO = "auto_metrics_stats.xlsx"
JUDGEMENTS = "judgement_scores.xlsx"
REQUIRED = ("model_name", "Image", "candidate", "Time Taken (sec)")
RECORDED_SUMMARY = {
    "Errors (cnt)": "recorded_spelling_errors",
    "Non cyrillic and non latin chars (cnt)": "recorded_non_ru_en_letters",
    "Perplexity": "recorded_perplexity",
}
RECORDED_AUTO = {"rouge1": "recorded_rouge1", "rouge2": "recorded_rouge2", "rougeL": "recorded_rougeL",
                 "bleurt": "recorded_bleurt"}


def words(v: Any) -> list[str] | None:
    text = clean_text(v)
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return [text]
    return [str(w) for w in value] if isinstance(value, list | tuple) else [text]


def _import_recorded_judgements(store_path: Path, results: Path, keys: list[tuple[str, str, int]]) -> str | None:
    """Import the original's judge scores (``judgement_scores.xlsx``) when present; returns a note.

    ``keys`` are ``(model, image, repeat)`` of the summary rows in file order; the judgement file has the same
    rows in the same order.
    """
    from vlmpipe.stages.importers.recorded_judgements import import_recorded_judgements

    path = results / JUDGEMENTS
    if not path.is_file():
        return None
    n = import_recorded_judgements(store_path, path, keys)
    return f"{JUDGEMENTS}: {n} recorded judgement(s) imported"


def import_original(results: Path, images: Path | None, out: Path) -> Path:
    """Import the original pipeline's results folder into the run directory ``out``."""
    results = Path(results)
    summary = read_results(results, images, SUMMARY, REQUIRED, "the original pipeline's per-generation table")
    summary_path = results / SUMMARY
    auto = None
    if (results / AUTO).is_file():
        auto = read_xlsx(results / AUTO)
        aligned = (
            "candidate" in auto.columns and len(auto) == len(summary)
            and all(str(a) == str(b) for a, b in zip(auto["candidate"], summary["candidate"], strict=True))
        )
        if not aligned:
            raise ImportDataError(f"{results / AUTO}: its rows do not match {SUMMARY} row by row")

    counters: dict[tuple[str, str], int] = {}
    gens: list[ImportedGeneration] = []
    references: dict[str, str] = {}
    for idx, row in summary.iterrows():
        model, image = str(row["model_name"]).strip(), str(row["Image"]).strip()
        if not model or model == "nan" or not image or image == "nan":
            raise ImportDataError(f"{summary_path}: row {int(idx) + 2}: empty model_name or Image")
        rep = counters.get((model, image), 0)
        counters[(model, image)] = rep + 1
        recorded: dict[str, tuple[float | None, Any]] = {}
        for col, name in RECORDED_SUMMARY.items():
            if col in summary.columns:
                detail = words(row.get("Error Words")) if name == "recorded_spelling_errors" else None
                recorded[name] = (clean_number(row[col]), detail)
        if auto is not None:
            arow = auto.iloc[int(idx)]
            for col, name in RECORDED_AUTO.items():
                if col in auto.columns:
                    recorded[name] = (clean_number(arow[col]), None)
            ref = clean_text(arow.get("reference"))
            if ref and image not in references:
                references[image] = ref
        text = clean_text(row["candidate"])
        gens.append(ImportedGeneration(
            model=model, item=image, repeat=rep, text=text,
            error=None if text is not None else "no text recorded",
            latency_s=clean_number(row["Time Taken (sec)"]),
            temperature=clean_number(row.get("Temperature")), recorded=recorded,
        ))
    item_ids = list(dict.fromkeys(g.item for g in gens))
    items = [ImportedItem(i, find_image(images, i), references.get(i)) for i in item_ids]
    notes = [f"imported from {results} (original pipeline layout)"]
    write_run(out, items, gens, images=images, source=f"original:{results.resolve()}", notes=notes)
    note = _import_recorded_judgements(Path(out) / "run.sqlite", results, [(g.model, g.item, g.repeat) for g in gens])
    if note:
        notes.append(note)
        log.info(note)
        from vlmpipe.core.store import Store

        with Store(Path(out) / "run.sqlite") as store:
            meta = store.get_meta("imported", {})
            meta["notes"] = notes
            store.set_meta("imported", meta)
    return Path(out)
