"""``report/index.html``: one self-contained page (plots and thumbnails inlined, CSS and JS inline).

Model output and judge explanations are untrusted: the Jinja2 template autoescapes every value, and marks
(misspellings, invented numbers) are applied by splitting the text into plain pieces, never by building HTML
from it. A Content-Security-Policy meta forbids every remote load; the one inline script is allowed by its hash,
so even text that escaped escaping could not run.
"""

from __future__ import annotations

import base64
import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from vlmpipe.analysis import access
from vlmpipe.core.dataset import resolve_image_path
from vlmpipe.render import data
from vlmpipe.render.page import content_security_policy, environment
from vlmpipe.render.plots import Plot

log = logging.getLogger("vlmpipe.render")

THUMB_SIDE = 520

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.tabIndex = 0;
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        if (x === '' && y !== '') { return 1; }
        if (y === '' && x !== '') { return -1; }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
""".strip()

#: Ranking columns: (title, summary path, format).
RANKING = [("n", "n", "{:.0f}"), ("errors", "n_errors", "{:.0f}"), ("judge ratio", "judge.ratio_mean", "{:.3f}"),
           ("win rate", "judge.win_rate", "{:.0%}"), ("chrF", "chrf_mean", "{:.1f}"),
           ("ROUGE-1", "rouge1_f_mean", "{:.3f}"), ("BLEURT", "bleurt_mean", "{:.3f}"),
           ("fact recall", "fact_recall_mean", "{:.2f}"), ("invented numbers", "hallucinated_number_rate", "{:.1%}"),
           ("off-language", "off_language_rate", "{:.1%}"), ("spelling Σ", "spelling_errors_sum", "{:.0f}"),
           ("perplexity", "perplexity_mean", "{:.1f}"), ("consistency", "consistency_mean", "{:.1f}"),
           ("latency p50, s", "latency_s.p50", "{:.2f}"), ("latency max, s", "latency_s.max", "{:.2f}"),
           ("chars/s", "chars_per_s_mean", "{:.0f}"), ("GPU GB", "gpu_memory_gb_peak", "{:.1f}")]

#: Per-answer score chips: (label, metric column, format).
CHIPS = [("chrF", "chrf", "{:.1f}"), ("ROUGE-1", "rouge1_f", "{:.2f}"), ("BLEURT", "bleurt", "{:.2f}"),
         ("facts", "fact_recall", "{:.0%}"), ("spelling", "spelling_errors", "{:.0f}"),
         ("perplexity", "perplexity", "{:.1f}")]


def thumbnail(path: Path, side: int = THUMB_SIDE) -> str | None:
    """A downscaled JPEG data URL of an image file, or ``None`` when it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB") if im.mode != "RGB" else im
            im.thumbnail((side, side * 3))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=82)
    except Exception as err:  # a broken image gets a placeholder, never a failed report
        log.info("no thumbnail for %s: %s", path, err)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def ranked(summary: dict[str, Any]) -> list[str]:
    """Model names best first by the run's quality measure (judge ratio, else chrF, else ROUGE-1)."""
    names = access.models(summary)
    q = access.quality_field(summary, access.models(summary, role="candidate") or names)
    if q:
        names = sorted(names, key=lambda n: -(access.value(summary, n, q[0]) or float("-inf")))
    return names


def ranking(summary: dict[str, Any]) -> dict[str, Any]:
    names = ranked(summary)
    cols = [c for c in RANKING if access.present(summary, c[1])]
    rows = []
    for n in names:
        cells = []
        for _, path, fmt in cols:
            v = access.value(summary, n, path)
            text = "—" if v is None else fmt.format(v)
            if path == "judge.ratio_mean" and (ci := access.interval(summary, n)):
                text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append({"v": "" if v is None else repr(v), "text": text})
        role = summary["models"][n].get("role", "candidate")
        rows.append({"name": n, "role": role, "cells": cells})
    return {"columns": [c[0] for c in cols], "rows": rows}


#: What the error kinds the providers record (``Generation.error_kind``) mean; others are shown as they are.
ERROR_KINDS = {
    "timeout": "no complete answer within the model's timeout", "connection": "the server could not be reached",
    "http_429": "rate limited (HTTP 429)", "server": "the model's server could not be started or crashed",
    "bad_response": "a malformed response", "empty": "an empty answer", "refusal": "the model refused",
    "stream_error": "the stream reported an error", "truncated": "the stream ended before the answer was complete",
    "image": "the screenshot could not be read", "unavailable": "the provider is not available here",
    "imported": "recorded as failed in the imported results", "error": "an error without a kind",
}


def error_kind_note(kind: str) -> str:
    if kind in ERROR_KINDS:
        return ERROR_KINDS[kind]
    if kind.startswith("http_5"):
        return f"server error (HTTP {kind[5:]})"
    if kind.startswith("http_4"):
        return f"request rejected (HTTP {kind[5:]})"
    return ""


def errors(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The per-model errors table (``n``, errors, error rate, one column per error kind), models in ranking order;
    ``None`` when no model has errors."""
    names = ranked(summary)
    by_kind = {n: {str(k): int(v) for k, v in (summary["models"][n].get("errors_by_kind") or {}).items()
                   if access.number(v)} for n in names}
    totals: dict[str, int] = defaultdict(int)
    for counts in by_kind.values():
        for k, v in counts.items():
            totals[k] += v
    if not totals and not any(access.value(summary, n, "n_errors") for n in names):
        return None
    kinds = sorted(totals, key=lambda k: (-totals[k], k))
    rows = []
    for n in names:
        count, rate = access.value(summary, n, "n_errors"), access.value(summary, n, "error_rate")
        rows.append({"name": n, "role": summary["models"][n].get("role", "candidate"), "cells": [
            {"v": "" if count is None else repr(count), "text": "—" if count is None else f"{count:.0f}"},
            {"v": "" if rate is None else repr(rate), "text": "—" if rate is None else f"{rate:.1%}"},
            *({"v": str(by_kind[n].get(k, 0)), "text": str(by_kind[n].get(k, 0))} for k in kinds)]})
    return {"columns": ["errors", "error rate", *kinds], "rows": rows,
            "legend": [(k, note) for k in kinds if (note := error_kind_note(k))]}


def gallery(cfg: Any, items: list[dict[str, Any]], table: list[dict[str, Any]], summary: dict[str, Any],
            judgements: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One card per screenshot: the image, the reference, and every model's answers with their marks."""
    expected = getattr(getattr(cfg, "metrics", None), "expected_language", "ru")
    root = Path(cfg.dataset.path) if cfg is not None else None
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for j in judgements or []:
        if (k := data.generation_key(j)):
            by_key[k].append(data.judgement_view(j))
    per_item: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in table:
        mk = data.marks(r["metrics"], expected)
        text = r["text"] if r["error"] is None else None
        chips = [{"label": lbl, "text": fmt.format(v)} for lbl, col, fmt in CHIPS
                 if (v := access.number(r["metrics"].get(col, (None, None))[0])) is not None]
        per_item[r["item"]][r["model"]].append({
            "repeat": r["repeat"], "error": r["error"], "latency": access.number(r.get("latency_s")),
            "segments": data.segments(text, mk["misspelled"], mk["invented"]) if text is not None else [],
            "marks": mk, "chips": chips, "judgements": by_key.get(r["key"], []),
        })
    order = access.models(summary)
    cards = []
    for it in items:
        image = None
        note = None
        src = str(it.get("image") or "")
        if src.startswith(("http://", "https://")):
            note = "remote image (not embedded: the report loads nothing from the network)"
        elif root is not None and src:
            try:
                image = thumbnail(resolve_image_path(root, src))
            except Exception as err:  # a path outside the dataset, a missing file
                note = f"image not available: {err}"
            if image is None and note is None:
                note = "image not available"
        else:
            note = "image not available"
        answers = per_item.get(it["id"], {})
        cards.append({
            "id": it["id"], "image": image, "image_note": note, "image_name": src,
            "reference": it.get("reference"), "facts": it.get("facts") or [], "error": it.get("error"),
            "models": [{"name": m, "answers": answers[m]} for m in order if m in answers],
        })
    return cards


BENCH_COLUMNS = ["model", "concurrency", "ok / n", "req/s", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "E2E p50 ms",
                 "E2E p99 ms", "errors", "freezes", "GPU GB peak", "prefix cache"]


def bench_rows(section: Any) -> list[list[str]]:
    """The ``bench`` section (``vlmpipe bench``) as table rows: one per model and concurrency level."""
    def ms(d: Any, q: str) -> str:
        v = access.number(get_q(d, q))
        return "—" if v is None else f"{1000 * v:.0f}"

    def get_q(d: Any, q: str) -> Any:
        return d.get(q) if isinstance(d, dict) else None

    def num(v: Any, fmt: str) -> str:
        n = access.number(v)
        return "—" if n is None else fmt.format(n)

    rows = []
    if not isinstance(section, dict):
        return rows
    for name, entry in (section.get("models") or {}).items():
        for level, d in (entry.get("levels") or {}).items():
            if not isinstance(d, dict):
                continue
            if d.get("error"):
                rows.append([name, str(level), "server failed: " + str(d["error"]).splitlines()[0]] + ["—"] * 10)
                continue
            rows.append([name, str(level), f"{d.get('completed', '—')} / {d.get('requests', '—')}",
                         num(d.get("request_throughput"), "{:.2f}"), num(d.get("output_tokens_per_s"), "{:.1f}"),
                         ms(d.get("ttft_s"), "p50"), ms(d.get("ttft_s"), "p99"),
                         ms(d.get("e2e_latency_s"), "p50"), ms(d.get("e2e_latency_s"), "p99"),
                         num(d.get("error_rate"), "{:.0%}"), str(d.get("freezes", "—")),
                         num(d.get("gpu_memory_gb_peak"), "{:.1f}"), str(entry.get("prefix_caching", "unknown"))])
    return rows


def settings(cfg: Any, summary: dict[str, Any]) -> list[tuple[str, str]]:
    run = summary.get("run", {})
    rows = [("run", str(run.get("name"))), ("screenshots", str(run.get("items"))),
            ("repeats", str(run.get("repeats"))), ("prompt hash", str(run.get("prompt_hash")))]
    if cfg is not None:
        rows.append(("dataset", str(cfg.dataset.path)))
        for m in cfg.models:
            rows.append((f"model {m.name}", m.describe()))
        rows.append(("references", cfg.references.source))
        judge = cfg.judge
        rows.append(("judge", f"{', '.join(j.model_id for j in judge.judges)} ({judge.mode})"
                     if judge.enabled and judge.judges else "not configured"))
        rows.append(("expected language", cfg.metrics.expected_language))
    return rows


def unavailable(summary: dict[str, Any]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for m in summary.get("models", {}).values():
        for k, why in (m.get("unavailable") or {}).items():
            seen.setdefault(k, str(why))
    return sorted(seen.items())


def render_index(cfg: Any, summary: dict[str, Any], items: list[dict[str, Any]], table: list[dict[str, Any]],
                 plots: list[Plot], judgements: list[dict[str, Any]] | None) -> str:
    csp = content_security_policy(SORT_JS)
    template = environment().get_template("report.html.j2")
    return template.render(
        csp=csp, script=SORT_JS, summary=summary, run=summary.get("run", {}),
        findings=summary.get("findings", []), settings=settings(cfg, summary), ranking=ranking(summary),
        errors=errors(summary),
        plots=[{"title": p.title, "name": p.name, "src": png_data_url(p.path)} for p in plots],
        cards=gallery(cfg, items, table, summary, judgements), judge_run=judgements is not None,
        judge_message=(summary.get("judge_status") or {}).get("message")
        or "configure `judge:` in the run's config and run `vlmpipe judge RUN`.",
        unavailable=unavailable(summary), bench_columns=BENCH_COLUMNS, bench=bench_rows(summary.get("bench")),
    )
