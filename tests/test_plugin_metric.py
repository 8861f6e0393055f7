"""A metric added as a plugin (one module, an entry point) appears in every view with no report file edited.

The example of docs/extending.md (tests/plugins/exact_match_metric.py, verbatim) is installed as a distribution in a
temporary folder — a ``*.dist-info`` with ``entry_points.txt`` — and the demo runs with it in a fresh process
through the CLI. Its field ``exact_match_rate`` must then be in summary.json (with its interval), the console
ranking, index.html, the workbook, a plot and ``vlmpipe compare``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

from conftest import ROOT, TESTS

PLUGIN = TESTS / "plugins" / "exact_match_metric.py"


def install_plugin(site: Path) -> None:
    """What ``pip install`` of the plugin's package leaves on disk: the module and its dist-info."""
    site.mkdir(parents=True)
    (site / PLUGIN.name).write_text(PLUGIN.read_text(encoding="utf-8"), encoding="utf-8")
    info = site / "vlmpipe_exact_match-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vlmpipe-exact-match\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vlmpipe.metrics]\nexact_match = exact_match_metric\n")


def vlmpipe(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}
    return subprocess.run([sys.executable, "-m", "vlmpipe.app.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_extending_doc_shows_the_plugin_the_test_installs() -> None:
    doc = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    assert PLUGIN.read_text(encoding="utf-8") in doc


def test_a_metric_plugin_reaches_every_view(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    runs = tmp_path / "runs"
    res = vlmpipe(site, "demo", "--out", str(runs), "--quiet")
    assert res.returncode == 0, res.stderr
    report = runs / "demo" / "report"

    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    (model,) = summary["models"].values()
    # the OCR baseline never words a request exactly as the hand-written reference: 0 of 8, interval [0, 0]
    assert model["exact_match_rate"] == 0.0
    assert model["fields"]["exact_match_rate"] == {"value": 0.0, "ci95": [0.0, 0.0], "ci95_naive": [0.0, 0.0],
                                                   "n": 8, "n_items": 8, "unavailable": None}
    header = next(ln for ln in res.stdout.splitlines() if ln.lstrip().startswith("model"))
    assert "exact match" in header  # the console ranking

    html = (report / "index.html").read_text(encoding="utf-8")
    ranking = html[html.index('id="ranking-table"'):html.index("</table>", html.index('id="ranking-table"'))]
    assert "exact match" in ranking

    wb = load_workbook(report / "results.xlsx", read_only=True)
    summary_header = next(wb["summary"].iter_rows(max_row=1, values_only=True))
    assert "exact_match_rate" in summary_header
    metrics_header = next(wb["auto_metrics"].iter_rows(max_row=1, values_only=True))
    assert "exact_match" in metrics_header
    with (report / "generations.csv").open(encoding="utf-8") as f:
        assert "exact_match" in f.readline().strip().split(",")

    assert (report / "field_exact_match_rate.png").is_file()  # its interval plot

    compared = vlmpipe(site, "compare", str(runs / "demo"), str(runs / "demo"))
    assert compared.returncode == 0, compared.stderr
    assert "exact_match_rate" in compared.stdout
