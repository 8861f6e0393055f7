"""The field catalogue: every per-model figure of ``summary.json``, declared once.

A :class:`SummaryField` says where a figure lives in a model's summary (``key``: ``chrf_mean``, ``latency_s.p50``,
``judge.ratio_mean``), how it is made (the per-generation ``column`` it aggregates and the ``aggregation``), how
to show it (``label``, ``short`` for the terminal, ``fmt``, ``unit``), which way is better, and which views it
belongs to: the ranking tables (``ranking``; ``console`` is its priority in the narrow terminal table), the
technical-statistics table
(``technical``), the interval plots (``plot``), the headline of ``vlmpipe compare`` (``headline``), the run's
quality measure (``quality``: lower is preferred), model-vs-model paired differences (``paired``) and the findings
(``alert``). Metrics declare their fields on the metric class (:mod:`vlmpipe.metrics.base`); latency, errors, GPU,
stability and the judge are declared in :mod:`vlmpipe.analysis.catalogue`. Every view is a filter over
:func:`catalogue`, never a list of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["mean", "sum", "rate"]

#: The order of groups in every table (a field's place within its group is its registration order).
GROUPS = ("count", "judge", "quality", "grounding", "language", "fluency", "stability", "speed", "resources",
          "safety", "other")


@dataclass(frozen=True)
class Alert:
    """A findings rule on one field: a model whose value is above ``above`` (or below ``below``) gets a finding
    of ``kind`` whose text is ``text`` formatted with ``model``, ``value`` and ``threshold``. ``flags``: the model
    is then not recommended for constrained hardware."""

    kind: str
    text: str
    above: float | None = None
    below: float | None = None
    flags: bool = False

    def fires(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (self.below is not None and value < self.below)

    @property
    def threshold(self) -> float | None:
        return self.above if self.above is not None else self.below


@dataclass(frozen=True)
class SummaryField:
    """One figure per model in ``summary.json`` (see the module docstring)."""

    key: str
    label: str
    column: str | None = None
    short: str | None = None  # the console's column title (default: the label with its unit)
    aggregation: Aggregation | None = None
    fmt: str = "{:.3f}"
    unit: str = ""
    higher_is_better: bool | None = None
    group: str = "other"
    description: str = ""
    ranking: bool = False
    console: int | None = None
    technical: bool = False
    plot: bool = False
    headline: bool = False
    quality: int | None = None
    paired: bool = False
    reference: float | None = None
    alert: Alert | None = None

    def __post_init__(self) -> None:
        if (self.column is None) != (self.aggregation is None):
            raise ValueError(f"field {self.key!r}: give both column and aggregation, or neither")
        if self.group not in GROUPS:
            raise ValueError(f"field {self.key!r}: group {self.group!r} is not one of {GROUPS}")
        if (self.plot or self.paired) and self.aggregation not in ("mean", "rate"):
            raise ValueError(f"field {self.key!r}: plots and paired differences need a mean or a rate")

    @property
    def interval(self) -> bool:
        """Whether the field gets a 95% interval: means and rates of a per-generation column."""
        return self.aggregation in ("mean", "rate")

    def format(self, value: float | None) -> str:
        return "—" if value is None else self.fmt.format(value)

    @property
    def title(self) -> str:
        """The label with its unit, for column headings: ``latency p50, s``."""
        return f"{self.label}, {self.unit}" if self.unit else self.label

    @property
    def console_title(self) -> str:
        return self.short or self.title


_FIELDS: dict[str, tuple[str, SummaryField]] = {}


def register_fields(owner: str, fields: Iterable[SummaryField]) -> None:
    """Add ``owner``'s fields (a metric's name, or ``vlmpipe`` for the built-in ones). A key declared by another
    owner is an error: two producers of one figure would silently overwrite each other."""
    for f in fields:
        known = _FIELDS.get(f.key)
        if known is not None and known[0] != owner:
            raise ValueError(f"summary field {f.key!r} of {owner!r} is already declared by {known[0]!r}")
        _FIELDS[f.key] = (owner, f)


def unregister_fields(owner: str) -> None:
    """Remove ``owner``'s fields (a plugin unloaded, e.g. in a test)."""
    for key in [k for k, (o, _f) in _FIELDS.items() if o == owner]:
        del _FIELDS[key]


def catalogue() -> list[SummaryField]:
    """Every declared field, in table order: by group, then by registration."""
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted((f for _o, f in _FIELDS.values()), key=lambda f: order[f.group])


def field(key: str) -> SummaryField | None:
    entry = _FIELDS.get(key)
    return entry[1] if entry else None


def owner_of(key: str) -> str | None:
    entry = _FIELDS.get(key)
    return entry[0] if entry else None
