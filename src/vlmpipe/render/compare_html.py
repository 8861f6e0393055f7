"""``compare.html``: the result of ``vlmpipe compare`` as one self-contained page (no script, nothing remote).

It reads the typed :class:`Comparison`; field titles and which direction is better come from the catalogue. Model
names, run names and every other text from the two summaries are untrusted: the Jinja2 template autoescapes them,
and the page's Content-Security-Policy (``report/page.py``, as for index.html) allows no script at all.
"""

from __future__ import annotations

from typing import Any

from vlmpipe.analysis.catalogue import catalogue
from vlmpipe.analysis.compare import Compared, ComparedRun, Comparison
from vlmpipe.core.fields import field
from vlmpipe.render.page import content_security_policy, environment


def number(v: float, signed: bool = False) -> str:
    """Four significant digits, as the console table shows them."""
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def span(ci: list[float] | None) -> str:
    return "" if not ci else f"[{number(ci[0])}, {number(ci[1])}]"


def model_rows(metrics: dict[str, Compared], fields: list[str]) -> list[dict[str, str]]:
    """One row per field of ``fields`` both runs have, in that order, titled from the catalogue."""
    rows = []
    for key in fields:
        if (v := metrics.get(key)) is None:
            continue
        f = field(key)
        ov = v.intervals_overlap
        rows.append({"field": key, "title": f.title if f else key, "a": number(v.a), "b": number(v.b),
                     "diff": number(v.diff, signed=True), "ci_a": span(v.ci95_a), "ci_b": span(v.ci95_b),
                     "overlap": "" if ov is None else ("overlap" if ov else "do not overlap")})
    return rows


def side(s: ComparedRun, label: str) -> dict[str, Any]:
    run = s.run
    return {"label": label, "given": s.name, "name": run.name, "written": s.summary_written or "unknown",
            "items": run.items, "repeats": run.repeats, "prompt_hash": run.prompt_hash, "task": run.task}


def directions(fields: list[str]) -> dict[str, list[str]]:
    """The labels of ``fields`` by which way is better (``higher``, ``lower``), for the legend."""
    out: dict[str, list[str]] = {"higher": [], "lower": []}
    shown = set(fields)
    for f in catalogue():
        if f.key in shown and f.higher_is_better is not None:
            out["higher" if f.higher_is_better else "lower"].append(f.label)
    return out


def render_compare(result: Comparison, fields: list[str]) -> str:
    """The page for a :class:`Comparison`, showing ``fields`` (the headline ones)."""
    a, b = side(result.a, "A"), side(result.b, "B")
    models = [{"name": m, "rows": model_rows(metrics, fields)} for m, metrics in result.models.items()]
    return environment().get_template("compare.html.j2").render(
        csp=content_security_policy(None), a=a, b=b, models=models, better=directions(fields),
        notes=result.notes, only_a=result.only_a, only_b=result.only_b)

