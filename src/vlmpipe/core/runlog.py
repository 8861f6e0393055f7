"""The run's log file, ``logs/run.log`` in the run directory, with secrets masked.

Everything the ``vlmpipe`` loggers say at WARNING and above while a run is in progress goes there too, passed
through :func:`vlmpipe.core.redact.redact` with the values of every key variable the config names, so that no
log line can carry a key even when a server echoes it back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlmpipe.core.config import RunConfig
from vlmpipe.core.redact import redact


def config_secrets(cfg: RunConfig) -> list[str]:
    """Values of the key variables (``api_key_env``, ``ModelSpec.key_env_vars``) named anywhere in the config."""
    specs = [*cfg.models, cfg.references.model, *cfg.judge.judges]
    names = {var for s in specs if s is not None for var in s.key_env_vars().values()}
    return [v for v in (os.environ.get(n, "") for n in sorted(names)) if v]


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


@contextmanager
def run_log(cfg: RunConfig, run_dir: Path, level: int = logging.WARNING) -> Iterator[Path]:
    path = Path(run_dir) / "logs" / "run.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(RedactingFormatter(config_secrets(cfg)))
    logger = logging.getLogger("vlmpipe")
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
