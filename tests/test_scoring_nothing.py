"""A run whose generations all failed has nothing to score: no metric model is loaded (it took ~20 s for Gemma),
and the reasons given for the missing numbers are the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability_helpers import make_images, model
from vlmpipe.app.pipeline import run
from vlmpipe.core.config import config_from_dict
from vlmpipe.metrics.perplexity import PerplexityMetric


def test_no_successful_generation_loads_no_metric_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(PerplexityMetric, "unavailable", lambda self, ctx: calls.append("loaded") or None)
    data = tmp_path / "data"
    make_images(data, 2)
    cfg = config_from_dict({"name": "dead", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(data)},
                            "models": [model("dead", "http://127.0.0.1:9/v1", max_retries=0)], "repeats": 1,
                            "metrics": {"enabled": ["perplexity", "chrf"]}})
    result = run(cfg, show_progress=False)
    assert result.exit_code == 1 and calls == []
    m = json.loads((result.report_dir / "summary.json").read_text())["models"]["dead"]
    assert m["n_errors"] == 2 and m["perplexity_mean"] is None and m["chrf_mean"] is None
    assert m["unavailable"]["perplexity_mean"] == "no successful generation to score"
    assert m["unavailable"]["ttft_s"] == "no successful generation"  # the provider does stream
