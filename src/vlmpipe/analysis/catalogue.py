"""The built-in fields of every model's summary — counts, the judge, stability, speed, GPU — declared like the
metrics' own (:mod:`vlmpipe.core.fields`), and the views over the whole catalogue.

Importing this module registers the built-in fields and every metric (built-in or plugin), so
:func:`vlmpipe.core.fields.catalogue` is complete afterwards.
"""

from __future__ import annotations

import vlmpipe.metrics  # noqa: F401  (registers the metrics and their fields, plugins included)
from vlmpipe.core.fields import Alert, SummaryField, catalogue, register_fields
from vlmpipe.metrics.base import REGISTRY

#: The judge's per-generation ratio column (candidate score / reference score of one judgement).
JUDGE_RATIO = "judge_ratio"
#: The per-item consistency column (chrF++ between the repeats of one screenshot).
CONSISTENCY = "consistency"

BUILT_IN = (
    SummaryField("n", "n", fmt="{:.0f}", group="count", description="generations planned", ranking=True, console=12,
                 technical=True),
    SummaryField("n_errors", "errors", short="err", fmt="{:.0f}", higher_is_better=False, group="count",
                 description="failed generations", ranking=True, console=8, technical=True, headline=True),
    SummaryField("error_rate", "error rate", fmt="{:.1%}", higher_is_better=False, group="count",
                 description="failed generations / planned"),
    SummaryField("judge.ratio_mean", "judge ratio", short="judge", column=JUDGE_RATIO, aggregation="mean",
                 higher_is_better=True, group="judge",
                 description="LLM judge: candidate / reference score (graded tasks: score / 10), averaged",
                 ranking=True,
                 console=1, plot=True, headline=True, quality=0, paired=True, reference=1.0),
    SummaryField("judge.win_rate", "win rate", fmt="{:.0%}", higher_is_better=True, group="judge",
                 description="judgements where the candidate scored above the reference", ranking=True),
    SummaryField("judge.position_consistency", "judge position consistency", fmt="{:.0%}", higher_is_better=True,
                 group="judge", description="judgements whose verdict survives swapping the answers' order"),
    SummaryField("consistency_mean", "consistency", column=CONSISTENCY, aggregation="mean", fmt="{:.1f}",
                 higher_is_better=True, group="stability",
                 description="chrF++ between the repeats of a screenshot (100 = identical), averaged over screenshots",
                 ranking=True, plot=True, headline=True,
                 alert=Alert("inconsistent", "{model} answers inconsistently across repeats: consistency "
                             "{value:.1f} < {threshold:.0f} (chrF++ between repeats, 100 = identical).", below=50.0)),
    SummaryField("distinct_answer_rate", "distinct answers", fmt="{:.0%}", group="stability",
                 description="distinct answers / repeats of one screenshot, averaged over screenshots", technical=True),
    SummaryField("latency_s.mean", "latency mean", column="latency_s", aggregation="mean", fmt="{:.2f}", unit="s",
                 higher_is_better=False, group="speed", technical=True),
    SummaryField("latency_s.p50", "latency p50", short="p50 s", fmt="{:.2f}", unit="s", higher_is_better=False,
                 group="speed", ranking=True, console=6, technical=True, headline=True),
    SummaryField("latency_s.p95", "latency p95", fmt="{:.2f}", unit="s", higher_is_better=False, group="speed",
                 technical=True),
    SummaryField("latency_s.max", "latency max", short="max s", fmt="{:.2f}", unit="s", higher_is_better=False,
                 group="speed", ranking=True, console=9, technical=True, headline=True),
    SummaryField("ttft_s.p50", "TTFT p50", fmt="{:.2f}", unit="s", higher_is_better=False, group="speed",
                 description="time to the first streamed token", technical=True),
    SummaryField("length_chars_mean", "length", column="length_chars", aggregation="mean", fmt="{:.1f}", unit="chars",
                 group="speed", description="characters per answer", technical=True, headline=True),
    SummaryField("chars_per_s_mean", "chars/s", short="ch/s", column="chars_per_s", aggregation="mean", fmt="{:.0f}",
                 higher_is_better=True, group="speed", description="answer length / end-to-end latency", ranking=True,
                 console=5, technical=True, headline=True),
    SummaryField("output_tokens_per_s_mean", "tokens/s", column="output_tokens_per_s", aggregation="mean", fmt="{:.1f}",
                 higher_is_better=True, group="speed", description="completion tokens / end-to-end latency"),
    SummaryField("gpu_memory_gb_peak", "GPU", short="GPU GB", fmt="{:.1f}", unit="GB", higher_is_better=False,
                 group="resources", description="peak GPU memory while the model served (NVML)", ranking=True,
                 console=7, technical=True, headline=True),
)

register_fields("vlmpipe", BUILT_IN)


def ranking_fields() -> list[SummaryField]:
    """The ranking tables' columns (index.html; the console keeps those with a ``console`` priority)."""
    return [f for f in catalogue() if f.ranking]


def console_fields() -> list[SummaryField]:
    return [f for f in catalogue() if f.console is not None]


def technical_fields() -> list[SummaryField]:
    return [f for f in catalogue() if f.technical]


def plot_fields() -> list[SummaryField]:
    return [f for f in catalogue() if f.plot]


def headline_fields() -> list[SummaryField]:
    return [f for f in catalogue() if f.headline]


def quality_fields() -> list[SummaryField]:
    """Candidate quality measures, preferred first (the judge ratio, else chrF, else ROUGE-1...)."""
    return sorted((f for f in catalogue() if f.quality is not None), key=lambda f: f.quality)  # type: ignore[arg-type,return-value]


def paired_fields() -> list[SummaryField]:
    return [f for f in catalogue() if f.paired]


def column_fields() -> list[SummaryField]:
    """Fields aggregated from a per-generation (or per-item) column: they carry ``fields.<key>`` in the summary."""
    return [f for f in catalogue() if f.column is not None]


def technical_columns() -> set[str]:
    """The per-generation columns of the technical tables: every column of a metric with a ``technical`` field."""
    return {c for cls in REGISTRY.values() if any(f.technical for f in cls.fields) for c in cls.columns}
