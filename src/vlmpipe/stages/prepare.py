"""Preparing a run's items: every dataset item's image read and normalised, the items stored."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from vlmpipe.core.config import ConfigError, RunConfig
from vlmpipe.core.dataset import DatasetError, Item, load_image, load_items
from vlmpipe.core.images import ImageError, PreparedImage
from vlmpipe.core.store import Store
from vlmpipe.tasks import get_task
from vlmpipe.tasks.base import Task

log = logging.getLogger("vlmpipe")


def missing_fields(task: Task, item: Item) -> list[str]:
    """The task's required fields this item lacks (absent or empty)."""
    return [f for f in task.required_fields if getattr(item, f, None) in (None, "")]


def load_task_items(cfg: RunConfig) -> list[Item]:
    """The dataset's items, checked against the task as a whole: when the task needs a field (VQA: the question)
    and no usable item has it, the manifest's column is missing or mapped wrong. That stops the run before it starts
    (DatasetError) instead of failing every item, one warning each. An item lacking it among others that have it
    fails alone (:func:`prepare_items`)."""
    items = load_items(cfg.dataset)
    task = get_task(cfg.task)
    usable = [it for it in items if it.error is None]
    for name in task.required_fields:
        if usable and all(name in missing_fields(task, it) for it in usable):
            sources = ", ".join(str(s.file) for s in cfg.dataset.manifest or []) or str(cfg.dataset.path)
            raise DatasetError(f"{sources}: task {task.name} needs a {name} per item, and none of the {len(usable)} "
                               f"usable item(s) has one; name the manifest's column {name!r}, or map it: "
                               f"dataset.columns: {{{name}: <column>}}")
    return items


def prepare_items(cfg: RunConfig, store: Store, items: list[Item] | None = None) -> dict[str, PreparedImage | str]:
    """Load and normalise every item's image; a bad image fails its item, not the run.

    ``items``: the dataset's items when already read (a run reads them before it writes anything, so that a
    dataset that cannot be used leaves no run directory behind)."""
    items = load_task_items(cfg) if items is None else items
    task = get_task(cfg.task)
    root = Path(cfg.dataset.path)
    images: dict[str, PreparedImage | str] = {}
    loaded: dict[str, PreparedImage | ImageError] = {}  # several questions may share one screenshot: read it once
    rows = []
    for it in items:
        row: dict[str, Any] = {"id": it.id, "image": it.image, "reference": it.reference, "facts": it.facts,
                               "question": it.question, "answerable": it.answerable, "tags": it.tags,
                               "fields": it.fields, "screenshot": task.screenshot_of(it.id, it.image)}
        missing = missing_fields(task, it)
        if it.error is None and missing:
            it.error = f"no {', '.join(missing)} (task {task.name} needs it)"
        if it.error is None:
            try:
                row["user_message"] = task.user_message(cfg, {**it.fields, **vars(it)})
            except ConfigError as err:
                it.error = str(err)
        if it.error:
            row["error"] = it.error
            log.warning("item %s: %s", it.id, it.error)
        elif it.is_url:
            images[it.id] = it.image
            row["image_sha"] = hashlib.sha256(it.image.encode()).hexdigest()
        else:
            if it.image not in loaded:
                try:
                    loaded[it.image] = load_image(root, it, max_side=cfg.dataset.max_side)
                except ImageError as err:
                    loaded[it.image] = err
            img = loaded[it.image]
            if isinstance(img, ImageError):
                row["error"] = f"{it.image}: {img}"
                log.warning("item %s: %s", it.id, row["error"])
            else:
                images[it.id] = img
                row.update(image_sha=img.sha256, mime=img.mime, width=img.width, height=img.height)
        rows.append(row)
    store.put_items(rows)
    return images
