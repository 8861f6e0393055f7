"""The model catalogue (presets merged at config load), the eight-model example, and replicas."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeserver import FakeOpenAIServer
from vlmpipe.core.config import ConfigError, config_from_dict, load_config
from vlmpipe.core.presets import PRESETS
from vlmpipe.providers import Request, make_provider
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.providers.replicas import ReplicaProvider
from vlmpipe.stages.serving.launcher import build_command

EXAMPLE = Path(__file__).parent.parent / "examples" / "qwen2-vl-eight.yaml"


def test_the_eight_variants_with_the_specification_memory_ranges() -> None:
    assert len(PRESETS) == 8
    p = PRESETS["qwen2-vl-7b-instruct-awq"]
    assert (p.hf_id, p.size, p.weights, p.quantization, p.gpu_memory_gb) == (
        "Qwen/Qwen2-VL-7B-Instruct-AWQ", "7B", "AWQ", "awq", (7.07, 12.56))
    assert PRESETS["qwen2-vl-2b-instruct"].gpu_memory_gb == (4.68, 10.01)
    assert PRESETS["qwen2-vl-2b-instruct-gptq-int4"].hf_id == "Qwen/Qwen2-VL-2B-Instruct-GPTQ-Int4"
    assert PRESETS["qwen2-vl-7b-instruct"].launch["dtype"] == "bfloat16"


def test_preset_fills_model_and_launch_and_the_spec_wins() -> None:
    spec = OpenAISpec.model_validate({"preset": "qwen2-vl-7b-instruct-gptq-int8"})
    assert spec.name == "qwen2-vl-7b-instruct-gptq-int8" and spec.model_id == "Qwen/Qwen2-VL-7B-Instruct-GPTQ-Int8"
    assert spec.launch is not None and spec.launch.engine == "vllm" and spec.launch.dtype == "float16"
    spec = OpenAISpec.model_validate({"name": "awq", "preset": "qwen2-vl-2b-instruct-awq",
                                     "launch": {"gpu_memory_utilization": 0.4, "max_model_len": 4096}})
    argv = build_command(spec, 8000)
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen2-VL-2B-Instruct-AWQ"]
    assert argv[argv.index("--max-model-len") + 1] == "4096"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.4"
    assert "--quantization" not in argv  # vLLM reads the method from the checkpoint and picks its fastest kernel
    remote = OpenAISpec.model_validate({"preset": "qwen2-vl-2b-instruct", "launch": None,
                                       "base_url": "http://gpu-box:8000/v1"})
    assert remote.launch is None and remote.model_id == "Qwen/Qwen2-VL-2B-Instruct"


def test_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: models\.0: .*unknown preset 'qwen9'.*qwen2-vl-7b-instruct"):
        config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"preset": "qwen9"}]}, source="c.yaml")


def test_the_eight_model_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert [m.name for m in cfg.models] == list(PRESETS)
    assert all(m.launch is not None and m.launch.engine == "vllm" for m in cfg.models)
    assert cfg.dataset.path.is_dir()


async def test_replicas_share_the_requests_round_robin() -> None:
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        spec = OpenAISpec(name="m", model="fake-vlm", base_urls=[a.url, b.url])
        provider = make_provider(spec)
        assert isinstance(provider, ReplicaProvider)
        req = Request(item_id="i", image_url="data:image/png;base64,AAAA", system_prompt="s")
        gens = [await provider.generate(req) for _ in range(5)]
        await provider.aclose()
        assert all(g.ok for g in gens)
        assert [g.extra["replica"] for g in gens] == [a.url, b.url, a.url, b.url, a.url]
        assert (a.request_count, b.request_count) == (3, 2)


def test_models_command_shows_every_preset_name_whole_in_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console
    from typer.testing import CliRunner

    from vlmpipe.app import cli

    monkeypatch.setattr(cli, "console", Console(width=80))
    result = CliRunner().invoke(cli.app, ["models"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines) and "…" not in result.stdout  # nothing cut with an ellipsis
    rows = [ln.split("│")[1].strip() for ln in lines if ln.startswith("│")]
    assert rows == list(PRESETS)  # e.g. qwen2-vl-7b-instruct-gptq-int8 was shown as "qwen2-vl…"
    text = " ".join(result.stdout.split())
    assert ("qwen2-vl-7b-instruct-awq: Qwen/Qwen2-VL-7B-Instruct-AWQ; vLLM quantization=awq, max_model_len=8192"
            in text)
