"""The run configuration: one YAML file, validated up front by pydantic.

Errors name the file and the field (``config.yaml: models.0.temperature: Input should be a valid number``).
Relative paths are resolved against the directory of the config file. A model entry (``models[i]``,
``references.model``, ``judge.model``) is validated by its provider's spec class (:mod:`vlmpipe.core.modelspec`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vlmpipe.core.modelspec import DEFAULT_PROVIDER, AnyModelSpec, ModelSpec

__all__ = ["ConfigError", "LaunchSpec", "ModelSpec", "RunConfig", "config_from_dict", "load_config"]


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaunchSpec(_Strict):
    """How vlmpipe starts a server for a model (see docs/serving.md).

    ``engine: vllm`` builds ``vllm serve MODEL --host HOST --port PORT`` plus the named arguments and ``args``;
    ``engine: command`` (implied by ``command``) runs any command line, with ``{port}``, ``{host}`` and
    ``{model}`` replaced in its arguments (SGLang, llama.cpp server, ...). The YAML shorthand ``launch: vllm``
    means ``{engine: vllm}``. ``env`` is added to the inherited environment (e.g. ``CUDA_VISIBLE_DEVICES``); it
    is saved with the run's config, so keep secrets out of it (the server inherits vlmpipe's environment).
    """

    engine: Literal["vllm", "command"] = "vllm"
    command: list[str] | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, description="What the server loads (default: the spec's model).")
    executable: str = Field(default="vllm", description="The vLLM command (engine vllm).")
    quantization: str | None = None
    dtype: str | None = None
    max_model_len: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    tensor_parallel_size: int | None = Field(default=None, gt=0)
    limit_mm_per_prompt: dict[str, int] | str | None = None
    enable_prefix_caching: bool | None = Field(default=None, description="None: the engine's default.")
    args: list[str] = Field(default_factory=list, description="Extra command-line arguments, appended.")
    env: dict[str, str] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, gt=0, lt=65536, description="Default: a free port.")
    health_path: str = "/health"
    models_path: str = "/v1/models"
    api_path: str = "/v1"
    ready_timeout_s: float = Field(default=900.0, gt=0, description="Loading a 7B model can take minutes.")
    poll_interval_s: float = Field(default=0.25, gt=0)
    stop_timeout_s: float = Field(default=30.0, ge=0, description="Wait after SIGTERM before SIGKILL.")

    @model_validator(mode="before")
    @classmethod
    def _engine(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"engine": data}
        if isinstance(data, dict) and data.get("command") is not None and "engine" not in data:
            return {**data, "engine": "command"}
        return data

    @model_validator(mode="after")
    def _command_needed(self) -> LaunchSpec:
        if self.engine == "command" and not self.command:
            raise ValueError("launch.engine is 'command' but launch.command is not set")
        return self


class ManifestSource(_Strict):
    """One manifest file, with the folder (inside ``dataset.path``) its images are in and tags for all its rows."""

    file: Path
    images: Path | None = Field(default=None, description="Folder of this file's images, inside dataset.path.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags of every row, e.g. {device: phone}.")

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, data: Any) -> Any:
        return {"file": data} if isinstance(data, str | Path) else data


class DatasetConfig(_Strict):
    path: Path = Field(description="Folder of screenshots.")
    manifest: list[ManifestSource] | None = Field(
        default=None, description="CSV, JSONL, XLSX or XLS with id, image, reference, facts, question, tags...; a "
                                  "path, or a list of files with their own image folder and tags.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Manifest column names: {field: column}, e.g. {question: Question}.")
    max_side: int | None = Field(default=None, gt=0, description="Downscale images whose longer side exceeds it.")
    limit: int | None = Field(default=None, gt=0, description="Use only the first N items.")

    @field_validator("manifest", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | Path | dict) else value


class ReferenceConfig(_Strict):
    source: Literal["dataset", "model", "none"] = "dataset"
    model: AnyModelSpec | None = None
    samples: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _model_needed(self) -> ReferenceConfig:
        if self.source == "model" and self.model is None:
            raise ValueError("references.source is 'model' but references.model is not set")
        return self


class JudgeConfig(_Strict):
    enabled: bool = False
    model: AnyModelSpec | None = None
    panel: list[AnyModelSpec] | None = Field(
        default=None, min_length=1, description="Several judges: each grades every judgement (instead of model); the "
                                                "headline ratio is the panel's mean (docs/judge.md).")
    dedupe: bool | None = Field(
        default=None, description="Send identical judge requests once and reuse the answer. None: on when every "
                                  "judge's temperature is 0 (at > 0 sampling noise is part of the measurement).")
    mode: Literal["both", "random", "single"] | None = Field(
        default=None, description="pairwise tasks: both (default) or random order; graded tasks (vqa): single "
                                  "(default) or both (also grade the human answer). None: the task's default.")
    seed: int = 0
    image_detail: Literal["auto", "low", "high"] = "auto"
    max_attempts: int = Field(default=3, ge=1)
    max_cost: float | None = Field(default=None, ge=0)
    limit: int | None = Field(default=None, ge=0)
    prices: dict[str, float] = Field(default_factory=dict, description="USD per 1M tokens: prompt, completion.")
    template_dir: Path | None = None

    @field_validator("model")
    @classmethod
    def _model_can_judge(cls, model: ModelSpec | None) -> ModelSpec | None:
        if model is not None and not model.can_judge:
            raise ValueError(f"provider {model.provider!r} cannot be the judge: the judge is asked over an "
                             f"OpenAI-compatible chat API (e.g. provider: {DEFAULT_PROVIDER})")
        return model

    @field_validator("panel")
    @classmethod
    def _panel_can_judge(cls, panel: list[ModelSpec] | None) -> list[ModelSpec] | None:
        names: set[str] = set()
        for i, model in enumerate(panel or []):
            if not model.can_judge:
                raise ValueError(f"panel.{i}: provider {model.provider!r} cannot be a judge: judges are asked over "
                                 f"an OpenAI-compatible chat API (e.g. provider: {DEFAULT_PROVIDER})")
            if model.name in names:
                raise ValueError(f"panel.{i}: judge name {model.name!r} is used twice; names must be unique")
            names.add(model.name)
        return panel

    @model_validator(mode="after")
    def _model_needed(self) -> JudgeConfig:
        if self.model is not None and self.panel is not None:
            raise ValueError("judge.model and judge.panel are both set: give one judge as judge.model, or several "
                             "as judge.panel")
        if self.enabled and self.model is None and self.panel is None:
            raise ValueError("judge.enabled is true but judge.model is not set (or judge.panel)")
        return self

    @property
    def judges(self) -> list[ModelSpec]:
        """The judges: ``[model]``, or the panel's; empty when none is set."""
        if self.panel is not None:
            return list(self.panel)
        return [self.model] if self.model is not None else []

    @property
    def is_panel(self) -> bool:
        """More than one judge (a panel of one is today's single judge)."""
        return len(self.judges) > 1


class MetricsConfig(_Strict):
    """Which metrics to compute and their settings; unknown metrics are an error."""

    enabled: list[str] | None = Field(default=None, description="Metric names; default: every available one.")
    expected_language: str = "ru"
    languages: list[str] = Field(default_factory=lambda: ["ru", "en", "uk", "be", "kk"])
    min_language_chars: int = Field(default=20, ge=1)
    spelling_allow: list[str] = Field(default_factory=lambda: ["СБП", "Ozon", "юрлицо"])
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-metric options.")


class RunConfig(_Strict):
    name: str = Field(default="run", pattern=r"^[A-Za-z0-9._-]+$")
    output_dir: Path = Path("runs")
    dataset: DatasetConfig
    task: str = Field(default="request", pattern=r"^[A-Za-z0-9_.-]+$",
                      description="What the models do: request (screen annotation) or vqa (docs/tasks.md).")
    system_prompt: str | None = Field(default=None, description="The instruction; default: the task's.")
    user_message: str | None = Field(default=None, description="A template over item fields, e.g. '{question}'; "
                                                               "default: the task's.")
    models: list[AnyModelSpec] = Field(min_length=1)
    repeats: int = Field(default=5, ge=1)
    concurrency: int = Field(default=1, ge=1)
    max_run_time_s: float | None = Field(
        default=None, gt=0, description="Stop generating after this long; what is done is stored and reported.")
    seed: int = 0
    cache: bool = Field(
        default=False, description="Send identical generation requests once: the reference model's, and every "
                                   "model's at temperature 0 (its repeats then reuse the first answer).")
    references: ReferenceConfig = Field(default_factory=ReferenceConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    serving: dict[str, Any] = Field(
        default_factory=dict, description="Unused; kept so that configs saved by earlier versions still load.")

    @field_validator("serving")
    @classmethod
    def _serving_is_per_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            raise ValueError("a top-level serving section is not read: how a model is served goes in its own "
                             "models[i].launch (docs/serving.md)")
        return value

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        seen: set[str] = set()
        for m in models:
            if m.name in seen:
                raise ValueError(f"model name {m.name!r} is used twice; names must be unique")
            seen.add(m.name)
        return models

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def prompt_signature(self) -> str:
        """A short hash of the prompt: the instruction and the user message."""
        payload = json.dumps([self.system_prompt or "", self.user_message or ""], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def public_dict(self) -> dict[str, Any]:
        """The resolved config as saved beside the run. Holds names of key variables, never their values."""
        return json.loads(self.model_dump_json())


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid config ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README for the fields)"
        lines.append(f"  {source}: {loc}: {msg}")
    return "\n".join(lines)


def _resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    def fix(p: Path | None) -> Path | None:
        if p is None or p.is_absolute():
            return p
        return (base / p).resolve()

    cfg.dataset.path = fix(cfg.dataset.path)  # type: ignore[assignment]
    for source in cfg.dataset.manifest or []:
        source.file = fix(source.file)  # type: ignore[assignment]
    cfg.output_dir = fix(cfg.output_dir)  # type: ignore[assignment]
    cfg.judge.template_dir = fix(cfg.judge.template_dir)
    return cfg


def config_from_dict(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None
    return _resolve_paths(cfg, base_dir or Path.cwd())


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML config; relative paths are taken from the config's folder."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    except UnicodeDecodeError as err:  # e.g. saved as Windows-1251
        raise ConfigError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start}); save the file as UTF-8") from None
    return config_from_dict(data, source=str(p), base_dir=p.resolve().parent)
