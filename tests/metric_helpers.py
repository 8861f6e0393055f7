"""Small builders for metric tests: a config, a scoring context, generation rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmpipe.core.config import RunConfig, config_from_dict
from vlmpipe.metrics.base import ScoreContext


def make_cfg(tmp: Path, **metrics: Any) -> RunConfig:
    return config_from_dict({"dataset": {"path": str(tmp)}, "models": [{"name": "m"}], "metrics": metrics},
                            base_dir=tmp)


def make_ctx(tmp: Path, items: dict[str, dict[str, Any]] | None = None, **metrics: Any) -> ScoreContext:
    full = {k: {"id": k, "image": f"{k}.png", "reference": None, "facts": [], "ocr_text": None, **v}
            for k, v in (items or {}).items()}
    return ScoreContext(cfg=make_cfg(tmp, **metrics), items=full)


def rows(*texts: str, item: str = "a") -> list[dict[str, Any]]:
    return [{"key": f"k{i}", "item": item, "text": t} for i, t in enumerate(texts)]
