"""The dataset: screenshots, optionally described by a manifest (JSONL or CSV).

Manifest fields: ``id``, ``image`` (a path inside the dataset folder, or an http(s) URL), ``user_message``,
``reference``, ``facts`` (a list, or a ``;``-separated string in CSV). Without a manifest every image file in
the folder is an item named after its file. Problems with one item (a missing file, a path outside the
folder) fail that item only; problems with the manifest as a whole stop the run before it starts.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmpipe.core.config import DatasetConfig
from vlmpipe.core.images import ImageError, PreparedImage, prepare_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_IMAGE_BYTES = 50 * 1024 * 1024


class DatasetError(ValueError):
    """A dataset that cannot be used at all (the message names the file and line)."""


class ManifestRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    image: str = Field(min_length=1)
    user_message: str = ""
    reference: str | None = None
    facts: list[str] = Field(default_factory=list)

    @field_validator("id", "image", mode="before")
    @classmethod
    def _str(cls, v: object) -> object:
        return str(v).strip() if isinstance(v, int | float) else v

    @field_validator("facts", mode="before")
    @classmethod
    def _split_facts(cls, v: object) -> object:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            return [f.strip() for f in v.split(";") if f.strip()]
        return v


@dataclass
class Item:
    id: str
    image: str
    user_message: str = ""
    reference: str | None = None
    facts: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def is_url(self) -> bool:
        return self.image.startswith(("http://", "https://"))


def _natural_key(s: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def _read_manifest(path: Path) -> list[tuple[int, dict[str, object] | str]]:
    """``(row number, row)`` per manifest row (the line number in JSONL); a string says why a row is unusable."""
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:  # e.g. saved as Windows-1251
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save the manifest as "
                           "UTF-8") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the manifest: {err}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows: list[tuple[int, dict[str, object] | str]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                rows.append((n, f"not valid JSON: {err.msg}"))
                continue
            rows.append((n, row if isinstance(row, dict) else "each line must be a JSON object"))
        return rows
    if path.suffix.lower() == ".csv":
        return list(enumerate(csv.DictReader(text.splitlines()), 1))
    raise DatasetError(f"{path}: manifest must be .jsonl or .csv")


def _row_id(raw: dict[str, object] | str, n: int) -> str:
    """The id a manifest row is stored under: its own when usable, else ``row-N``."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool) and 0 < len(str(value).strip()) <= 200:
            return str(value).strip()
    return f"row-{n}"


def _manifest_items(manifest: Path) -> list[Item]:
    """One item per manifest row; a row that cannot be used becomes a failed item naming the row and field."""
    items: list[Item] = []
    first_row: dict[str, int] = {}
    for n, raw in _read_manifest(manifest):
        where = f"{manifest.name}: row {n}"
        if isinstance(raw, str):
            items.append(Item(_row_id(raw, n), "", error=f"{where}: {raw}"))
            continue
        try:
            row = ManifestRow.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(
                f"field {'.'.join(str(p) for p in e['loc']) or '(row)'}: {e['msg']}" for e in err.errors()
            )
            image = raw.get("image")
            items.append(Item(_row_id(raw, n), image if isinstance(image, str) else "", error=f"{where}: {problems}"))
            continue
        if row.id in first_row:
            dup_id = f"{row.id}@row-{n}"
            items.append(Item(dup_id, row.image, error=f"{where}: duplicate id {row.id!r} (first used in row "
                                                      f"{first_row[row.id]}); this row is skipped"))
            continue
        first_row[row.id] = n
        items.append(Item(row.id, row.image, row.user_message, row.reference, row.facts))
    # the id given to an unusable row ("row-3", "a@row-4") must not collide with a usable row's id
    taken = {it.id for it in items if it.error is None}
    for it in items:
        if it.error is None:
            continue
        while it.id in taken:
            it.id += "'"
        taken.add(it.id)
    return items


def load_items(cfg: DatasetConfig) -> list[Item]:
    """The dataset's items, in manifest order (or natural file-name order without one)."""
    root = Path(cfg.path)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    items: list[Item] = []
    if cfg.manifest is not None:
        items = _manifest_items(Path(cfg.manifest))
    else:
        files = sorted(
            (p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        items = [Item(p.stem, p.name) for p in files]
    if not items:
        raise DatasetError(f"{cfg.manifest or root}: the dataset has no items")
    return items[: cfg.limit] if cfg.limit else items


def resolve_image_path(root: Path, image: str) -> Path:
    """The file an item names, which must lie inside the dataset folder."""
    root = root.resolve()
    candidate = (root / image).resolve()
    if not candidate.is_relative_to(root):
        raise ImageError(f"image path {image!r} points outside the dataset folder")
    return candidate


def load_image(root: Path, item: Item, *, max_side: int | None = None) -> PreparedImage:
    """Read and normalise an item's local image; :class:`ImageError` says what is wrong with it."""
    path = resolve_image_path(root, item.image)
    if not path.is_file():
        raise ImageError(f"image file not found: {item.image}")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ImageError(f"image file too large: {size:,} bytes (limit {MAX_IMAGE_BYTES:,})")
    return prepare_image(path.read_bytes(), max_side=max_side)
