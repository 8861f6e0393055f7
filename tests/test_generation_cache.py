"""``cache: true`` (issue 16): a generation whose request is identical to one already answered is not sent again —
the reference model's, and any model's at temperature 0 — and such generations are left out of the speed
statistics with the reason. Without ``cache: true`` (the default) every repeat is sent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from conftest import summary_json
from fakeserver import FakeOpenAIServer
from reliability_helpers import make_images, model, write_manifest
from vlmpipe.app.pipeline import open_store, run
from vlmpipe.core.config import config_from_dict


def config(tmp_path: Path, url: str, *, cache: bool, repeats: int = 3) -> Any:
    data = tmp_path / "data"
    if not data.exists():
        make_images(data, 2)
        write_manifest(data, [{"image": f"shot_{i}.png"} for i in range(2)])
    return config_from_dict({
        "name": "cached", "output_dir": str(tmp_path / "runs"), "cache": cache,
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [model("zero", url, model="zero", temperature=0.0),
                   model("warm", url, model="warm", temperature=0.7)],
        "references": {"source": "model", "samples": 2, "model": model("ref", url, model="ref", temperature=0.5)},
        "repeats": repeats, "concurrency": 3, "metrics": {"enabled": ["letters"]},
    }, base_dir=tmp_path)


def test_identical_generation_requests_are_sent_once_with_cache_true(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=lambda body: f"Ответ модели {body['model']}.") as srv:
        result = run(config(tmp_path, srv.url, cache=True), show_progress=False)
        sent = Counter(b["model"] for b in srv.requests)
        # temperature 0: one request per screenshot, the other repeats reuse it; the reference model's samples too;
        # at temperature 0.7 every repeat is a sample and is sent
        assert sent == {"zero": 2, "warm": 6, "ref": 2}
        with open_store(result.run_dir) as store:
            rows = store.generations()
        zero = [r for r in rows if r["model"] == "zero"]
        assert Counter(r["source"] for r in zero) == {None: 2, "cache": 4}
        assert all(r["text"] == "Ответ модели zero." and r["error"] is None for r in zero)
        assert all(r["latency_s"] is None and r["prompt_tokens"] is None for r in zero if r["source"] == "cache")
        assert len({r["request_hash"] for r in zero}) == 2
        s = summary_json(result)["models"]["zero"]
        assert s["n"] == 6 and s["n_errors"] == 0
        why = s["unavailable"]["latency_s"]
        assert why.startswith("4 of 6 successful generations carry no latency and are left out of the speed "
                              "statistics") and "cache: true" in why
        assert s["latency_s"] is not None  # over the two requests that were sent
        assert "latency_s" not in summary_json(result)["models"]["warm"]["unavailable"]
        # a repeat added later is answered from the cache: nothing is sent for the model at temperature 0
        before = Counter(b["model"] for b in srv.requests)
        run(config(tmp_path, srv.url, cache=True, repeats=4), show_progress=False)
        assert Counter(b["model"] for b in srv.requests) - before == {"warm": 2}


def test_without_cache_every_repeat_is_sent(tmp_path: Path) -> None:
    with FakeOpenAIServer() as srv:
        result = run(config(tmp_path, srv.url, cache=False), show_progress=False)
        assert Counter(b["model"] for b in srv.requests) == {"zero": 6, "warm": 6, "ref": 4}
    s = summary_json(result)["models"]["zero"]
    assert "latency_s" not in s["unavailable"]
    assert s["latency_s"] is not None
