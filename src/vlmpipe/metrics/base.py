"""The metric registry: each metric declares its name, what it needs, and whether it can run here.

A metric scores a batch of generation rows and returns, per row, ``{column: (value, detail)}``: ``value``
is a number (or ``None``) stored in the ``scores`` table and shown in ``generations.csv``; ``detail`` is any
JSON-able value kept beside it (misspelled words, the detected language, the missing facts...).
``summary_fields`` says how columns aggregate per model (``mean``, ``sum``, ``rate`` = share of rows > 0).
A metric that cannot run says why (:meth:`Metric.unavailable`); the report then shows ``null`` with that
reason — never a crash, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from vlmpipe.core.config import RunConfig

Score = tuple[float | None, Any]
Aggregate = Literal["mean", "sum", "rate"]


@dataclass
class ScoreContext:
    """What metrics may read: the config, the items (with references, facts, OCR text) and the store."""

    cfg: RunConfig
    items: dict[str, dict[str, Any]]
    store: Any = None
    cache: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int], None] | None = None  # advance(n): metrics that batch may report progress

    def settings(self, metric: str) -> dict[str, Any]:
        return dict(self.cfg.metrics.settings.get(metric, {}))


class Metric:
    """Base class of per-generation metrics. Subclasses set the class attributes and :meth:`score`."""

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    needs: ClassVar[frozenset[str]] = frozenset()  # any of {"reference", "image", "model", "facts"}
    summary_fields: ClassVar[dict[str, tuple[str, Aggregate]]] = {}
    default_enabled: ClassVar[bool] = True

    def unavailable(self, ctx: ScoreContext) -> str | None:
        """``None`` when the metric can run here, else the reason it cannot."""
        return None

    def version(self, ctx: ScoreContext) -> str:
        """Identifies the scorer; a changed version re-scores the stored rows."""
        return "1"

    def summary_info(self, ctx: ScoreContext) -> dict[str, Any]:
        """Fields added to every model's summary (e.g. which scorer or checkpoint produced the numbers)."""
        return {}

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        raise NotImplementedError


class MetricUnavailable(RuntimeError):
    """Raised while loading a metric's model or scorer; the message says why the metric cannot run here."""


T = TypeVar("T")


def load_once(ctx: ScoreContext, key: str, loader: Callable[[], T]) -> T:
    """Load a metric's model once per scoring run (kept in ``ctx.cache``).

    A :class:`MetricUnavailable` from ``loader`` is cached too and raised again on every later call, so a
    missing model is looked for once and reported with its reason.
    """
    if key not in ctx.cache:
        try:
            ctx.cache[key] = loader()
        except MetricUnavailable as err:
            ctx.cache[key] = err
    got = ctx.cache[key]
    if isinstance(got, MetricUnavailable):
        raise got
    return got  # type: ignore[no-any-return]


class ModelMetric(Metric):
    """A metric that needs a model: unavailable, with the reason, while its model cannot be loaded."""

    def _model(self, ctx: ScoreContext) -> Any:
        raise NotImplementedError

    def unavailable(self, ctx: ScoreContext) -> str | None:
        try:
            self._model(ctx)
        except MetricUnavailable as err:
            return str(err)
        return None


REGISTRY: dict[str, type[Metric]] = {}


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator adding a metric to the registry under its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"metric {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls
