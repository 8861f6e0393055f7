"""``report/bench.png``: the bench figures against concurrency, one line per model."""

from __future__ import annotations

from pathlib import Path

from vlmpipe.analysis.summary import BenchLevel, BenchSection, Percentiles

PANELS = [
    ("ttft_s", "p50", "TTFT p50, s"),
    ("tpot_s", "p50", "TPOT p50, s (excl. 1st token)"),
    ("itl_s", "p50", "ITL p50, s"),
    ("e2e_latency_s", "p50", "E2E latency p50, s"),
    ("request_throughput", None, "requests / s"),
    ("output_tokens_per_s", None, "output tokens / s"),
]


def figure(level: BenchLevel, key: str, stat: str | None) -> float | None:
    """One figure of a level: ``request_throughput``, or a percentile of a distribution (``ttft_s``, ``p50``)."""
    value = getattr(level, key, None)
    if isinstance(value, Percentiles):
        value = getattr(value, stat or "", None)
    return None if value is None else float(value)


def plot_bench(section: BenchSection, path: Path) -> Path | None:
    """Draw the bench section; returns the path, or ``None`` when there is nothing to draw."""
    models = {m: e for m, e in section.models.items()
              if any(lv.request_throughput is not None for lv in e.levels.values())}
    if not models:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    levels = sorted({int(lv) for e in models.values() for lv in e.levels})
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, (key, stat, title) in zip(axes.flat, PANELS, strict=True):
        for name, entry in models.items():
            xs, ys = [], []
            for level, data in entry.levels.items():
                value = figure(data, key, stat)
                if value is not None:
                    xs.append(int(level))
                    ys.append(value)
            if xs:
                ax.plot(xs, ys, marker="o", label=name)
        ax.set_title(title)
        ax.set_xlabel("concurrency")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize="small")
    fig.suptitle("vlmpipe bench")
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
