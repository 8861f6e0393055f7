"""API keys named in a config must be set before a stage sends anything.

A model spec names the environment variables holding its secrets (``ModelSpec.key_env_vars``: the ``openai``
provider's ``api_key_env``; a plugin's own fields). When one is unset (or empty), every request would go out
without a key and fail with HTTP 401 after the run has spent its time; instead the stage does not start, and the
message names the variable, the config field and what to do. Only names are handled here, never values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vlmpipe.core.config import ConfigError, ModelSpec, RunConfig


def _missing(field: str, spec: ModelSpec | None, env: Mapping[str, str]) -> list[str]:
    if spec is None:
        return []
    return [f"{field}.{key} ({spec.name}): the environment variable {var} is not set"
            for key, var in spec.key_env_vars().items() if not env.get(var)]


def require_api_keys(cfg: RunConfig, *, generate: bool = True, references: bool | None = None,
                     judge: bool | None = None, source: str = "config",
                     environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` when a key variable of a model the stage will call is unset or empty.

    ``generate``: the candidates; ``references`` (default: as ``generate``): the reference model, with
    ``references.source: model``; ``judge``: the judge model (default: when ``judge.enabled``); ``source``: the
    config file, for the message.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    if generate:
        for i, spec in enumerate(cfg.models):
            problems += _missing(f"models.{i}", spec, env)
    if (generate if references is None else references) and cfg.references.source == "model":
        problems += _missing("references.model", cfg.references.model, env)
    if cfg.judge.enabled if judge is None else judge:
        if cfg.judge.panel is not None:
            for i, spec in enumerate(cfg.judge.panel):
                problems += _missing(f"judge.panel.{i}", spec, env)
        else:
            problems += _missing("judge.model", cfg.judge.model, env)
    if problems:
        hint = ("export the variable(s) before running, or remove api_key_env for a server that needs no key "
                "(the config holds the variable's name, never the key)")
        raise ConfigError("\n".join([*(f"{source}: {p}" for p in problems), hint]))
