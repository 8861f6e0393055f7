"""The bundled offline demo: synthetic Russian support screenshots, the OCR baseline as candidate."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from vlmpipe.app.demo.judge_env import apply_judge_env
from vlmpipe.core.config import RunConfig, config_from_dict


def demo_dir() -> Path:
    return Path(str(resources.files("vlmpipe").joinpath("app/demo")))


def demo_config(out: Path | None = None) -> RunConfig:
    """The demo config, with its dataset inside the installed package and results under ``out``."""
    path = demo_dir() / "config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = config_from_dict(data, source=str(path), base_dir=path.parent)
    cfg.output_dir = (out or Path("runs")).resolve()
    return apply_judge_env(cfg)
