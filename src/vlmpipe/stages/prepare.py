"""Preparing a run's items: every dataset item's image read and normalised, the items stored."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from vlmpipe.core.config import RunConfig
from vlmpipe.core.dataset import Item, load_image, load_items
from vlmpipe.core.images import ImageError, PreparedImage
from vlmpipe.core.store import Store

log = logging.getLogger("vlmpipe")


def prepare_items(cfg: RunConfig, store: Store, items: list[Item] | None = None) -> dict[str, PreparedImage | str]:
    """Load and normalise every item's image; a bad image fails its item, not the run.

    ``items``: the dataset's items when already read (a run reads them before it writes anything, so that a
    dataset that cannot be used leaves no run directory behind)."""
    items = load_items(cfg.dataset) if items is None else items
    root = Path(cfg.dataset.path)
    images: dict[str, PreparedImage | str] = {}
    rows = []
    for it in items:
        row: dict[str, Any] = {"id": it.id, "image": it.image, "user_message": it.user_message,
                               "reference": it.reference, "facts": it.facts}
        if it.error:
            row["error"] = it.error
            log.warning("item %s: %s", it.id, it.error)
        elif it.is_url:
            images[it.id] = it.image
            row["image_sha"] = hashlib.sha256(it.image.encode()).hexdigest()
        else:
            try:
                img = load_image(root, it, max_side=cfg.dataset.max_side)
            except ImageError as err:
                row["error"] = f"{it.image}: {err}"
                log.warning("item %s: %s", it.id, row["error"])
            else:
                images[it.id] = img
                row.update(image_sha=img.sha256, mime=img.mime, width=img.width, height=img.height)
        rows.append(row)
    store.put_items(rows)
    return images
