"""``report/index.html``: one self-contained page (plots and thumbnails inlined, CSS and JS inline), beside the
full-size screenshots in ``report/images/``.

The page assembles views of the typed summary (:class:`RunSummary`): its tables
(:mod:`vlmpipe.render.index_tables`: the ranking is the catalogue's ranking fields the run has), the plots
(:mod:`vlmpipe.render.plots`) and the gallery (:mod:`vlmpipe.render.gallery`: each answer's score chips are those
fields' per-generation values). Model output and judge explanations are untrusted: the Jinja2 templates autoescape
every value, and marks (misspellings, invented numbers) are applied by splitting the text into plain pieces, never
by building HTML from it. A Content-Security-Policy meta forbids every remote load; the one inline script is
allowed by its hash, so even text that escaped escaping could not run.

The gallery pages: each card is rendered by its own template (``_card.html.j2``). On a run of up to
:data:`PACK_ABOVE` answers every card is in the page as it is (readable without JavaScript); on a larger one only the
first page's, and the others are gzip-packed into a data block (``<script type="application/octet-stream">``,
never executed) that the page's script unpacks with the browser's ``DecompressionStream`` when a later page is
shown. A filter index (each answer's model and flags) lets the script
page and filter by model and by flag (failed, off-language, invented numbers, refusal, misspelled, invents an
answer) without unpacking; it shows only the answers that match and opens the repeats that hold them. A thousand
screenshots × 8 models × 5 repeats make a page of under 10 MB that opens in about a second.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from markupsafe import Markup

from vlmpipe.analysis.summary import RunSummary
from vlmpipe.render.gallery import FLAGS, card_answers, cards
from vlmpipe.render.index_tables import BENCH_COLUMNS, bench_rows, errors, ranking, settings, slice_tables, unavailable
from vlmpipe.render.page import content_security_policy, environment
from vlmpipe.render.plots import Plot

#: Gallery cards per page.
GALLERY_PAGE = 20
#: Runs with more answers than this keep only the first page's cards as HTML and pack the others.
PACK_ABOVE = 4000

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

GALLERY_JS = """
(function () {
  var indexEl = document.getElementById('gallery-index');
  var box = document.getElementById('gallery-cards');
  if (!indexEl || !box) { return; }
  var index = JSON.parse(indexEl.textContent);
  var els = Array.prototype.slice.call(box.querySelectorAll(':scope > section.card'));
  var modelSel = document.getElementById('gallery-model'), flagSel = document.getElementById('gallery-flag');
  var prev = document.getElementById('gallery-prev'), next = document.getElementById('gallery-next');
  var status = document.getElementById('gallery-status');
  var state = {model: -1, flag: 0, page: 0};
  var unpacked = null;
  document.getElementById('gallery-controls').hidden = false;

  function unpack() {  // the packed cards' HTML (escaped by the templates), unpacked once
    if (!unpacked) {
      var el = document.getElementById('gallery-packed');
      if (!el) {
        unpacked = Promise.resolve([]);
      } else if (typeof DecompressionStream === 'undefined') {
        unpacked = Promise.reject(new Error('this browser cannot unpack the other cards (no DecompressionStream): ' +
                                            'see generations.csv'));
      } else {
        var bin = atob(el.textContent.trim()), bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
        unpacked = new Response(stream).text().then(JSON.parse);
      }
    }
    return unpacked;
  }
  function active() { return state.model >= 0 || state.flag > 0; }
  function matches(code) {
    return (state.model < 0 || Math.floor(code / 64) === state.model) && (!state.flag || (code & state.flag) !== 0);
  }
  function hits(i) {
    var codes = index.cards[i], n = 0;
    for (var j = 0; j < codes.length; j++) { if (matches(codes[j])) { n++; } }
    return n;
  }
  function element(i, htmls) {
    if (!els[i]) {
      var t = document.createElement('template');
      t.innerHTML = htmls[i - index.static];
      els[i] = t.content.firstElementChild;
    }
    return els[i];
  }
  function filterAnswers(card) {
    var model = state.model >= 0 ? index.models[state.model] : null;
    var flag = state.flag ? index.flags[String(state.flag)] : null;
    card.querySelectorAll('.gen').forEach(function (g) {
      var marked = g.querySelector('[data-flags]');
      var flags = ' ' + (marked ? marked.getAttribute('data-flags') : '') + ' ';
      var ok = (model === null || g.getAttribute('data-model') === model) &&
        (flag === null || flags.indexOf(' ' + flag + ' ') >= 0);
      g.hidden = !ok;
    });
    card.querySelectorAll('details.repeats').forEach(function (d) {
      d.open = active() && !!d.querySelector('.gen:not([hidden])');
    });
    card.querySelectorAll('.model, .entry').forEach(function (m) {
      m.hidden = active() && !m.querySelector('.gen:not([hidden])');
    });
  }
  function show() {
    var shown = [], answers = 0;
    for (var i = 0; i < index.cards.length; i++) {
      var n = active() ? hits(i) : 1;
      if (n) { shown.push(i); answers += n; }
    }
    var pages = Math.max(1, Math.ceil(shown.length / index.page));
    state.page = Math.max(0, Math.min(state.page, pages - 1));
    var page = shown.slice(state.page * index.page, (state.page + 1) * index.page);
    var say = (shown.length ? 'screenshots ' + (state.page * index.page + 1) + '–' +
               (state.page * index.page + page.length) + ' of ' + shown.length : 'no screenshot') +
              (active() ? ' with a matching answer (' + answers + ' answers)' : '') +
              ' · page ' + (state.page + 1) + ' of ' + pages;
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    var draw = function (htmls) {
      var frag = document.createDocumentFragment();
      page.forEach(function (i) { var c = element(i, htmls); filterAnswers(c); frag.appendChild(c); });
      box.replaceChildren(frag);
      status.textContent = say;
      box.setAttribute('data-page', String(state.page));
    };
    if (page.some(function (i) { return i >= index.static; })) {
      status.textContent = 'unpacking…';
      unpack().then(draw, function (err) { status.textContent = String(err.message || err); });
    } else {
      draw(null);
    }
  }
  modelSel.addEventListener('change', function () { state.model = modelSel.value === '' ? -1 : +modelSel.value;
                                                    state.page = 0; show(); });
  flagSel.addEventListener('change', function () { state.flag = flagSel.value === '' ? 0 : +flagSel.value;
                                                   state.page = 0; show(); });
  prev.addEventListener('click', function () { state.page--; show(); });
  next.addEventListener('click', function () { state.page++; show(); });
  show();
})();
""".strip()

SCRIPT = SORT_JS + "\n" + GALLERY_JS


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def gallery_view(cfg: Any, models: list[str], items: list[dict[str, Any]], rows: Iterable[dict[str, Any]],
                 judgements: list[dict[str, Any]] | None, human: dict[str, float] | None = None, *,
                 images_dir: Path | None = None, page_size: int = GALLERY_PAGE,
                 static_cards: int | None = None) -> dict[str, Any]:
    """The gallery's parts: the first ``static_cards`` cards as HTML (all of them when ``None``), the others packed
    (base64 of a gzip'd JSON list of their HTML; ``""`` when there are none), the filter index, the models (in the
    summary's order) and the flags the run has."""
    template = environment().get_template("_card.html.j2")
    models = list(models)
    static: list[Markup] = []
    answers: list[list[int]] = []
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, what DecompressionStream("gzip") reads
    packed: list[bytes] = []
    n_packed = 0
    for card in cards(cfg, items, rows, models, judgements, human, images_dir):
        html = template.render(card=card)
        answers.append(card_answers(card, models))
        if static_cards is None or len(static) < static_cards:
            static.append(Markup(html))  # rendered with autoescape: model text in it is escaped
            continue
        packed.append(packer.compress((("[" if not n_packed else ",") + json.dumps(html)).encode()))
        n_packed += 1
    if n_packed:
        packed.append(packer.compress(b"]") + packer.flush())
    counts = [sum(1 for codes in answers for c in codes if c & (1 << i)) for i in range(len(FLAGS))]
    flags = [{"flag": f, "label": label, "bit": 1 << i, "count": counts[i]}
             for i, (f, label) in enumerate(FLAGS) if counts[i]]
    return {"static": static, "packed": base64.b64encode(b"".join(packed)).decode() if n_packed else "",
            "total": len(answers), "models": models, "flags": flags,
            "index": {"models": models, "flags": {str(1 << i): f for i, (f, _l) in enumerate(FLAGS)},
                      "page": page_size, "static": len(static), "cards": answers}}


def render_index(cfg: Any, summary: RunSummary, items: list[dict[str, Any]], rows: Iterable[dict[str, Any]] | None,
                 plots: list[Plot], judgements: list[dict[str, Any]] | None,
                 human: dict[str, float] | None = None, *, images_dir: Path | None = None,
                 page_size: int = GALLERY_PAGE, static_cards: int | None = None,
                 gallery: dict[str, Any] | None = None) -> str:
    """index.html. ``rows``: the run's rows in screenshot order (``iter_table(store, order="screenshot")``),
    streamed into the gallery (:func:`gallery_view`), unless ``gallery`` is already made; ``images_dir``: where the
    full-size screenshots are copied (``report/images``)."""
    return "".join(index_parts(cfg, summary, items, rows, plots, judgements, human, images_dir=images_dir,
                               page_size=page_size, static_cards=static_cards, gallery=gallery))


def write_index(path: Path, *args: Any, **kwargs: Any) -> None:
    """:func:`render_index` written to ``path`` piece by piece (the page is never one string in memory)."""
    with Path(path).open("w", encoding="utf-8") as f:
        f.writelines(index_parts(*args, **kwargs))


def index_parts(cfg: Any, summary: RunSummary, items: list[dict[str, Any]], rows: Iterable[dict[str, Any]] | None,
                plots: list[Plot], judgements: list[dict[str, Any]] | None,
                human: dict[str, float] | None = None, *, images_dir: Path | None = None,
                page_size: int = GALLERY_PAGE, static_cards: int | None = None,
                gallery: dict[str, Any] | None = None) -> Iterator[str]:
    """The pieces of :func:`render_index`, as the template produces them."""
    if gallery is None:
        gallery = gallery_view(cfg, summary.names(), items, rows or [], judgements, human, images_dir=images_dir,
                               page_size=page_size, static_cards=static_cards)
    csp = content_security_policy(SCRIPT)
    template = environment().get_template("report.html.j2")
    status = summary.judge_status
    return template.generate(
        csp=csp, script=SCRIPT, run=summary.run, findings=summary.findings, settings=settings(cfg, summary),
        ranking=ranking(summary), errors=errors(summary),
        plots=[{"title": p.title, "name": p.name, "src": png_data_url(p.path), "wide": p.wide} for p in plots],
        gallery=gallery,
        judge_run=judgements is not None,
        slices=slice_tables(summary), vqa=summary.run.task == "vqa",
        judge_message=(status.message if status else "")
        or "configure `judge:` in the run's config and run `vlmpipe judge RUN`.",
        unavailable=unavailable(summary), bench_columns=BENCH_COLUMNS, bench=bench_rows(summary.bench),
    )
