"""The gallery of index.html: one card per screenshot — its thumbnail, then each of its items (a screen-annotation
screenshot has one; a VQA screenshot one per question, with the question, the human answer and the judge's grade of
it), with every model's answers and their marks (misspellings, invented numbers, language, refusals, answers to
unanswerable questions), score chips and judge verdicts.

The chips are the catalogue's ranking fields made from a per-generation column (:func:`chip_fields`): a metric
plugin's field gets its chip without this module knowing it. Texts stay plain: marking splits them into pieces
(:func:`vlmpipe.render.data.segments`) that the template escapes one by one.

Cards are made one at a time from the run's rows streamed in screenshot order (:func:`cards`), so a run of any size
is rendered in constant memory. Each card's screenshot is inlined as a small thumbnail (WebP, :data:`THUMB_WIDTHS`
pixels wide) and copied full size to ``report/images/<sha256 of its bytes>.<format>`` — named by its content, never
by the dataset's file name — which the thumbnail opens. Each answer carries its filter flags (:data:`FLAGS`).
Thumbnails are as wide as a card's column on small runs, and smaller the more screenshots a run has
(:func:`thumb_width`), so that a thousand of them add about 3 MB to the page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, features

from vlmpipe.analysis.catalogue import ranking_fields
from vlmpipe.analysis.summary import number
from vlmpipe.core.dataset import resolve_image_path
from vlmpipe.core.fields import SummaryField
from vlmpipe.render import data

log = logging.getLogger("vlmpipe.render")

#: Width of the inlined thumbnails, in pixels (a tall screenshot is at most 3× as high), by the number of screenshots
#: in the run: ``(up to n screenshots, width)``; the full-size file opens on click.
THUMB_WIDTHS = ((60, 480), (300, 240), (None, 160))
THUMB_QUALITY = 60
#: Formats a browser shows: copied to report/images/ as they are; any other is converted to PNG.
SHOWN = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
#: What the gallery can be filtered by: ``(flag, label)``, in the filter's order.
FLAGS = [("error", "failed"), ("off-language", "off-language"), ("invented-numbers", "invented numbers"),
         ("refusal", "refuses"), ("misspelled", "misspelled words"), ("invents-answer", "invents an answer")]


@dataclass
class Picture:
    """A card's screenshot: its thumbnail (a data URL), the full-size file under report/ it opens, or why not."""

    thumb: str | None = None
    href: str | None = None
    note: str | None = None


def thumb_width(screenshots: int) -> int:
    """The thumbnails' width for a run of this many screenshots (:data:`THUMB_WIDTHS`)."""
    return next(w for n, w in THUMB_WIDTHS if n is None or screenshots <= n)


def thumbnail(path: Path, side: int = THUMB_WIDTHS[0][1]) -> str | None:
    """A downscaled data URL of an image file (WebP, or JPEG where Pillow lacks WebP), or ``None`` when it cannot be
    read."""
    try:
        with Image.open(path) as im:
            return _thumb(im, side)
    except Exception as err:  # a broken image gets a placeholder, never a failed report
        log.info("no thumbnail for %s: %s", path, err)
        return None


def _thumb(im: Image.Image, side: int) -> str:
    im.draft("RGB", (side, side * 3))  # JPEG: decode at a fraction of the size
    im = im.convert("RGB") if im.mode != "RGB" else im
    im.thumbnail((side, side * 3))
    buf = io.BytesIO()
    if features.check("webp"):
        im.save(buf, "WEBP", quality=THUMB_QUALITY, method=4)
        mime = "image/webp"
    else:  # pragma: no cover - Pillow without libwebp
        im.save(buf, "JPEG", quality=75)
        mime = "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def picture(path: Path, images_dir: Path | None, side: int = THUMB_WIDTHS[0][1]) -> Picture:
    """The thumbnail of an image file and, with ``images_dir``, its full-size copy there (named by the SHA-256 of
    what is written: the file's bytes when a browser shows its format, else a PNG of it)."""
    try:
        raw = path.read_bytes()
        with Image.open(io.BytesIO(raw)) as im:
            fmt = im.format or ""
            href = None
            if images_dir is not None:
                if fmt in SHOWN:
                    body, ext = raw, SHOWN[fmt]
                else:
                    im.load()
                    buf = io.BytesIO()
                    im.convert("RGBA" if "A" in im.getbands() else "RGB").save(buf, "PNG")
                    body, ext = buf.getvalue(), "png"
                name = f"{hashlib.sha256(body).hexdigest()}.{ext}"
                target = images_dir / name
                if not (target.is_file() and target.stat().st_size == len(body)):
                    target.write_bytes(body)
                href = f"{images_dir.name}/{name}"
            return Picture(_thumb(im, side), href)
    except FileNotFoundError:
        return Picture(note="image not available")
    except Exception as err:  # a broken image gets a placeholder, never a failed report
        log.info("no thumbnail for %s: %s", path, err)
        return Picture(note="image not available")


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


def answer_flags(error: Any, marks: dict[str, Any]) -> list[str]:
    """The :data:`FLAGS` an answer has."""
    have = {"error": error is not None, "off-language": bool(marks.get("off_language")),
            "invented-numbers": bool(marks.get("invented")), "refusal": bool(marks.get("refusal")),
            "misspelled": bool(marks.get("misspelled")), "invents-answer": marks.get("unanswerable") == "invented"}
    return [f for f, _label in FLAGS if have[f]]


def _source(it: dict[str, Any], root: Path | None) -> tuple[Path | None, str | None]:
    """The local file of an item's screenshot, or why there is none."""
    src = str(it.get("image") or "")
    if src.startswith(("http://", "https://")):
        return None, "remote image (not embedded: the report loads nothing from the network)"
    if root is None or not src:
        return None, "image not available"
    try:
        return resolve_image_path(root, src), None
    except Exception as err:  # a path outside the dataset
        return None, f"image not available: {err}"


def pictures(items: list[dict[str, Any]], root: Path | None, images_dir: Path | None) -> dict[str, Picture]:
    """``{screenshot: Picture}`` of every screenshot (its first item's image), made in threads (Pillow decodes and
    encodes without the GIL)."""
    first: dict[str, dict[str, Any]] = {}
    for it in items:
        first.setdefault(str(it.get("screenshot") or it["id"]), it)
    if images_dir is not None:
        images_dir.mkdir(parents=True, exist_ok=True)
    sources = {shot: _source(it, root) for shot, it in first.items()}
    todo = [(shot, path) for shot, (path, _why) in sources.items() if path is not None]
    workers = max(1, min(4, os.cpu_count() or 1))
    side = thumb_width(len(first))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = dict(zip([s for s, _p in todo], pool.map(lambda sp: picture(sp[1], images_dir, side), todo),
                        strict=True))
    return {shot: made.get(shot) or Picture(note=why) for shot, (_path, why) in sources.items()}


def cards(cfg: Any, items: list[dict[str, Any]], rows: Iterable[dict[str, Any]], models: list[str],
          judgements: list[dict[str, Any]] | None, human: dict[str, float] | None = None,
          images_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """One card per screenshot, in the order of its first item: the image, and per item (question) its reference and
    every model's answers (in the order of ``models``: the summary's) with their marks and flags. ``rows``: the run's
    rows in screenshot order (``iter_table(store, order="screenshot")``), read as the cards are made. ``human``: the
    judge's grades of the human answers, by item (graded tasks in judge mode both)."""
    expected = getattr(getattr(cfg, "metrics", None), "expected_language", "ru")
    root = Path(cfg.dataset.path) if cfg is not None else None
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for j in judgements or []:
        if (k := data.generation_key(j)):
            by_key[k].append(data.judgement_view(j))
    shown = chip_fields()
    order = list(models)
    pics = pictures(items, root, images_dir)
    groups: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(str(it.get("screenshot") or it["id"]), []).append(it)
    known = {it["id"] for it in items}
    stream = (r for r in rows if r["item"] in known)
    pending = next(stream, None)
    for screenshot, group in groups.items():
        ids = {it["id"] for it in group}
        per_item: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        while pending is not None and pending["item"] in ids:
            r = pending
            mk = data.marks(r["metrics"], expected)
            text = r["text"] if r["error"] is None else None
            per_item[r["item"]][r["model"]].append({
                "repeat": r["repeat"], "error": r["error"], "latency": number(r.get("latency_s")),
                "segments": data.segments(text, mk["misspelled"], mk["invented"]) if text is not None else [],
                "marks": mk, "chips": chips(r["metrics"], shown), "judgements": by_key.get(r["key"], []),
                "flags": answer_flags(r["error"], mk),
            })
            pending = next(stream, None)
        entries = []
        for it in group:
            answers = per_item.get(it["id"], {})
            entries.append({"id": it["id"], "question": it.get("question"), "answerable": it.get("answerable", True),
                            "reference": it.get("reference"), "facts": it.get("facts") or [], "error": it.get("error"),
                            "tags": it.get("tags") or {}, "human_grade": (human or {}).get(it["id"]),
                            "models": [{"name": m, "answers": answers[m]} for m in order if m in answers]})
        first = group[0]
        pic = pics.get(screenshot) or Picture(note="image not available")
        yield {"id": first["id"] if first.get("question") is None else screenshot, "image": pic.thumb,
               "href": pic.href, "image_note": pic.note if pic.thumb is None else None,
               "image_name": str(first.get("image") or ""), "entries": entries}


def card_answers(card: dict[str, Any], models: list[str]) -> list[int]:
    """A card's answers for the gallery's filter index: ``model index × 64 + flag bits`` (bit ``i``: ``FLAGS[i]``)."""
    index = {m: i for i, m in enumerate(models)}
    bits = {f: 1 << i for i, (f, _label) in enumerate(FLAGS)}
    out = []
    for e in card["entries"]:
        for m in e["models"]:
            for a in m["answers"]:
                out.append(index.get(m["name"], 0) * 64 + sum(bits[f] for f in a["flags"]))
    return out
