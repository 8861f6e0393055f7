"""API keys named in a config must be set before a stage sends anything.

A model spec's ``api_key_env`` names an environment variable. When that variable is unset (or empty), every
request would go out without a key and fail with HTTP 401 after the run has spent its time; instead the stage
does not start, and the message names the variable, the config field and what to do. Only names are handled
here, never values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vlmpipe.core.config import ConfigError, ModelSpec, RunConfig


def _missing(field: str, spec: ModelSpec | None, env: Mapping[str, str]) -> str | None:
    if spec is None or spec.provider != "openai" or not spec.api_key_env or env.get(spec.api_key_env):
        return None
    return f"{field}.api_key_env ({spec.name}): the environment variable {spec.api_key_env} is not set"


def require_api_keys(cfg: RunConfig, *, generate: bool = True, references: bool | None = None,
                     judge: bool | None = None, source: str = "config",
                     environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` when a key variable of a model the stage will call is unset or empty.

    ``generate``: the candidates; ``references`` (default: as ``generate``): the reference model, with
    ``references.source: model``; ``judge``: the judge model (default: when ``judge.enabled``); ``source``: the
    config file, for the message.
    """
    env = os.environ if environ is None else environ
    found: list[str | None] = []
    if generate:
        found += [_missing(f"models.{i}", spec, env) for i, spec in enumerate(cfg.models)]
    if (generate if references is None else references) and cfg.references.source == "model":
        found.append(_missing("references.model", cfg.references.model, env))
    if cfg.judge.enabled if judge is None else judge:
        found.append(_missing("judge.model", cfg.judge.model, env))
    problems = [p for p in found if p]
    if problems:
        hint = ("export the variable(s) before running, or remove api_key_env for a server that needs no key "
                "(the config holds the variable's name, never the key)")
        raise ConfigError("\n".join([*(f"{source}: {p}" for p in problems), hint]))
