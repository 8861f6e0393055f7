"""``report/index.html``: one self-contained page (plots and thumbnails inlined, CSS and JS inline).

The page assembles views of the typed summary (:class:`RunSummary`): its tables
(:mod:`vlmpipe.render.index_tables`: the ranking is the catalogue's ranking fields the run has), the plots
(:mod:`vlmpipe.render.plots`) and the gallery (:mod:`vlmpipe.render.gallery`: each answer's score chips are those
fields' per-generation values). Model output and judge explanations are untrusted: the Jinja2 template autoescapes
every value, and marks (misspellings, invented numbers) are applied by splitting the text into plain pieces, never
by building HTML from it. A Content-Security-Policy meta forbids every remote load; the one inline script is
allowed by its hash, so even text that escaped escaping could not run.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from vlmpipe.analysis.summary import RunSummary
from vlmpipe.render.gallery import gallery
from vlmpipe.render.index_tables import BENCH_COLUMNS, bench_rows, errors, ranking, settings, slice_tables, unavailable
from vlmpipe.render.page import content_security_policy, environment
from vlmpipe.render.plots import Plot

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

def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def render_index(cfg: Any, summary: RunSummary, items: list[dict[str, Any]], table: list[dict[str, Any]],
                 plots: list[Plot], judgements: list[dict[str, Any]] | None,
                 human: dict[str, float] | None = None) -> str:
    csp = content_security_policy(SORT_JS)
    template = environment().get_template("report.html.j2")
    status = summary.judge_status
    return template.render(
        csp=csp, script=SORT_JS, run=summary.run, findings=summary.findings, settings=settings(cfg, summary),
        ranking=ranking(summary), errors=errors(summary),
        plots=[{"title": p.title, "name": p.name, "src": png_data_url(p.path), "wide": p.wide} for p in plots],
        cards=gallery(cfg, items, table, summary, judgements, human), judge_run=judgements is not None,
        slices=slice_tables(summary), vqa=summary.run.task == "vqa",
        judge_message=(status.message if status else "")
        or "configure `judge:` in the run's config and run `vlmpipe judge RUN`.",
        unavailable=unavailable(summary), bench_columns=BENCH_COLUMNS, bench=bench_rows(summary.bench),
    )
