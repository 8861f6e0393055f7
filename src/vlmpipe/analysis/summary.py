"""The typed run summary: what ``report/summary.json`` holds, as pydantic models.

Built in one place (:func:`vlmpipe.analysis.aggregate.build_summary`); the report, ``compare``, ``findings`` and
``bench`` read these models, never raw dicts. Every key of schema 1 (DESIGN.md) keeps its name, place and meaning;
what this round added are additions: ``models.<m>.fields`` (every aggregated figure with its 95% intervals, ``n``
and why it is missing), metric ``pairwise`` differences beside the judge's, ``slices``. Unknown keys are kept
(``extra="allow"``) so that summaries written by other versions still read. Its JSON Schema is
``docs/summary.schema.json`` (:func:`json_schema`; a test keeps the file in sync).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from vlmpipe.analysis.catalogue import quality_fields
from vlmpipe.core.fields import SummaryField, catalogue
from vlmpipe.metrics import REGISTRY

SCHEMA_VERSION = 1


class _Open(BaseModel):
    """Known keys typed; unknown ones kept (summaries of other versions, plugin fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FieldValue(_Open):
    """One aggregated figure of one model: its value, 95% intervals, how many values and screenshots it is over,
    and why it is missing when it is."""

    value: float | None = None
    ci95: list[float] | None = Field(None, description="cluster bootstrap over screenshots (the honest interval)")
    ci95_naive: list[float] | None = Field(None, description="mean ± 1.96·sd/√n, as if every value were independent")
    n: int = Field(0, description="values aggregated (generations, or screenshots for per-screenshot figures)")
    n_items: int = Field(0, description="screenshots those values come from")
    unavailable: str | None = None


class Distribution(_Open):
    mean: float
    p50: float
    p95: float
    max: float


class JudgeBlock(_Open):
    """``models.<m>.judge`` (docs/judge.md)."""

    ratio_mean: float | None = None
    ratio_ci95_naive: list[float] | None = None
    ratio_ci95: list[float] | None = None
    ratio_ci95_method: str | None = None
    candidate_score_mean: float | None = None
    reference_score_mean: float | None = None
    win_rate: float | None = None
    tie_rate: float | None = None
    loss_rate: float | None = None
    n: int = 0
    n_failed: int = 0
    n_pending: int = 0
    n_reference_zero: int = 0
    n_items: int = 0
    position_consistency: float | None = None
    first_position_preference: float | None = None
    first_position_bonus: float | None = None
    mode: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    requests_sent: int | None = Field(
        None, description="judge requests sent for this model's judgements (re-asks of malformed answers included)")
    requests_reused: int | None = Field(
        None, description="judgements that reused the stored answer to an identical request instead of sending it")
    panel: dict[str, JudgeBlock] | None = Field(
        None, description="a judge panel: each judge's own block (ratio, intervals, position consistency...); "
                          "absent with a single judge")


class AgreementPair(_Open):
    """Two judges of a panel: how alike they score judgements, and rank the models."""

    a: str
    b: str
    n: int = Field(0, description="judgements both judges scored")
    spearman: float | None = Field(None, description="Spearman correlation of their per-judgement ratios")
    ranking_kendall_tau: float | None = Field(
        None, description="Kendall τ-b between their per-model ratios (1: the same ranking, −1: reversed)")
    n_models: int = 0


class JudgeAgreement(_Open):
    """``judge_status.agreement``: agreement between the judges of a panel (docs/judge.md)."""

    judges: list[str] = Field(default_factory=list)
    score: str | None = Field(None, description="what a judge's per-judgement score is")
    n: int = Field(0, description="judgements scored by at least two judges")
    n_items: int = Field(0, description="screenshots those judgements are about")
    pairs: list[AgreementPair] = Field(default_factory=list)
    krippendorff_alpha: float | None = Field(None, description="Krippendorff's alpha, interval metric")
    krippendorff_alpha_ci95: list[float] | None = Field(None, description="cluster bootstrap over screenshots")
    krippendorff_alpha_method: str | None = None
    ranking: dict[str, list[str]] = Field(default_factory=dict, description="{judge: models, best first}")
    same_ranking: bool | None = Field(None, description="every judge ranks the models in the same order")


class InjectionCase(_Open):
    item: str
    repeat: int
    phrase: str
    candidate_score: float | None = None
    flagged: bool = False


class InjectionBlock(_Open):
    suspected: int = 0
    flagged: int = 0
    score_fence: float | None = None
    items: list[InjectionCase] = Field(default_factory=list)


class _ModelSummaryBase(_Open):
    role: str = "candidate"
    n: int = 0
    n_errors: int = 0
    error_rate: float | None = None
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    latency_s: Distribution | None = None
    ttft_s: Distribution | None = None
    consistency_mean: float | None = None
    distinct_answer_rate: float | None = None
    within_item_std: dict[str, float] | None = None
    failed: str | None = Field(None, description="why the model's server was given up")
    concurrency_min: int | None = None
    rate_limit_backoffs: int | None = None
    gpu_memory_gb_peak: float | None = None
    gpu_memory_gb_mean: float | None = None
    server_kv_cache_usage_peak: float | None = None
    judge: JudgeBlock | None = None
    injection: InjectionBlock | None = None
    fields: dict[str, FieldValue] = Field(default_factory=dict, description="every aggregated figure with intervals")
    unavailable: dict[str, str] = Field(default_factory=dict)

    def value(self, key: str) -> float | None:
        """The number at a dotted ``key`` (``chrf_mean``, ``latency_s.p50``, ``judge.ratio_mean``), else ``None``."""
        cur: Any = self
        for part in key.split("."):
            if isinstance(cur, BaseModel):
                cur = getattr(cur, part, None) if part in type(cur).model_fields else (cur.model_extra or {}).get(part)
            elif isinstance(cur, dict):
                cur = cur.get(part)
            else:
                return None
        return number(cur)

    def field(self, key: str) -> FieldValue | None:
        return self.fields.get(key)

    def interval(self, key: str, *, naive: bool = False) -> tuple[float, float] | None:
        """A field's 95% interval (cluster bootstrap; ``naive=True``: mean ± 1.96·sd/√n)."""
        fv = self.fields.get(key)
        ci = (fv.ci95_naive if naive else fv.ci95) if fv else None
        if ci is None and key == "judge.ratio_mean" and self.judge is not None:  # summaries without ``fields``
            ci = self.judge.ratio_ci95_naive if naive else self.judge.ratio_ci95
        if ci is None or len(ci) != 2 or any(number(x) is None for x in ci):
            return None
        return float(ci[0]), float(ci[1])

    def why_missing(self, key: str) -> str | None:
        fv = self.fields.get(key)
        return self.unavailable.get(key) or (fv.unavailable if fv else None)


def _flat_metric_fields() -> dict[str, Any]:
    """The metrics' flat fields (``chrf_mean``...) and info keys (``perplexity_scorer``...), typed."""
    out: dict[str, Any] = {}
    for f in catalogue():
        if "." not in f.key and f.key not in _ModelSummaryBase.model_fields:
            out[f.key] = (float | None, Field(None, description=f"{f.label}: {f.description}".rstrip(": ")))
    for cls in REGISTRY.values():
        for key in cls.info_keys:
            out[key] = (str | None, Field(None, description=f"which scorer made {cls.name}"))
    return out


ModelSummary = create_model("ModelSummary", __base__=_ModelSummaryBase, **_flat_metric_fields())


class RunInfo(_Open):
    name: str
    task: str = Field("request", description="what the models do: request (screen annotation), vqa, or a plugin's")
    items: int
    items_failed: int = 0
    screenshots: int | None = Field(None, description="distinct screenshots (a screenshot may carry several items)")
    repeats: int
    prompt_hash: str | None = None
    stopped: str | None = None


class PairwiseEntry(_Open):
    """Mean(a) − mean(b) of one field over the screenshots both models have, resampled jointly."""

    a: str
    b: str
    metric: str
    diff: float
    ci95: list[float] | None = None
    p_a_better: float | None = None
    n_items: int | None = None
    separable: bool | None = Field(None, description="the interval of the difference excludes 0")


class JudgeStatus(_Open):
    configured: bool = False
    state: str = "not_configured"
    mode: str | None = None
    judge_model: str | None = None
    templates: str | None = None
    n_failed: int = 0
    cost_usd: float | None = None
    message: str = ""
    kind: str | None = Field(None, description="pairwise (candidate vs reference) or graded (score / 10)")
    human_answer_score_mean: float | None = Field(
        None, description="graded tasks in mode both: the judge's mean score of the human answers (10 = perfect)")
    n_human_graded: int | None = None
    cost_saved_usd: float | None = Field(
        None, description="what the judgements that reused a stored answer to an identical request would have cost")
    requests_sent: int | None = Field(None, description="judge requests sent (re-asks of malformed answers included)")
    requests_reused: int | None = Field(None, description="judgements answered by a stored answer, not sent")
    judges: list[str] | None = Field(None, description="a judge panel's judges; absent with a single judge")
    agreement: JudgeAgreement | None = Field(None, description="a judge panel's agreement; absent with one judge")


class Percentiles(_Open):
    mean: float
    p50: float
    p95: float
    p99: float


class BenchLevel(_Open):
    """One concurrency level of ``vlmpipe bench`` (docs/serving.md has the definitions)."""

    concurrency: int
    requests: int | None = None
    completed: int | None = None
    errors: int | None = None
    error_rate: float | None = None
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    freezes: int | None = None
    duration_s: float | None = None
    request_throughput: float | None = None
    output_tokens: int | None = None
    output_tokens_per_s: float | None = None
    tokens_source: str | None = None
    ttft_s: Percentiles | None = None
    tpot_s: Percentiles | None = None
    itl_s: Percentiles | None = None
    e2e_latency_s: Percentiles | None = None
    gpu_memory_gb_peak: float | None = None
    error: str | None = Field(None, description="the server failed: no request was sent at this level")


class BenchModel(_Open):
    levels: dict[str, BenchLevel] = Field(default_factory=dict)
    prefix_caching: str | None = None
    prefix_caching_source: str | None = None
    server_error: str | None = None


class BenchSection(_Open):
    settings: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, BenchModel] = Field(default_factory=dict)


class Finding(_Open):
    kind: str
    text: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class RunSummary(_Open):
    """``report/summary.json``."""

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    run: RunInfo
    models: dict[str, ModelSummary] = Field(default_factory=dict)  # type: ignore[valid-type]
    judge_status: JudgeStatus | None = None
    pairwise: dict[str, list[PairwiseEntry]] = Field(
        default_factory=dict, description="model-vs-model paired differences per field ('judge.ratio': the judge's)")
    bench: BenchSection | None = None
    findings: list[Finding] = Field(default_factory=list)
    slices: dict[str, dict[str, dict[str, ModelSummary]]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="{tag: {value: {model: the same per-model fields}}}")

    # --- reading ------------------------------------------------------------------------------------------
    def names(self, role: str | None = None) -> list[str]:
        """Model names in the summary's order; ``role="candidate"`` keeps the candidates only."""
        return [n for n, m in self.models.items() if role is None or m.role == role]

    def candidates(self) -> list[str]:
        """The candidates, or every model when none is marked as one."""
        return self.names("candidate") or self.names()

    def value(self, model: str, key: str) -> float | None:
        m = self.models.get(model)
        return m.value(key) if m is not None else None

    def present(self, key: str, names: list[str] | None = None) -> bool:
        return any(self.value(n, key) is not None for n in (self.names() if names is None else names))

    def quality_field(self, names: list[str] | None = None) -> SummaryField | None:
        """The run's quality measure: the preferred quality field that some candidate has."""
        names = self.candidates() if names is None else names
        return next((f for f in quality_fields() if self.present(f.key, names)), None)

    def ranked(self) -> list[str]:
        """Model names best first by the quality measure (models without it last, in summary order)."""
        names = self.names()
        q = self.quality_field()
        if q is None:
            return names
        sign = 1 if q.higher_is_better is not False else -1
        return sorted(names, key=lambda n: -sign * v if (v := self.value(n, q.key)) is not None else math.inf)

    def pairs(self, key: str) -> list[PairwiseEntry]:
        """The paired differences of field ``key`` (the judge's are stored under ``judge.ratio``)."""
        return self.pairwise.get("judge.ratio" if key == "judge.ratio_mean" else key, [])

    def find_pair(self, key: str, a: str, b: str) -> PairwiseEntry | None:
        """``a`` − ``b`` on field ``key``, turned around when stored as ``b`` − ``a``."""
        for p in self.pairs(key):
            if (p.a, p.b) == (a, b):
                return p
            if (p.a, p.b) == (b, a):
                ci = [-p.ci95[1], -p.ci95[0]] if p.ci95 else None
                pa = 1 - p.p_a_better if p.p_a_better is not None else None
                return p.model_copy(update={"a": a, "b": b, "diff": -p.diff, "ci95": ci, "p_a_better": pa})
        return None

    # --- writing ------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        """summary.json's text: every key of the model (nulls kept: a missing metric is ``null`` with its reason in
        ``unavailable``); ``bench`` only when a benchmark ran, as before."""
        data = self.model_dump(mode="json", by_alias=True)
        if data.get("bench") is None:
            data.pop("bench", None)
        _drop_panel_keys(data)
        return json.dumps(data, ensure_ascii=False, indent=2)


#: Keys only a judge panel has: a single judge's summary.json leaves them out, as before panels existed.
PANEL_ONLY = {"judge_status": ("judges", "agreement"), "judge": ("panel",)}


def _drop_panel_keys(data: dict[str, Any]) -> None:
    status = data.get("judge_status")
    if isinstance(status, dict):
        for key in PANEL_ONLY["judge_status"]:
            if status.get(key) is None:
                status.pop(key, None)
    models = [data.get("models") or {}]
    models += [per_value for values in (data.get("slices") or {}).values() for per_value in values.values()]
    for group in models:
        for m in group.values():
            block = m.get("judge") if isinstance(m, dict) else None
            if not isinstance(block, dict):
                continue
            if block.get("panel") is None:
                block.pop("panel", None)
            for own in (block.get("panel") or {}).values():
                own.pop("panel", None)


def number(v: Any) -> float | None:
    """A finite float, or ``None`` (missing, NaN, a label, a bool)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of summary.json (``docs/summary.schema.json``)."""
    schema = RunSummary.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vlmpipe report/summary.json"
    return schema

