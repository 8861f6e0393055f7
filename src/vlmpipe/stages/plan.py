"""The plan: which generations a config asks for, each with the key that identifies what produced it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from vlmpipe.core.config import ModelSpec, RunConfig


@dataclass(frozen=True)
class PlannedGeneration:
    key: str
    model: str
    role: str
    item: str
    repeat: int


def generation_key(spec: ModelSpec, cfg: RunConfig, item: str, image_sha: str | None, user_message: str,
                   repeat: int) -> str:
    """Hash of model, item, repeat, image bytes, prompt and sampling parameters."""
    payload = json.dumps(
        {
            "model": spec.name,
            "sampling": spec.sampling_signature(),
            "item": item,
            "image": image_sha,
            "system_prompt": cfg.system_prompt or "",
            "user_message": user_message,
            "repeat": repeat,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def candidate_models(cfg: RunConfig) -> list[tuple[ModelSpec, str, int]]:
    """``(spec, role, repeats)`` of every model that generates: candidates, then the reference model."""
    out = [(m, "candidate", cfg.repeats) for m in cfg.models]
    if cfg.references.source == "model" and cfg.references.model is not None:
        out.append((cfg.references.model, "reference", cfg.references.samples))
    return out


def make_plan(cfg: RunConfig, items: list[dict[str, object]]) -> list[PlannedGeneration]:
    plan = []
    for spec, role, repeats in candidate_models(cfg):
        for item in items:
            for rep in range(repeats):
                key = generation_key(spec, cfg, str(item["id"]), item.get("image_sha"),  # type: ignore[arg-type]
                                     str(item.get("user_message") or cfg.user_message or ""), rep)
                plan.append(PlannedGeneration(key, spec.name, role, str(item["id"]), rep))
    return plan
