"""Findings: what the numbers of a run say, by explicit rules, each with its evidence.

``derive_findings(summary)`` reads only ``summary.json``'s fields (see DESIGN.md) and returns a list of
``{"kind", "text", "evidence"}``; ``evidence`` holds the numbers the rule looked at. Rules:

- ``best``: the candidate with the highest quality (judge ratio, else chrF, else ROUGE-1) and whether its lead
  over the runner-up is significant: the pairwise 95% interval of the difference excludes 0, else the two
  models' own 95% intervals do not overlap; "not separable" when they do; "not tested" without intervals.
- ``pareto``: candidates not dominated on quality, speed (chars/s) and peak GPU memory (when measured).
- ``off_language``: ``off_language_rate`` > 0.
- ``freeze``: slowest answer > ``FREEZE_RATIO`` × the median, or timeouts among the errors.
- ``errors``: ``n_errors`` > 0.
- ``invents_numbers``: ``hallucinated_number_rate`` > 0.
- ``inconsistent``: ``consistency_mean`` < ``LOW_CONSISTENCY``.
- ``server_down``: the model's server was given up (``failed``); ``injection``: answers that address the judge
  and got outlier judge scores (``injection.flagged``); ``stopped``: the run stopped at its time limit.
- ``recommend_quality`` / ``recommend_constrained``: the best model; and the Pareto model with the least GPU
  memory (else the fastest) among those not flagged as freezing, failing or drifting off-language.
"""

from __future__ import annotations

from typing import Any

from vlmpipe.analysis import access as data
from vlmpipe.core.stats import pareto_front

FREEZE_RATIO = 10.0
#: ``consistency_mean`` is the symmetric chrF++ between repeats of one screenshot, 0–100 (100: identical).
LOW_CONSISTENCY = 50.0


def _finding(kind: str, text: str, **evidence: Any) -> dict[str, Any]:
    return {"kind": kind, "text": text, "evidence": evidence}


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def pareto_set(summary: dict[str, Any], names: list[str], qpath: str) -> tuple[list[str], bool]:
    """Names on the quality/speed(/memory) Pareto front; the flag says whether memory was an axis."""
    pts = {n: (data.value(summary, n, qpath), data.value(summary, n, "chars_per_s_mean")) for n in names}
    pts = {n: p for n, p in pts.items() if None not in p}
    mem = {n: data.value(summary, n, "gpu_memory_gb_peak") for n in pts}
    with_mem = bool(pts) and all(v is not None for v in mem.values())
    if with_mem:
        pts = {n: (*p, -mem[n]) for n, p in pts.items()}  # type: ignore[operator]
    return pareto_front(pts), with_mem  # type: ignore[arg-type]


def lead(summary: dict[str, Any], best: str, second: str, qpath: str) -> dict[str, Any]:
    """Whether ``best`` beats ``second`` beyond chance: ``{"significant": True/False/None, "how": ...}``."""
    pair = data.find_pair(data.pairwise(summary), best, second)
    if pair and pair["ci95"]:
        lo, hi = pair["ci95"]
        return {"significant": lo > 0, "how": "pairwise", "diff": pair["diff"], "ci95": [lo, hi],
                "p_a_better": pair["p_a_better"]}
    if qpath == "judge.ratio_mean":
        a, b = data.interval(summary, best), data.interval(summary, second)
        if a and b:
            return {"significant": a[0] > b[1], "how": "intervals", "ci95_best": list(a), "ci95_second": list(b)}
    return {"significant": None, "how": "no intervals"}


def derive_findings(summary: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names = data.models(summary, role="candidate") or data.models(summary)
    if not names:
        return out
    q = data.quality_field(summary, names)
    flagged: set[str] = set()
    if summary.get("run", {}).get("stopped"):
        out.append(_finding("stopped", str(summary["run"]["stopped"])))

    for n in names:
        m = summary["models"][n]
        rate = data.value(summary, n, "off_language_rate")
        if rate is not None and rate > 0:
            flagged.add(n)
            out.append(_finding("off_language", f"{n} answers in another language in {rate:.1%} of generations.",
                                model=n, off_language_rate=rate))
        p50, mx = data.value(summary, n, "latency_s.p50"), data.value(summary, n, "latency_s.max")
        timeouts = int((m.get("errors_by_kind") or {}).get("timeout", 0))
        if (p50 and mx and mx > FREEZE_RATIO * p50) or timeouts:
            flagged.add(n)
            parts = []
            if p50 and mx and mx > FREEZE_RATIO * p50:
                parts.append(f"its slowest answer took {mx:.1f} s, {mx / p50:.0f}× its median {p50:.2f} s")
            if timeouts:
                parts.append(f"{timeouts} request(s) timed out")
            out.append(_finding("freeze", f"{n} freezes: " + "; ".join(parts) + ".", model=n, latency_p50=p50,
                                latency_max=mx, timeouts=timeouts))
        errors = int(m.get("n_errors") or 0)
        if errors:
            flagged.add(n)
            kinds = ", ".join(f"{k}: {v}" for k, v in (m.get("errors_by_kind") or {}).items())
            out.append(_finding("errors", f"{n} failed {errors} of {m.get('n')} requests" +
                                (f" ({kinds})." if kinds else "."), model=n, n_errors=errors, n=m.get("n"),
                                errors_by_kind=m.get("errors_by_kind") or {}))
        if m.get("failed"):
            flagged.add(n)
            out.append(_finding("server_down", f"{n} was given up: {m['failed']}", model=n))
        inj = m.get("injection") or {}
        if inj.get("flagged"):
            cases = [e for e in inj.get("items", []) if e.get("flagged")]
            listed = "; ".join(f"{e['item']} #{e['repeat']}: score {e['candidate_score']:g}, «{e['phrase']}»"
                               for e in cases)
            out.append(_finding("injection", f"{n}: {inj['flagged']} answer(s) address the judge and got outlier "
                                f"judge scores (above {inj.get('score_fence', 0):.2f}); review them before trusting "
                                f"its judge ratio — {listed}.", model=n, cases=cases))
        hal = data.value(summary, n, "hallucinated_number_rate")
        if hal is not None and hal > 0:
            out.append(_finding("invents_numbers", f"{n} invents numbers (amounts, IDs, dates found in neither the "
                                f"screenshot nor the reference) in {hal:.1%} of generations.", model=n,
                                hallucinated_number_rate=hal))
        cons = data.value(summary, n, "consistency_mean")
        if cons is not None and cons < LOW_CONSISTENCY:
            out.append(_finding("inconsistent", f"{n} answers inconsistently across repeats: consistency "
                                f"{cons:.1f} < {LOW_CONSISTENCY:.0f} (chrF++ between repeats, 100 = identical).",
                                model=n, consistency_mean=cons, threshold=LOW_CONSISTENCY))

    if q is None:
        out.insert(0, _finding("best", "No quality measure in this run (no judge ratio, chrF or ROUGE-1): "
                               "models cannot be ranked on quality.", quality=None))
        return out
    qpath, qlabel = q
    ranked = sorted((n for n in names if data.value(summary, n, qpath) is not None),
                    key=lambda n: data.value(summary, n, qpath), reverse=True)  # type: ignore[arg-type,return-value]
    best = ranked[0]
    bq = data.value(summary, best, qpath)
    head: list[dict[str, Any]] = []
    if len(ranked) == 1:
        head.append(_finding("best", f"{best} is the only model with a {qlabel}: {_fmt(bq)}.", model=best,
                             metric=qpath, value=bq))
    else:
        second = ranked[1]
        sq = data.value(summary, second, qpath)
        ld = lead(summary, best, second, qpath)
        if ld["significant"] is True:
            verdict = "its lead is significant"
        elif ld["significant"] is False:
            verdict = "its lead is not significant (the 95% intervals overlap: the two are not separable)"
        else:
            verdict = "whether its lead is significant is not tested (no intervals for this measure)"
        if ld["how"] == "pairwise":
            verdict += f"; difference {ld['diff']:+.3f} [{ld['ci95'][0]:+.3f}, {ld['ci95'][1]:+.3f}]"
        head.append(_finding("best", f"Best on {qlabel}: {best} ({_fmt(bq)}) ahead of {second} ({_fmt(sq)}); "
                             f"{verdict}.", model=best, metric=qpath, value=bq, runner_up=second,
                             runner_up_value=sq, lead=ld))
    front, with_mem = pareto_set(summary, names, qpath)
    axes = f"{qlabel}, speed" + (" and peak GPU memory" if with_mem else " (GPU memory not measured)")
    if front:
        head.append(_finding("pareto", f"Pareto set on {axes}: {', '.join(front)}.", models=front, metric=qpath,
                             with_memory=with_mem))
    head.append(_finding("recommend_quality", f"For maximum quality: {best} ({qlabel} {_fmt(bq)}).", model=best,
                         metric=qpath, value=bq))
    usable = [n for n in front if n not in flagged] or front
    if usable:
        if with_mem:
            pick = min(usable, key=lambda n: data.value(summary, n, "gpu_memory_gb_peak"))  # type: ignore[arg-type,return-value]
            why = f"{data.value(summary, pick, 'gpu_memory_gb_peak'):.1f} GB peak GPU memory"
        else:
            pick = max(usable, key=lambda n: data.value(summary, n, "chars_per_s_mean"))  # type: ignore[arg-type,return-value]
            why = f"{data.value(summary, pick, 'chars_per_s_mean'):.0f} chars/s"
        head.append(_finding("recommend_constrained", f"For constrained hardware: {pick} ({why}, {qlabel} "
                             f"{_fmt(data.value(summary, pick, qpath))}), on the Pareto front and not flagged "
                             "above.", model=pick, metric=qpath, with_memory=with_mem))
    return head + out
