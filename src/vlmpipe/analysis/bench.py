"""summary.json's ``bench`` section: what ``vlmpipe bench`` measured, from the store."""

from __future__ import annotations

from typing import Any

from vlmpipe.core.store import Store

#: Per-model facts stored with every level; the section keeps them once per model.
MODEL_KEYS = ("prefix_caching", "prefix_caching_source", "server_error")


def bench_section(store: Store) -> dict[str, Any] | None:
    """``{"settings", "models": {model: {"levels": {concurrency: figures}, ...}}}``; ``None`` when no bench ran."""
    rows = store.bench_results()
    if not rows:
        return None
    models: dict[str, Any] = {}
    for model, level, data in rows:
        entry = models.setdefault(model, {"levels": {}})
        for key in MODEL_KEYS:
            if key in data:
                entry[key] = data.pop(key)
        entry["levels"][str(level)] = data
    for entry in models.values():
        entry["levels"] = dict(sorted(entry["levels"].items(), key=lambda kv: int(kv[0])))
    return {"settings": store.get_meta("bench_settings", {}), "models": models}
