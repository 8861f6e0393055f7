"""The gallery of index.html: one card per screenshot — its thumbnail, then each of its items (a screen-annotation
screenshot has one; a VQA screenshot one per question, with the question, the human answer and the judge's grade of
it), with every model's answers and their marks (misspellings, invented numbers, language, refusals, answers to
unanswerable questions), score chips and judge verdicts.

The chips are the catalogue's ranking fields made from a per-generation column (:func:`chip_fields`): a metric
plugin's field gets its chip without this module knowing it. Texts stay plain: marking splits them into pieces
(:func:`vlmpipe.render.data.segments`) that the template escapes one by one.
"""

from __future__ import annotations

import base64
import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from vlmpipe.analysis.catalogue import ranking_fields
from vlmpipe.analysis.summary import RunSummary, number
from vlmpipe.core.dataset import resolve_image_path
from vlmpipe.core.fields import SummaryField
from vlmpipe.render import data

log = logging.getLogger("vlmpipe.render")

THUMB_SIDE = 520


def thumbnail(path: Path, side: int = THUMB_SIDE) -> str | None:
    """A downscaled JPEG data URL of an image file, or ``None`` when it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB") if im.mode != "RGB" else im
            im.thumbnail((side, side * 3))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=82)
    except Exception as err:  # a broken image gets a placeholder, never a failed report
        log.info("no thumbnail for %s: %s", path, err)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def chip_fields() -> list[SummaryField]:
    """The per-answer score chips: the ranking fields made from a per-generation column, except the columns the
    gallery marks otherwise (language, invented numbers)."""
    return [f for f in ranking_fields() if f.column is not None and f.column not in data.MARKED_COLUMNS]


def chips(metrics: dict[str, tuple[float | None, Any]], fields: list[SummaryField]) -> list[dict[str, str]]:
    """One answer's chips: each field's own per-generation value (a rate's: yes or no), where it has one."""
    out = []
    for f in fields:
        v = number(metrics.get(f.column or "", (None, None))[0])
        if v is None:
            continue
        text = ("yes" if v > 0 else "no") if f.aggregation == "rate" else f.format(v)
        out.append({"label": f.label.removesuffix(" Σ"), "text": text})  # Σ: summed over answers, not one
    return out


def gallery(cfg: Any, items: list[dict[str, Any]], table: list[dict[str, Any]], summary: RunSummary,
            judgements: list[dict[str, Any]] | None, human: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One card per screenshot: the image, and per item (question) its reference and every model's answers with their
    marks. ``human``: the judge's grades of the human answers, by item (graded tasks in judge mode both)."""
    expected = getattr(getattr(cfg, "metrics", None), "expected_language", "ru")
    root = Path(cfg.dataset.path) if cfg is not None else None
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for j in judgements or []:
        if (k := data.generation_key(j)):
            by_key[k].append(data.judgement_view(j))
    per_item: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    shown = chip_fields()
    for r in table:
        mk = data.marks(r["metrics"], expected)
        text = r["text"] if r["error"] is None else None
        per_item[r["item"]][r["model"]].append({
            "repeat": r["repeat"], "error": r["error"], "latency": number(r.get("latency_s")),
            "segments": data.segments(text, mk["misspelled"], mk["invented"]) if text is not None else [],
            "marks": mk, "chips": chips(r["metrics"], shown), "judgements": by_key.get(r["key"], []),
        })
    order = summary.names()
    cards: dict[str, dict[str, Any]] = {}
    for it in items:
        answers = per_item.get(it["id"], {})
        entry = {"id": it["id"], "question": it.get("question"), "answerable": it.get("answerable", True),
                 "reference": it.get("reference"), "facts": it.get("facts") or [], "error": it.get("error"),
                 "tags": it.get("tags") or {}, "human_grade": (human or {}).get(it["id"]),
                 "models": [{"name": m, "answers": answers[m]} for m in order if m in answers]}
        screenshot = str(it.get("screenshot") or it["id"])
        if screenshot in cards:
            cards[screenshot]["entries"].append(entry)
            continue
        image = None
        note = None
        src = str(it.get("image") or "")
        if src.startswith(("http://", "https://")):
            note = "remote image (not embedded: the report loads nothing from the network)"
        elif root is not None and src:
            try:
                image = thumbnail(resolve_image_path(root, src))
            except Exception as err:  # a path outside the dataset, a missing file
                note = f"image not available: {err}"
            if image is None and note is None:
                note = "image not available"
        else:
            note = "image not available"
        cards[screenshot] = {"id": it["id"] if it.get("question") is None else screenshot, "image": image,
                             "image_note": note, "image_name": src, "entries": [entry]}
    return list(cards.values())
