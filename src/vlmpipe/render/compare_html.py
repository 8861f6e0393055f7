"""``compare.html``: the result of ``vlmpipe compare`` as one self-contained page (no script, nothing remote).

Model names, run names and every other text from the two summaries are untrusted: the Jinja2 template autoescapes
them, and the page's Content-Security-Policy (``report/page.py``, as for index.html) allows no script at all.
"""

from __future__ import annotations

from typing import Any

from vlmpipe.analysis.catalogue import catalogue
from vlmpipe.render.page import content_security_policy, environment


def titles() -> dict[str, str]:
    """Readable names of the compared fields: the catalogue's labels with their units."""
    return {f.key: f.title for f in catalogue()}


def number(v: float, signed: bool = False) -> str:
    """Four significant digits, as the console table shows them."""
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def span(ci: list[float] | None) -> str:
    return "" if not ci else f"[{number(ci[0])}, {number(ci[1])}]"


def model_rows(metrics: dict[str, Any], fields: list[str]) -> list[dict[str, str]]:
    """One row per field of ``fields`` both runs have, in that order."""
    rows = []
    names = titles()
    for f in fields:
        if (v := metrics.get(f)) is None:
            continue
        ov = v.get("intervals_overlap")
        rows.append({"field": f, "title": names.get(f, f), "a": number(v["a"]), "b": number(v["b"]),
                     "diff": number(v["diff"], signed=True), "ci_a": span(v.get("ci95_a")),
                     "ci_b": span(v.get("ci95_b")),
                     "overlap": "" if ov is None else ("overlap" if ov else "do not overlap")})
    return rows


def side(result: dict[str, Any], key: str) -> dict[str, Any]:
    s = result[key]
    run = s.get("run") or {}
    return {"label": key.upper(), "given": s.get("name"), "name": run.get("name"),
            "written": s.get("summary_written") or "unknown", "items": run.get("items"),
            "repeats": run.get("repeats"), "prompt_hash": run.get("prompt_hash")}


def render_compare(result: dict[str, Any], fields: list[str]) -> str:
    """The page for a ``compare_summaries``/``compare_runs`` result, showing ``fields`` (the headline ones)."""
    a, b = side(result, "a"), side(result, "b")
    models = [{"name": m, "rows": model_rows(metrics, fields)} for m, metrics in result["models"].items()]
    return environment().get_template("compare.html.j2").render(
        csp=content_security_policy(None), a=a, b=b, models=models,
        prompts_differ=bool(a["prompt_hash"] and b["prompt_hash"] and a["prompt_hash"] != b["prompt_hash"]),
        only_a=result.get("only_a") or [], only_b=result.get("only_b") or [])
