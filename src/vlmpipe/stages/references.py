"""The reference stage: which reference answer each item is judged and scored against.

``references.source: dataset`` keeps the dataset's reference texts. ``model``: the reference model's samples
are generated like any generation (keyed, resumable; role ``reference``) and the first successful sample of
each item becomes its reference, written into ``items.reference`` so every metric and the judge use it; an item
whose samples all failed keeps the dataset's reference, if it has one. ``none``: no references are used.
``references.csv`` in the report lists the chosen texts and where each came from.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store

META_KEY = "reference_sources"


def apply_references(cfg: RunConfig, store: Store) -> dict[str, dict[str, Any]]:
    """Choose each item's reference; returns and stores ``{item: {"source", "model", "sample"}}``."""
    items = store.items()
    chosen: dict[str, dict[str, Any]] = {}
    if cfg.references.source == "model" and cfg.references.model is not None:
        first: dict[str, dict[str, Any]] = {}
        for g in store.generations(role="reference"):
            if g["error"] is None and (g["text"] or "").strip() and g["item"] not in first:
                first[g["item"]] = g
        previous = store.get_meta(META_KEY, {}) or {}
        for it in items:
            g = first.get(it["id"])
            if g is not None:
                if it["reference"] != g["text"]:
                    store.set_reference(it["id"], g["text"])
                chosen[it["id"]] = {"source": "model", "model": g["model"], "sample": g["repeat"]}
            elif it["reference"]:
                chosen[it["id"]] = previous.get(it["id"]) or {"source": "dataset"}
    elif cfg.references.source == "dataset":
        chosen = {it["id"]: {"source": "dataset"} for it in items if it["reference"]}
    store.set_meta(META_KEY, chosen)
    return chosen


def write_references_csv(store: Store, path: Path) -> None:
    """``item,source,model,sample,reference``: the reference text each item was judged against."""
    sources = store.get_meta(META_KEY, {}) or {}
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item", "source", "model", "sample", "reference"])
        for it in store.items():
            src = sources.get(it["id"], {"source": "dataset" if it["reference"] else ""})
            w.writerow([it["id"], src.get("source", ""), src.get("model", ""),
                        "" if src.get("sample") is None else src["sample"], it["reference"] or ""])
