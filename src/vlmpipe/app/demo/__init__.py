"""The bundled offline demo: synthetic Russian support screenshots, the OCR baseline as candidate — once for each
bundled task: screen annotation (``config.yaml`` → ``runs/demo``) and visual question answering
(``config-vqa.yaml`` → ``runs/demo-vqa``: two or three hand-written questions per screenshot, one of them
unanswerable from it)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from vlmpipe.app.demo.judge_env import apply_judge_env
from vlmpipe.core.config import RunConfig, config_from_dict


def demo_dir() -> Path:
    return Path(str(resources.files("vlmpipe").joinpath("app/demo")))


#: The demo's configs, one per bundled task, in the order they run.
CONFIGS = {"request": "config.yaml", "vqa": "config-vqa.yaml"}


def demo_config(out: Path | None = None, task: str = "request") -> RunConfig:
    """The demo config of ``task``, with its dataset inside the installed package and results under ``out``."""
    path = demo_dir() / CONFIGS[task]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = config_from_dict(data, source=str(path), base_dir=path.parent)
    cfg.output_dir = (out or Path("runs")).resolve()
    return apply_judge_env(cfg)
