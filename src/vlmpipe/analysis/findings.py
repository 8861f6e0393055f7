"""Findings: what the numbers of a run say, by explicit rules, each with its evidence.

``derive_findings(summary)`` reads only the typed summary and the field catalogue, and returns
:class:`Finding` s (``kind``, ``text``, ``evidence``: the numbers the rule looked at). Rules:

- ``best``: the candidate with the best quality measure (the catalogue's preferred ``quality`` field the run has:
  the judge ratio, else chrF, else ROUGE-1) and whether its lead over the runner-up is significant: the paired 95%
  interval of the difference excludes 0, else the two models' own 95% intervals do not overlap; "not separable"
  when they do; "not tested" without intervals.
- ``pareto``: candidates not dominated on quality, speed (chars/s) and peak GPU memory (when measured).
- one finding per model and per field with an ``alert`` in the catalogue whose value crosses its threshold
  (``off_language``, ``invents_numbers``, ``inconsistent``...; a plugin's field may add its own).
- ``freeze``: slowest answer > ``FREEZE_RATIO`` × the median, or timeouts among the errors.
- ``errors``: ``n_errors`` > 0.
- ``server_down``: the model's server was given up (``failed``); ``injection``: answers that address the judge
  and got outlier judge scores (``injection.flagged``); ``stopped``: the run stopped at its time limit.
- ``judges_disagree``: the judges of a panel order the top two candidates (by the panel's ratio) differently.
- ``recommend_quality`` / ``recommend_constrained``: the best model; and the Pareto model with the least GPU
  memory (else the fastest) among those not flagged (freezing, failing, or an alert that ``flags``).
"""

from __future__ import annotations

from typing import Any

from vlmpipe.analysis.catalogue import catalogue
from vlmpipe.analysis.summary import Finding, RunSummary
from vlmpipe.core.fields import SummaryField
from vlmpipe.core.stats import pareto_front

FREEZE_RATIO = 10.0


def _finding(kind: str, text: str, **evidence: Any) -> Finding:
    return Finding(kind=kind, text=text, evidence=evidence)


def pareto_set(summary: RunSummary, names: list[str], quality: SummaryField) -> tuple[list[str], bool]:
    """Names on the quality/speed(/memory) Pareto front; the flag says whether memory was an axis."""
    sign = -1.0 if quality.higher_is_better is False else 1.0
    pts: dict[str, tuple[float, ...]] = {}
    for n in names:
        q, speed = summary.value(n, quality.key), summary.value(n, "chars_per_s_mean")
        if q is not None and speed is not None:
            pts[n] = (sign * q, speed)
    mem = {n: summary.value(n, "gpu_memory_gb_peak") for n in pts}
    with_mem = bool(pts) and all(v is not None for v in mem.values())
    if with_mem:
        pts = {n: (*p, -mem[n]) for n, p in pts.items()}  # type: ignore[operator]
    return pareto_front(pts), with_mem


def lead(summary: RunSummary, best: str, second: str, quality: SummaryField) -> dict[str, Any]:
    """Whether ``best`` beats ``second`` beyond chance: ``{"significant": True/False/None, "how": ...}``."""
    pair = summary.find_pair(quality.key, best, second)
    sign = -1.0 if quality.higher_is_better is False else 1.0
    if pair and pair.ci95:
        lo, hi = pair.ci95
        return {"significant": lo > 0 if sign > 0 else hi < 0, "how": "pairwise", "diff": pair.diff,
                "ci95": [lo, hi], "p_a_better": pair.p_a_better}
    a, b = summary.models[best].interval(quality.key), summary.models[second].interval(quality.key)
    if a and b:
        apart = a[0] > b[1] if sign > 0 else a[1] < b[0]
        return {"significant": apart, "how": "intervals", "ci95_best": list(a), "ci95_second": list(b)}
    return {"significant": None, "how": "no intervals"}


def _per_model(summary: RunSummary, names: list[str], flagged: set[str]) -> list[Finding]:
    out: list[Finding] = []
    alerts = [f for f in catalogue() if f.alert is not None]
    for n in names:
        m = summary.models[n]
        for f in alerts:
            value = m.value(f.key)
            if value is not None and f.alert.fires(value):  # type: ignore[union-attr]
                alert = f.alert
                if alert.flags:  # type: ignore[union-attr]
                    flagged.add(n)
                out.append(_finding(alert.kind, alert.text.format(model=n, value=value,  # type: ignore[union-attr]
                                                                    threshold=alert.threshold),  # type: ignore[union-attr]
                                    model=n, **{f.key: value}, threshold=alert.threshold))  # type: ignore[union-attr]
        p50, mx = m.value("latency_s.p50"), m.value("latency_s.max")
        timeouts = int(m.errors_by_kind.get("timeout", 0))
        slow = bool(p50 and mx and mx > FREEZE_RATIO * p50)
        if slow or timeouts:
            flagged.add(n)
            parts = []
            if slow:
                parts.append(f"its slowest answer took {mx:.1f} s, {mx / p50:.0f}× its median {p50:.2f} s")  # type: ignore[operator]
            if timeouts:
                parts.append(f"{timeouts} request(s) timed out")
            out.append(_finding("freeze", f"{n} freezes: " + "; ".join(parts) + ".", model=n, latency_p50=p50,
                                latency_max=mx, timeouts=timeouts))
        if m.n_errors:
            flagged.add(n)
            kinds = ", ".join(f"{k}: {v}" for k, v in m.errors_by_kind.items())
            out.append(_finding("errors", f"{n} failed {m.n_errors} of {m.n} requests" +
                                (f" ({kinds})." if kinds else "."), model=n, n_errors=m.n_errors, n=m.n,
                                errors_by_kind=m.errors_by_kind))
        if m.failed:
            flagged.add(n)
            out.append(_finding("server_down", f"{n} was given up: {m.failed}", model=n))
        inj = m.injection
        if inj is not None and inj.flagged:
            cases = [e for e in inj.items if e.flagged]
            listed = "; ".join(f"{e.item} #{e.repeat}: score {e.candidate_score:g}, «{e.phrase}»" for e in cases)
            out.append(_finding("injection", f"{n}: {inj.flagged} answer(s) address the judge and got outlier judge "
                                f"scores (above {inj.score_fence or 0:.2f}); review them before trusting its judge "
                                f"ratio — {listed}.", model=n, cases=[e.model_dump() for e in cases]))
    return out


def judges_disagree(summary: RunSummary, names: list[str]) -> Finding | None:
    """The panel's judges disagree on the order of the top two candidates (by the panel's ratio)."""
    status = summary.judge_status
    if status is None or not status.judges or len(status.judges) < 2:
        return None
    ranked = sorted((n for n in names if summary.value(n, "judge.ratio_mean") is not None),
                    key=lambda n: -summary.value(n, "judge.ratio_mean"))  # type: ignore[operator]
    if len(ranked) < 2:
        return None
    best, second = ranked[:2]
    per_judge: dict[str, tuple[float | None, float | None]] = {
        j: (summary.value(best, f"judge.panel.{j}.ratio_mean"), summary.value(second, f"judge.panel.{j}.ratio_mean"))
        for j in status.judges}
    reverse = [j for j, (a, b) in per_judge.items() if a is not None and b is not None and b > a]
    if not reverse:
        return None
    agree = [j for j, (a, b) in per_judge.items() if a is not None and b is not None and a >= b]
    detail = "; ".join(f"{j}: {a:.3f} vs {b:.3f}" for j, (a, b) in per_judge.items() if a is not None and b is not None)
    return _finding("judges_disagree", f"The judges disagree on the order of the top two: the panel puts {best} "
                    f"ahead of {second}, but {', '.join(reverse)} put{'s' if len(reverse) == 1 else ''} {second} "
                    f"ahead ({detail}); the ranking depends on the judge.", models=[best, second],
                    judges_reversing=reverse, judges_agreeing=agree,
                    ratios={j: {best: a, second: b} for j, (a, b) in per_judge.items()})


def derive_findings(summary: RunSummary) -> list[Finding]:
    names = summary.candidates()
    if not names:
        return []
    flagged: set[str] = set()
    out: list[Finding] = []
    if summary.run.stopped:
        out.append(_finding("stopped", summary.run.stopped))
    out += _per_model(summary, names, flagged)
    q = summary.quality_field(names)
    if q is None:
        return [_finding("best", "No quality measure in this run (no judge ratio, chrF or ROUGE-1): models cannot "
                         "be ranked on quality.", quality=None), *out]
    ranked = [n for n in summary.ranked() if n in names and summary.value(n, q.key) is not None]
    best = ranked[0]
    bq = summary.value(best, q.key)
    head: list[Finding] = []
    if len(ranked) == 1:
        head.append(_finding("best", f"{best} is the only model with a {q.label}: {q.format(bq)}.", model=best,
                             metric=q.key, value=bq))
    else:
        second = ranked[1]
        sq = summary.value(second, q.key)
        ld = lead(summary, best, second, q)
        if ld["significant"] is True:
            verdict = "its lead is significant"
        elif ld["significant"] is False and ld["how"] == "pairwise":
            verdict = ("its lead is not significant (the 95% interval of the paired difference includes 0: the two "
                       "are not separable)")
        elif ld["significant"] is False:
            verdict = "its lead is not significant (the 95% intervals overlap: the two are not separable)"
        else:
            verdict = "whether its lead is significant is not tested (no intervals for this measure)"
        if ld["how"] == "pairwise":
            verdict += f"; difference {ld['diff']:+.3f} [{ld['ci95'][0]:+.3f}, {ld['ci95'][1]:+.3f}]"
        head.append(_finding("best", f"Best on {q.label}: {best} ({q.format(bq)}) ahead of {second} "
                             f"({q.format(sq)}); {verdict}.", model=best, metric=q.key, value=bq, runner_up=second,
                             runner_up_value=sq, lead=ld))
    front, with_mem = pareto_set(summary, names, q)
    axes = f"{q.label}, speed" + (" and peak GPU memory" if with_mem else " (GPU memory not measured)")
    if front:
        head.append(_finding("pareto", f"Pareto set on {axes}: {', '.join(front)}.", models=front, metric=q.key,
                             with_memory=with_mem))
    disagreement = judges_disagree(summary, names)
    if disagreement is not None:
        head.append(disagreement)
    head.append(_finding("recommend_quality", f"For maximum quality: {best} ({q.label} {q.format(bq)}).",
                         model=best, metric=q.key, value=bq))
    usable = [n for n in front if n not in flagged] or front
    if usable:
        if with_mem:
            pick = min(usable, key=lambda n: summary.value(n, "gpu_memory_gb_peak"))  # type: ignore[arg-type,return-value]
            why = f"{summary.value(pick, 'gpu_memory_gb_peak'):.1f} GB peak GPU memory"
        else:
            pick = max(usable, key=lambda n: summary.value(n, "chars_per_s_mean"))  # type: ignore[arg-type,return-value]
            why = f"{summary.value(pick, 'chars_per_s_mean'):.0f} chars/s"
        head.append(_finding("recommend_constrained", f"For constrained hardware: {pick} ({why}, {q.label} "
                             f"{q.format(summary.value(pick, q.key))}), on the Pareto front and not flagged above.",
                             model=pick, metric=q.key, with_memory=with_mem))
    return head + out
