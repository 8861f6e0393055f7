"""The metric registry: each metric declares its name, what it needs, its summary fields, and whether it can run here.

A metric scores a batch of generation rows and returns, per row, ``{column: (value, detail)}``: ``value``
is a number (or ``None``) stored in the ``scores`` table and shown in ``generations.csv``; ``detail`` is any
JSON-able value kept beside it (misspelled words, the detected language, the missing facts...).
``fields`` declares, once, the figures of ``summary.json`` made from those columns
(:class:`vlmpipe.core.fields.SummaryField`: the aggregation — ``mean``, ``sum`` or ``rate`` = share of rows > 0 —,
label, format, direction, and the views it belongs to); every table, plot, compare and finding is derived from them.
``info_keys`` names what :meth:`Metric.summary_info` adds to every model's summary (which scorer or checkpoint made
the numbers).
A metric that cannot run says why (:meth:`Metric.unavailable`); the report then shows ``null`` with that
reason — never a crash, never a silent zero.

The score stage hands a metric the run's rows in chunks (a few hundred to a few thousand at a time), after calling
its :meth:`Metric.prepare` once (the grounding metric reads every screenshot's text there). A metric whose scores
are a pure function of its rows, the config and the items (no model, no store) says so with ``parallel = True``:
large runs score it in worker processes, one per core.

Third-party metrics register through the entry-point group ``vlmpipe.metrics`` (see docs/extending.md): each entry
point names a module (or an object in one) that, when loaded, registers its metric with :func:`register`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from vlmpipe.core.config import RunConfig
from vlmpipe.core.fields import SummaryField, register_fields, unregister_fields

Score = tuple[float | None, Any]
ENTRY_POINT_GROUP = "vlmpipe.metrics"
log = logging.getLogger("vlmpipe.metrics")


@dataclass
class ScoreContext:
    """What metrics may read: the config, the items (with references, facts, OCR text) and the store."""

    cfg: RunConfig
    items: dict[str, dict[str, Any]]
    store: Any = None
    cache: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int], None] | None = None  # advance(n): metrics that batch may report progress
    show_progress: bool = False  # whether prepare() may draw its own progress bar

    def settings(self, metric: str) -> dict[str, Any]:
        return dict(self.cfg.metrics.settings.get(metric, {}))


class Metric:
    """Base class of per-generation metrics. Subclasses set the class attributes and :meth:`score`."""

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    needs: ClassVar[frozenset[str]] = frozenset()  # any of {"reference", "image", "model", "facts"}
    fields: ClassVar[tuple[SummaryField, ...]] = ()
    info_keys: ClassVar[tuple[str, ...]] = ()
    default_enabled: ClassVar[bool] = True
    #: Scores depend only on the rows, ``ctx.cfg`` and ``ctx.items`` (no model, no store): may run in worker processes.
    parallel: ClassVar[bool] = False

    def unavailable(self, ctx: ScoreContext) -> str | None:
        """``None`` when the metric can run here, else the reason it cannot."""
        return None

    def version(self, ctx: ScoreContext) -> str:
        """Identifies the scorer; a changed version re-scores the stored rows."""
        return "1"

    def summary_info(self, ctx: ScoreContext) -> dict[str, Any]:
        """Fields added to every model's summary (e.g. which scorer or checkpoint produced the numbers)."""
        return {}

    def prepare(self, ctx: ScoreContext, items: set[str]) -> None:
        """Once per scoring run, in the stage's process, before any row is scored (and before worker processes get
        ``ctx.items``); ``items``: those with rows to score. E.g. the grounding metric reads their screenshots' text
        and keeps it in the items."""

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


M = TypeVar("M", bound=type[Metric])


def register(cls: M) -> M:
    """Class decorator adding a metric to the registry under its ``name``, and its fields to the catalogue.

    Every field must aggregate one of the metric's own ``columns``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"metric {cls.name!r} registered twice")
    stray = [f.key for f in cls.fields if f.column not in cls.columns]
    if stray:
        raise ValueError(f"metric {cls.name!r}: field(s) {stray} aggregate no column of {cls.columns}")
    register_fields(cls.name, cls.fields)
    REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a metric and its fields (a plugin unloaded, e.g. at the end of a test)."""
    REGISTRY.pop(name, None)
    unregister_fields(name)


def load_plugins() -> dict[str, str]:
    """Load the metrics of every installed plugin (entry-point group ``vlmpipe.metrics``).

    A plugin that fails to load is skipped with a warning naming it and why; returns ``{entry point: why}`` of
    those."""
    failed: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as err:  # a broken plugin must not take the built-in metrics down with it
            failed[ep.name] = f"{type(err).__name__}: {err}"
            log.warning("metric plugin %s (%s) did not load: %s", ep.name, ep.value, failed[ep.name])
    return failed
