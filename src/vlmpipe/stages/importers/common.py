"""Writing an imported run directory: config.yaml, a manifest of the items, and run.sqlite."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmpipe.core.config import ConfigError, RunConfig, config_from_dict
from vlmpipe.core.dataset import IMAGE_SUFFIXES, resolve_image_path
from vlmpipe.core.folders import why_not_written
from vlmpipe.core.images import ImageError, prepare_image
from vlmpipe.core.rundir import save_config
from vlmpipe.core.store import Store


class ImportDataError(ValueError):
    """Recorded results that cannot be imported; the message names the file and what is wrong."""


@dataclass
class ImportedItem:
    id: str
    image: str
    reference: str | None = None
    facts: list[str] = field(default_factory=list)
    question: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    screenshot: str | None = None  # the cluster intervals resample (default: the item)

    def manifest_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "image": self.image, "reference": self.reference, "facts": self.facts}
        if self.question is not None:
            row["question"] = self.question
        if self.tags:
            row["tags"] = self.tags
        return row


@dataclass
class ImportedGeneration:
    model: str
    item: str
    repeat: int
    text: str | None
    latency_s: float | None = None
    ttft_s: float | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    temperature: float | None = None
    recorded: dict[str, tuple[float | None, Any]] = field(default_factory=dict)


def read_results(results: Path, images: Path | None, table: str, required: tuple[str, ...], what: str) -> Any:
    """``results/table`` as a data frame, after checking that the folders exist and the table has the ``required``
    columns; :class:`ImportDataError` names the file and what is missing (``what``: what the table is)."""
    results = Path(results)
    if not results.is_dir():
        raise ImportDataError(f"{results}: results folder not found")
    if images is not None and not Path(images).is_dir():
        raise ImportDataError(f"{images}: images folder not found")
    path = results / table
    if not path.is_file():
        raise ImportDataError(f"{results}: {table} not found ({what})")
    frame = read_xlsx(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ImportDataError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    return frame


def read_xlsx(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_excel(path, engine="openpyxl")
    except Exception as err:
        raise ImportDataError(f"{path}: cannot read as xlsx: {err}") from None


def clean_number(v: Any) -> float | None:
    """A float from a table cell, ``None`` for blanks, text, NaN and infinities."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def clean_text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def find_image(images: Path | None, item_id: str, given: str | None = None) -> str:
    """The image file of an item inside ``images``: ``given`` when it exists, else ``<id>.<image suffix>``."""
    if given:
        return given
    if images is not None and images.is_dir():
        for suffix in sorted(IMAGE_SUFFIXES):
            if (images / f"{item_id}{suffix}").is_file():
                return f"{item_id}{suffix}"
    return item_id


def _run_name(out: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("-") or "imported"


def _key(source: str, g: ImportedGeneration) -> str:
    payload = json.dumps({"import": source, "model": g.model, "item": g.item, "repeat": g.repeat},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def write_run(out: Path, items: list[ImportedItem], gens: list[ImportedGeneration], *, images: Path | None,
              source: str, notes: list[str] | None = None, task: str = "request") -> RunConfig:
    """Write the run directory ``out``; returns its config. Refuses a folder that holds another run."""
    out = out.resolve()
    if (out / "run.sqlite").exists():
        raise ImportDataError(f"{out}: already holds a run (run.sqlite); import into a new folder")
    if not gens:
        raise ImportDataError(f"{source}: no generations to import")
    dataset_dir = (images or out).resolve()
    manifest = out / "imported_items.jsonl"
    try:
        out.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(json.dumps(it.manifest_row(), ensure_ascii=False) + "\n" for it in items),
                            encoding="utf-8")
    except OSError as err:
        raise ImportDataError(f"--out {out}: cannot create the run directory: {why_not_written(out, err)}") \
            from None
    models: list[str] = list(dict.fromkeys(g.model for g in gens))
    temps = {g.model: g.temperature for g in gens if g.temperature is not None}
    repeats = max(g.repeat for g in gens) + 1
    data = {
        "name": _run_name(out),
        "task": task,
        "output_dir": str(out.parent),
        "dataset": {"path": str(dataset_dir), "manifest": str(manifest)},
        "models": [{"name": m, **({"temperature": temps[m]} if m in temps else {})} for m in models],
        "repeats": repeats,
        "references": {"source": "dataset"},
        "system_prompt": "",  # not recorded by imported results
    }
    try:
        cfg = config_from_dict(data, source=f"{source} (imported config)", base_dir=out)
    except ConfigError as err:
        raise ImportDataError(str(err)) from None
    save_config(cfg, out)
    with Store(out / "run.sqlite") as store:
        rows = []
        for it in items:
            row: dict[str, Any] = {**it.manifest_row(), "screenshot": it.screenshot or it.id}
            if images is not None:
                try:
                    path = resolve_image_path(dataset_dir, it.image)
                    img = prepare_image(path.read_bytes())
                    row.update(image_sha=img.sha256, mime=img.mime, width=img.width, height=img.height)
                except (ImageError, OSError) as err:
                    row["error"] = f"{it.image}: {err}"
            rows.append(row)
        store.put_items(rows)
        store.put_models([(m, "candidate", {"name": m, "imported_from": source}) for m in models])
        keyed = [(_key(source, g), g) for g in gens]
        store.set_plan((k, g.model, "candidate", g.item, g.repeat) for k, g in keyed)
        for k, g in keyed:
            store.put_generation({
                "key": k, "model": g.model, "role": "candidate", "item": g.item, "repeat": g.repeat,
                "text": g.text, "error": g.error, "error_kind": "imported" if g.error else None,
                "latency_s": g.latency_s, "ttft_s": g.ttft_s, "prompt_tokens": g.prompt_tokens,
                "completion_tokens": g.completion_tokens,
            })
        store.put_scores((k, metric, value, detail) for k, g in keyed for metric, (value, detail) in g.recorded.items())
        store.set_meta("imported", {"source": source, "generations": len(gens), "notes": notes or []})
    return cfg
