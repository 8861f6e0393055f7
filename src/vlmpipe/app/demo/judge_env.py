"""The judge (and optionally the reference model) for the demo, from environment variables.

* ``VLMPIPE_JUDGE_BASE_URL`` + ``VLMPIPE_JUDGE_MODEL``: any OpenAI-compatible endpoint; the key, if any, is read
  from ``OPENAI_API_KEY`` (or the variable named by ``VLMPIPE_JUDGE_API_KEY_ENV``).
* only ``OPENAI_API_KEY``: ``gpt-4o-mini`` at ``https://api.openai.com/v1``.
* ``VLMPIPE_REFERENCE_MODEL`` (optional, same endpoint): generate the references with that model instead of
  using the dataset's.
Only the *name* of the key variable is put in the config; its value never leaves the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vlmpipe.core.config import ReferenceConfig, RunConfig
from vlmpipe.providers.openai_spec import OpenAISpec

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_JUDGE = "gpt-4o-mini"
DEMO_HINT = ("for the demo, export VLMPIPE_JUDGE_BASE_URL and VLMPIPE_JUDGE_MODEL (any OpenAI-compatible endpoint; "
             "key in OPENAI_API_KEY if it needs one), or only OPENAI_API_KEY (gpt-4o-mini at api.openai.com), then "
             "run `vlmpipe demo` again")


def judge_spec_from_env(environ: Mapping[str, str] | None = None) -> OpenAISpec | None:
    env = os.environ if environ is None else environ
    key_env = env.get("VLMPIPE_JUDGE_API_KEY_ENV") or "OPENAI_API_KEY"
    has_key = bool(env.get(key_env))
    base_url, model = env.get("VLMPIPE_JUDGE_BASE_URL"), env.get("VLMPIPE_JUDGE_MODEL")
    if base_url and model:
        return OpenAISpec(name=f"judge:{model}", model=model, base_url=base_url,
                          api_key_env=key_env if has_key else None, temperature=0.0, max_tokens=600, stream=False)
    if env.get("OPENAI_API_KEY"):
        return OpenAISpec(name=f"judge:{OPENAI_JUDGE}", model=OPENAI_JUDGE, base_url=OPENAI_BASE_URL,
                          api_key_env="OPENAI_API_KEY", temperature=0.0, max_tokens=600, stream=False)
    return None


def apply_judge_env(cfg: RunConfig, environ: Mapping[str, str] | None = None) -> RunConfig:
    """Enable the judge (and a reference model when asked) on ``cfg`` when the environment names an endpoint."""
    env = os.environ if environ is None else environ
    spec = judge_spec_from_env(env)
    if spec is None:
        return cfg
    cfg.judge.enabled = True
    cfg.judge.model = spec
    ref_model = env.get("VLMPIPE_REFERENCE_MODEL")
    if ref_model:
        ref = spec.model_copy(update={"name": f"reference:{ref_model}", "model": ref_model, "temperature": 0.1,
                                      "max_tokens": 512})
        cfg.references = ReferenceConfig(source="model", model=ref, samples=1)
    return cfg
