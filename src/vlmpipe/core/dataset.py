"""The dataset: screenshots, optionally described by one or more manifests (JSONL, CSV, XLSX or XLS).

Manifest fields: ``id``, ``image`` (a path inside the dataset folder, or an http(s) URL), ``user_message``,
``reference``, ``facts`` (a list, or a ``;``-separated string in CSV/XLS), ``question`` (visual question
answering), ``answerable`` (``false`` when the screenshot cannot answer the question), ``tags`` (an object, or
``key=value;key=value``, or columns named ``tag:<key>``). Any other column is kept as an item field for prompt
templates. ``dataset.columns`` maps field names to other column names (``{image: File_name, question: Question,
reference: Answer}``). A manifest source may name the folder its images are in and tags for all its rows, so the
study's ``QA_pc.xls`` and ``QA_phone.xls`` load as one dataset tagged ``device: pc|phone``.

A row without an ``id`` is named after its image (``233158.png#2`` for its second question). Without a manifest
every image file in the folder is an item named after its file. Problems with one row (a missing file, a path
outside the folder) fail that item only; problems with a manifest as a whole stop the run before it starts.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmpipe.core.config import DatasetConfig, ManifestSource
from vlmpipe.core.images import ImageError, PreparedImage, prepare_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MANIFEST_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".xlsx", ".xlsm", ".xls")
KNOWN = ("id", "image", "user_message", "reference", "facts", "question", "answerable", "tags")


class DatasetError(ValueError):
    """A dataset that cannot be used at all (the message names the file and line)."""


class ManifestRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, min_length=1, max_length=200)
    image: str = Field(min_length=1)
    user_message: str = ""
    reference: str | None = None
    facts: list[str] = Field(default_factory=list)
    question: str | None = None
    answerable: bool = True
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("id", "image", mode="before")
    @classmethod
    def _str(cls, v: object) -> object:
        return str(v).strip() if isinstance(v, int | float) and not isinstance(v, bool) else v

    @field_validator("facts", mode="before")
    @classmethod
    def _split_facts(cls, v: object) -> object:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            return [f.strip() for f in v.split(";") if f.strip()]
        return v

    @field_validator("answerable", mode="before")
    @classmethod
    def _yes_no(cls, v: object) -> object:
        if v is None or v == "":
            return True
        if isinstance(v, str):
            low = v.strip().lower()
            if low in ("false", "no", "0", "нет"):
                return False
            if low in ("true", "yes", "1", "да"):
                return True
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: object) -> object:
        if v is None or v == "":
            return {}
        if isinstance(v, str):  # "device=phone;os=ios"
            pairs = [p.split("=", 1) for p in v.split(";") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("tags: write key=value pairs separated by ';' (device=phone;os=ios)")
            return {k.strip(): val.strip() for k, val in pairs}
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    def extra_fields(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


@dataclass
class Item:
    id: str
    image: str
    user_message: str = ""
    reference: str | None = None
    facts: list[str] = field(default_factory=list)
    error: str | None = None
    question: str | None = None
    answerable: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return self.image.startswith(("http://", "https://"))


def _natural_key(s: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def _cell(v: Any) -> Any:
    """A table cell as a manifest value: blanks and NaN are absent, whole floats from spreadsheets are ints."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    return v


#: a manifest's column names (a table's header; the keys JSONL rows use), and ``(row number, row)`` per row
Manifest = tuple[list[str], list[tuple[int, dict[str, object] | str]]]


def _read_table(path: Path) -> Manifest:
    """The header and ``(row number, row)`` of a CSV (data rows from 1) or XLSX/XLS manifest (the sheet's row
    number)."""
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(_text(path).splitlines())
        rows: list[tuple[int, dict[str, object] | str]] = list(enumerate(reader, 1))
        return [str(k).strip() for k in reader.fieldnames or []], rows
    import pandas as pd

    try:
        # .xls (the old binary format) is read by python-calamine; .xlsx by openpyxl, as everywhere else
        frame = pd.read_excel(path, dtype=object, engine="calamine" if path.suffix.lower() == ".xls" else "openpyxl")
    except Exception as err:
        raise DatasetError(f"{path}: cannot read the spreadsheet: {err}") from None
    rows = []
    for n, rec in enumerate(frame.to_dict(orient="records"), 2):
        rows.append((n, {str(k).strip(): c for k, v in rec.items() if (c := _cell(v)) is not None}))
    return [str(k).strip() for k in frame.columns], rows


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:  # e.g. saved as Windows-1251
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save the manifest as "
                           "UTF-8") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the manifest: {err}") from None


def _read_manifest(path: Path) -> Manifest:
    """The column names and ``(row number, row)`` per manifest row (the line number in JSONL); a string says why a
    row is unusable. A JSONL manifest's columns are the keys its rows use."""
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found")
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise DatasetError(f"{path}: manifest must be .jsonl, .csv, .xlsx or .xls")
    if suffix in (".jsonl", ".ndjson"):
        rows: list[tuple[int, dict[str, object] | str]] = []
        for n, line in enumerate(_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                rows.append((n, f"not valid JSON: {err.msg}"))
                continue
            rows.append((n, row if isinstance(row, dict) else "each line must be a JSON object"))
        keys = dict.fromkeys(str(k) for _, row in rows if isinstance(row, dict) for k in row)
        return list(keys), rows
    return _read_table(path)


def _check_columns(read: list[tuple[Path, list[str], bool]], columns: dict[str, str]) -> None:
    """Stop before the run when no manifest has a column the config maps, or a manifest has no column for the
    image: a mistyped ``dataset.columns`` entry would otherwise fail every row, one warning each. ``read``: each
    manifest's path, column names, and whether it has any row to check. One source may lack an optional mapped
    column that another has (``columns`` applies to them all)."""
    read = [r for r in read if r[2]]
    if not read:
        return
    for canonical, source in columns.items():
        if any(source in header or canonical in header for _, header, _ in read):
            continue
        header = list(dict.fromkeys(c for _, h, _ in read for c in h))
        where = ", ".join(str(path) for path, _, _ in read)
        close = difflib.get_close_matches(source, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        which = "this manifest does not have" if len(read) == 1 else "none of these manifests has"
        raise DatasetError(f"{where}: dataset.columns.{canonical} names the column {source!r}, which {which}{hint} "
                           f"(columns: {_listed(header)})")
    image = columns.get("image", "image")
    for path, header, _ in read:
        if image not in header and "image" not in header:
            raise DatasetError(f"{path}: no column {image!r} with the screenshot's file name (its columns: "
                               f"{_listed(header)}); name the column 'image', or map it: dataset.columns: "
                               "{image: <column>}")


def _listed(header: list[str]) -> str:
    return ", ".join(repr(c) for c in header) or "none"


def _mapped(raw: dict[str, object], columns: dict[str, str]) -> dict[str, object]:
    """The row under canonical field names: ``columns`` renames, ``tag:<key>`` columns become tags."""
    row = dict(raw)
    for canonical, source in columns.items():
        if source in row:
            row[canonical] = row.pop(source)
    tags = {k[4:].strip(): str(v) for k, v in row.items() if isinstance(k, str) and k.startswith("tag:")}
    if tags:
        row = {k: v for k, v in row.items() if not (isinstance(k, str) and k.startswith("tag:"))}
        base = row.get("tags")
        row["tags"] = {**tags, **(base if isinstance(base, dict) else {})} if not isinstance(base, str) else base
    return row


def _row_id(raw: dict[str, object] | str, n: int) -> str:
    """The id a manifest row is stored under: its own when usable, else ``row-N``."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool) and 0 < len(str(value).strip()) <= 200:
            return str(value).strip()
    return f"row-{n}"


def _source_items(source: ManifestSource, rows: list[tuple[int, dict[str, object] | str]], columns: dict[str, str],
                  asked: dict[str, int], first_row: dict[str, tuple[str, int]]) -> list[Item]:
    """One item per row of one manifest file; a row that cannot be used becomes a failed item naming the row."""
    manifest = Path(source.file)
    folder = Path(source.images) if source.images else None
    items: list[Item] = []
    for n, raw in rows:
        where = f"{manifest.name}: row {n}"
        if isinstance(raw, str):
            items.append(Item(_row_id(raw, n), "", error=f"{where}: {raw}"))
            continue
        raw = _mapped(raw, columns)
        try:
            row = ManifestRow.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(
                f"field {'.'.join(str(p) for p in e['loc']) or '(row)'}: {e['msg']}" for e in err.errors()
            )
            image = raw.get("image")
            items.append(Item(_row_id(raw, n), image if isinstance(image, str) else "", error=f"{where}: {problems}"))
            continue
        image = row.image if folder is None or row.image.startswith(("http://", "https://")) else \
            (folder / row.image).as_posix()
        item_id = row.id
        if item_id is None:  # named after its image; the k-th question of an image gets "#k"
            asked[image] = asked.get(image, 0) + 1
            stem = image.rsplit("/", 1)[-1]
            item_id = f"{stem}#{asked[image]}" if row.question is not None else Path(stem).stem
        if item_id in first_row:
            name, row_n = first_row[item_id]
            earlier = f"row {row_n}" if name == manifest.name else f"{name}: row {row_n}"
            items.append(Item(f"{item_id}@row-{n}", image, error=f"{where}: duplicate id {item_id!r} (first used "
                                                                 f"in {earlier}); this row is skipped"))
            continue
        first_row[item_id] = (manifest.name, n)
        items.append(Item(item_id, image, row.user_message, row.reference, row.facts, question=row.question,
                          answerable=row.answerable, tags={**source.tags, **row.tags}, fields=row.extra_fields()))
    return items


def _manifest_items(cfg: DatasetConfig) -> list[Item]:
    asked: dict[str, int] = {}
    first_row: dict[str, tuple[str, int]] = {}
    read = [(source, *_read_manifest(Path(source.file))) for source in cfg.manifest or []]
    _check_columns([(Path(source.file), header, any(isinstance(raw, dict) for _, raw in rows))
                    for source, header, rows in read], cfg.columns)
    items = [it for source, _, rows in read for it in _source_items(source, rows, cfg.columns, asked, first_row)]
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
    if cfg.manifest:
        items = _manifest_items(cfg)
    else:
        files = sorted(
            (p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        items = [Item(p.stem, p.name) for p in files]
    if not items:
        where = ", ".join(str(s.file) for s in cfg.manifest) if cfg.manifest else root
        raise DatasetError(f"{where}: the dataset has no items")
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
