"""examples/pipeline.ipynb runs headlessly on the demo data and shows tables and plots inline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from components import optional_import

nbformat = optional_import("nbformat")
nbclient = optional_import("nbclient")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.needs("notebook", "tesseract")
def test_notebook_executes_on_demo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMPIPE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(ROOT / "examples" / "pipeline.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "exit code: 0" in text and "index.html" in text
    assert "[best]" in text  # findings printed
    assert "'tech_stats': (8," in text  # 8 demo screenshots × 1 repeat
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) >= 2  # the technical-statistics table and the latency plot at least
    tables = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.data]
    assert len(tables) >= 3
    assert (tmp_path / "runs" / "demo" / "report" / "index.html").is_file()
