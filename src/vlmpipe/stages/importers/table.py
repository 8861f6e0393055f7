"""Import generations from any table: CSV, XLSX or JSONL, with a column mapping.

Canonical columns (``--map canonical=source`` renames a source column; unmapped ones are taken by name):
``model`` and ``text`` are required; ``item`` (default: the row's ``image`` without its suffix, or
``row<N>``), ``image``, ``repeat`` (default: order within (model, item)), ``latency_s``, ``ttft_s``,
``error``, ``prompt_tokens``, ``completion_tokens``, ``reference`` (the first non-empty per item), ``facts``
(``;``-separated) are optional. Every other numeric column is kept as a ``recorded_<column>`` score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmpipe.stages.importers.common import (
    ImportDataError,
    ImportedGeneration,
    ImportedItem,
    clean_number,
    clean_text,
    find_image,
    write_run,
)

CANONICAL = ("model", "item", "image", "repeat", "text", "latency_s", "ttft_s", "error", "prompt_tokens",
             "completion_tokens", "reference", "facts")
REQUIRED = ("model", "text")


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["text=candidate", "model=model_name"]`` → ``{"text": "candidate", "model": "model_name"}``."""
    out: dict[str, str] = {}
    for p in pairs:
        if "=" not in p:
            raise ImportDataError(f"--map {p!r}: expected canonical=source, e.g. text=candidate")
        k, v = (s.strip() for s in p.split("=", 1))
        if k not in CANONICAL:
            raise ImportDataError(f"--map {p!r}: unknown column {k!r}; known: {', '.join(CANONICAL)}")
        if not v:
            raise ImportDataError(f"--map {p!r}: empty source column")
        out[k] = v
    return out


def read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise ImportDataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8-sig")
        if suffix in (".xlsx", ".xlsm"):
            return pd.read_excel(path, dtype=object, engine="openpyxl")
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
    except Exception as err:
        raise ImportDataError(f"{path}: cannot read: {err}") from None
    raise ImportDataError(f"{path}: unsupported table format {suffix!r} (use .csv, .xlsx or .jsonl)")


def import_table(path: Path, out: Path, *, mapping: dict[str, str] | None = None, images: Path | None = None) -> Path:
    """Import one table of generations into the run directory ``out``."""
    path = Path(path)
    if images is not None and not Path(images).is_dir():
        raise ImportDataError(f"{images}: images folder not found")
    df = read_table(path)
    mapping = mapping or {}
    cols = {c: mapping.get(c, c) for c in CANONICAL}
    absent = [f"{c} (from column {cols[c]!r})" for c in REQUIRED if cols[c] not in df.columns]
    bad_map = [f"{k}={v}" for k, v in mapping.items() if v not in df.columns]
    if absent or bad_map:
        problems = "; ".join(filter(None, [absent and f"required column(s) missing: {', '.join(absent)}",
                                           bad_map and f"mapped column(s) not in the file: {', '.join(bad_map)}"]))
        raise ImportDataError(f"{path}: {problems}. Columns in the file: {list(df.columns)}. "
                           "Map them with --map canonical=source, e.g. --map text=candidate")
    used = {v for k, v in cols.items() if v in df.columns}
    extra = [c for c in df.columns if c not in used]

    def get(row: Any, name: str) -> Any:
        src = cols[name]
        return row[src] if src in df.columns else None

    counters: dict[tuple[str, str], int] = {}
    gens: list[ImportedGeneration] = []
    item_info: dict[str, dict[str, Any]] = {}
    for n, (_, row) in enumerate(df.iterrows(), start=1):
        model = clean_text(get(row, "model"))
        if not model or not model.strip():
            raise ImportDataError(f"{path}: row {n}: empty model")
        image = clean_text(get(row, "image")) or None
        item = clean_text(get(row, "item")) or (Path(image).stem if image else f"row{n}")
        rep_value = clean_number(get(row, "repeat"))
        rep = int(rep_value) if rep_value is not None else counters.get((model, item), 0)
        counters[(model, item)] = max(counters.get((model, item), 0), rep + 1)
        info = item_info.setdefault(item, {"image": image, "reference": None, "facts": []})
        info["image"] = info["image"] or image
        ref = clean_text(get(row, "reference"))
        if ref and not info["reference"]:
            info["reference"] = ref
        facts = clean_text(get(row, "facts"))
        if facts and not info["facts"]:
            info["facts"] = [f.strip() for f in facts.split(";") if f.strip()]
        text = clean_text(get(row, "text"))
        error = clean_text(get(row, "error")) or None
        if text is None and error is None:
            error = "no text recorded"
        recorded = {f"recorded_{c}": (clean_number(row[c]), None) for c in extra if clean_number(row[c]) is not None}
        tokens = [clean_number(get(row, c)) for c in ("prompt_tokens", "completion_tokens")]
        gens.append(ImportedGeneration(
            model=model.strip(), item=item, repeat=rep, text=text, error=error,
            latency_s=clean_number(get(row, "latency_s")), ttft_s=clean_number(get(row, "ttft_s")),
            prompt_tokens=None if tokens[0] is None else int(tokens[0]),
            completion_tokens=None if tokens[1] is None else int(tokens[1]), recorded=recorded,
        ))
    keys = [(g.model, g.item, g.repeat) for g in gens]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ImportDataError(f"{path}: (model, item, repeat) {dup} occurs twice")
    items = [ImportedItem(i, find_image(images, i, v["image"]), v["reference"], v["facts"])
             for i, v in item_info.items()]
    write_run(out, items, gens, images=images, source=f"table:{path.resolve()}",
              notes=[f"imported from {path}"])
    return Path(out)
