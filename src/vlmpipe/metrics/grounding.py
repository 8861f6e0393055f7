"""Grounding: are the request's key facts there, and did the model invent numbers?

* ``fact_recall`` — the share of the item's key facts found in the generation. Key facts are the dataset's
  ``facts`` when given, otherwise every distinct numeric mention of the reference (amounts, numbers, dates,
  times, identifiers; see :mod:`vlmpipe.core.facts` for the normalisation that makes «20 588 ₽» equal
  «20588 рублей» and «23 октября» equal «23.10»). A verbal fact («Ozon Card») is found when all its stemmed
  words occur. ``None`` (detail ``"no key facts"``) when the item has none. Detail: the missing facts.
* ``hallucinated_numbers`` — the number of distinct numeric mentions of the generation found in none of the
  sources: the reference, the facts and the screenshot's OCR text. Detail: those mentions.
  ``hallucinated_number_rate`` is the share of generations with at least one.

OCR text comes from Tesseract (``core.ocr.ocr_files``), read once per distinct screenshot (items that share an
image — a VQA screenshot's questions — share its text) before scoring (:meth:`Grounding.prepare`), and kept in
the store's ``items.ocr_text``. Without Tesseract (or with ``metrics.settings.grounding.ocr: false``),
only the reference and facts are sources, which can only raise the count; the metric's version records
which sources were used, and a detail key ``sources`` lists them per generation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vlmpipe.core.dataset import resolve_image_path
from vlmpipe.core.facts import Fact, FactIndex, fact_present, facts_from_reference, find_mentions, parse_fact
from vlmpipe.core.fields import Alert, SummaryField
from vlmpipe.core.ocr import ocr_available, ocr_files
from vlmpipe.core.progress import progress_bar
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

log = logging.getLogger("vlmpipe.grounding")


def _ocr_enabled(ctx: ScoreContext) -> tuple[bool, str]:
    if not ctx.settings("grounding").get("ocr", True):
        return False, "disabled by metrics.settings.grounding.ocr"
    return ocr_available()


def ensure_ocr_text(ctx: ScoreContext, item_ids: set[str]) -> None:
    """Fill ``ocr_text`` of these items (local images only) where it is still missing; stored for reuse. Each
    distinct screenshot (by its image hash, else its path) is read once, many at a time (``core.ocr.ocr_files``)."""
    todo = [ctx.items[i] for i in sorted(item_ids)
            if i in ctx.items and ctx.items[i].get("ocr_text") is None
            and not str(ctx.items[i]["image"]).startswith(("http://", "https://"))]
    if not todo:
        return
    root = Path(ctx.cfg.dataset.path)
    shots: dict[str, list[dict[str, Any]]] = {}  # one entry per distinct screenshot
    paths: dict[str, Path] = {}
    texts: dict[str, str] = {}
    for item in todo:
        try:
            path = resolve_image_path(root, item["image"])
        except Exception as err:  # one unreadable image must not stop scoring
            log.warning("OCR of item %s failed: %s", item["id"], err)
            texts[item["id"]] = ""
            continue
        key = item.get("image_sha") or str(path)
        shots.setdefault(key, []).append(item)
        paths.setdefault(key, path)
    with progress_bar("ocr (screenshots)", len(shots), enabled=ctx.show_progress) as advance:
        read = ocr_files(list(paths.values()), progress=advance)
    for key, lines in zip(paths, read, strict=True):
        for item in shots[key]:
            texts[item["id"]] = "\n".join(lines)
    for item in todo:
        item["ocr_text"] = texts[item["id"]]
    if ctx.store is not None:
        ctx.store.set_ocr_texts(texts)


def item_facts(item: dict[str, Any]) -> list[Fact]:
    if item.get("facts"):
        return [parse_fact(str(f)) for f in item["facts"]]
    return facts_from_reference(item["reference"]) if item.get("reference") else []


def ground(text: str, facts: list[Fact], sources: FactIndex | None) -> dict[str, Score]:
    """Both columns for one generation, given its item's facts and source index."""
    mentions = find_mentions(text)
    gen = FactIndex()
    gen.add(mentions)
    if facts:
        missing = [f.text for f in facts if not fact_present(f, gen, text)]
        recall: Score = (1 - len(missing) / len(facts), {"missing": missing})
    else:
        recall = (None, "no key facts")
    if sources is None:
        invented: Score = (None, "nothing to check numbers against")
    else:
        seen: dict[str, str] = {}
        for m in mentions:
            if m.key not in seen and not sources.has(m):
                seen[m.key] = m.text
        invented = (float(len(seen)), list(seen.values()))
    return {"fact_recall": recall, "hallucinated_numbers": invented}


@register
class Grounding(Metric):
    name = "grounding"
    columns = ("fact_recall", "hallucinated_numbers")
    parallel = True  # the screenshots' text is read in prepare(), before the rows go to worker processes
    needs = frozenset({"reference", "facts", "image"})
    fields = (
        SummaryField("fact_recall_mean", "fact recall", short="facts", column="fact_recall", aggregation="mean",
                     fmt="{:.2f}", higher_is_better=True, group="grounding",
                     description="share of the key facts the answer states", ranking=True, console=10, plot=True,
                     headline=True, paired=True),
        SummaryField("hallucinated_number_rate", "invented numbers", short="inv.num", column="hallucinated_numbers",
                     aggregation="rate", fmt="{:.1%}", higher_is_better=False, group="grounding",
                     description="answers with a number found in neither the screenshot nor the reference",
                     ranking=True, console=4, headline=True, paired=True,
                     alert=Alert("invents_numbers", "{model} invents numbers (amounts, IDs, dates found in neither the "
                                 "screenshot nor the reference) in {value:.1%} of generations.", above=0.0)),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        if any(i.get("reference") or i.get("facts") for i in ctx.items.values()):
            return None
        ok, why = _ocr_enabled(ctx)
        if ok:
            return None
        return f"no references or key facts in this run, and no OCR text ({why})"

    def version(self, ctx: ScoreContext) -> str:
        # 2: a numbered list's numbers are not facts; 3: but a source's numbering is a source
        return f"3:ocr={'on' if _ocr_enabled(ctx)[0] else 'off'}"

    def prepare(self, ctx: ScoreContext, items: set[str]) -> None:
        if _ocr_enabled(ctx)[0]:
            ensure_ocr_text(ctx, items)

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        use_ocr, why = _ocr_enabled(ctx)
        if use_ocr:
            ensure_ocr_text(ctx, {r["item"] for r in rows})
        prepared: dict[str, tuple[list[Fact], FactIndex | None, list[str]]] = {}
        out = []
        for r in rows:
            if r["item"] not in prepared:
                item = ctx.items.get(r["item"]) or {}
                facts = item_facts(item)
                names = [n for n, v in (("reference", item.get("reference")), ("facts", item.get("facts")),
                                        ("ocr", item.get("ocr_text") if use_ocr else None)) if v]
                texts = [item.get("reference"), *map(str, item.get("facts") or [])]
                if use_ocr:
                    texts.append(item.get("ocr_text"))
                prepared[r["item"]] = (facts, FactIndex.of(*texts) if names else None, names)
            facts, sources, names = prepared[r["item"]]
            result = ground(r["text"], facts, sources)
            value, detail = result["hallucinated_numbers"]
            if isinstance(detail, list):
                result["hallucinated_numbers"] = (value, {"numbers": detail, "sources": names,
                                                          **({} if use_ocr else {"ocr": why})})
            out.append(result)
        return out
