"""A run directory: its saved config (``config.yaml``) and its store (``run.sqlite``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from vlmpipe.core.config import ConfigError, RunConfig, load_config
from vlmpipe.core.folders import why_not_written
from vlmpipe.core.store import Store


def open_store(run_dir: Path) -> Store:
    """The run's store; a file that is not a SQLite database is a :class:`ConfigError`, not a traceback."""
    path = Path(run_dir) / "run.sqlite"
    try:
        return Store(path)
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path}: cannot be read as the run's store ({err}); restore it, or start the run "
                          "in a new folder") from None


def existing_store(run_dir: str | Path) -> Store:
    """The store of a run that exists (score, judge, report); a folder without ``run.sqlite`` is a
    :class:`ConfigError` instead of a new, empty store left in it."""
    path = Path(run_dir) / "run.sqlite"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; {run_dir} is not a run directory (make one with `vlmpipe run CONFIG` "
                          "or `vlmpipe import`)")
    return open_store(Path(run_dir))


def save_config(cfg: RunConfig, run_dir: Path, *, source: str = "config") -> None:
    """The resolved config beside the run: names of key variables, never their values.

    A run directory that cannot be created or written (a file in the way, no permission) is a
    :class:`ConfigError` naming ``output_dir``, not a traceback."""
    text = yaml.safe_dump(cfg.public_dict(), allow_unicode=True, sort_keys=False)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(text, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{source}: output_dir: cannot write the run directory {run_dir}: "
                          f"{why_not_written(run_dir, err)}") from None


def load_run_config(run_dir: str | Path) -> RunConfig:
    return load_config(Path(run_dir) / "config.yaml")
