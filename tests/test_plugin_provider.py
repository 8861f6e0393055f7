"""The provider plugin of docs/extending.md, installed through a real entry point and run through the pipeline.

The doc's example is ``tests/plugins/vlmpipe_echo.py`` verbatim (checked here); its ``pyproject.toml`` lines
become the entry points of a distribution in ``tmp_path`` (a ``*.dist-info`` on ``sys.path``), and a run over the
bundled demo screenshots uses ``provider: echo``.
"""

from __future__ import annotations

import csv
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from plugin_helpers import install_distribution
from vlmpipe.app.demo import demo_dir
from vlmpipe.app.pipeline import report, run
from vlmpipe.core.config import ConfigError, config_from_dict
from vlmpipe.core.modelspec import PROVIDERS
from vlmpipe.core.rundir import existing_store
from vlmpipe.providers import provider_names

TESTS = Path(__file__).parent
PLUGIN = TESTS / "plugins" / "vlmpipe_echo.py"
DOC = TESTS.parent / "docs" / "extending.md"
TEXT = "Здравствуйте! Вопрос по скриншоту {item}."


def _doc_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## A provider plugin")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _block(section: str, lang: str) -> str:
    found = re.findall(rf"^```{lang}\n(.*?)^```$", section, flags=re.S | re.M)
    assert found, f"no ```{lang} block in the provider section of {DOC}"
    return found[0]


@pytest.fixture
def echo_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The doc's entry points installed as a distribution; the plugin module importable from tests/plugins."""
    project = tomllib.loads(_block(_doc_section(), "toml"))["project"]
    points = project["entry-points"]["vlmpipe.providers"]
    install_distribution(tmp_path / "site", monkeypatch, project["name"], {"vlmpipe.providers": points})
    monkeypatch.syspath_prepend(str(PLUGIN.parent))
    monkeypatch.delitem(sys.modules, "vlmpipe_echo", raising=False)
    PROVIDERS.refresh()
    yield points
    PROVIDERS.unregister("echo")
    PROVIDERS.refresh()  # read again (without the distribution) by the next test


def test_the_doc_shows_the_plugin_of_the_tests_verbatim() -> None:
    assert _block(_doc_section(), "python") == PLUGIN.read_text(encoding="utf-8")


def test_the_plugin_is_found_through_its_entry_point_and_validates_its_fields(echo_installed: dict[str, str]) -> None:
    assert echo_installed == {"echo": "vlmpipe_echo"}
    assert "vlmpipe_echo" not in sys.modules  # listed, not loaded, until a config names it
    assert provider_names() == ["echo", "ocr", "openai"]
    with pytest.raises(ConfigError, match=r"models\.0\.provider: unknown provider 'echoo'; known: echo, ocr, openai"):
        config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "e", "provider": "echoo"}]}, source="c.yaml")
    with pytest.raises(ConfigError) as err:
        config_from_dict({"dataset": {"path": "x"}, "models": [
            {"name": "e", "provider": "echo", "delay_s": -1, "base_url": "http://x/v1"}]}, source="c.yaml")
    assert "c.yaml: models.0.delay_s: Input should be greater than or equal to 0" in str(err.value)
    assert "c.yaml: models.0.base_url: unknown key for provider 'echo'" in str(err.value)
    assert PLUGIN.samefile(sys.modules["vlmpipe_echo"].__file__)  # the test tree's file, through the entry point


def test_a_run_with_the_plugin_stores_and_reports_its_generations(echo_installed: dict[str, str],
                                                                  tmp_path: Path) -> None:
    data = demo_dir() / "data"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "name": "echo", "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl"), "limit": 3},
        "models": [{"name": "echo-bot", "provider": "echo", "text": TEXT}],
        "repeats": 2, "concurrency": 2,
        "metrics": {"enabled": ["letters", "rouge", "chrf"]},
    }, allow_unicode=True), encoding="utf-8")

    result = run(config, show_progress=False)

    assert result.exit_code == 0, result.notes
    with existing_store(result.run_dir) as store:
        stored = [g for g in store.generations() if g["model"] == "echo-bot"]
        items = [i["id"] for i in store.items()]
    assert len(items) == 3 and len(stored) == 6
    assert sorted(g["text"] for g in stored) == sorted(TEXT.replace("{item}", i) for i in items for _ in range(2))
    assert all(g["error"] is None and g["latency_s"] is not None for g in stored)
    with (result.report_dir / "generations.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == "echo-bot"]
    assert sorted((r["item"], r["repeat"], r["text"]) for r in rows) == sorted(
        (i, str(rep), TEXT.replace("{item}", i)) for i in items for rep in range(2))
    assert result.summary.models["echo-bot"].n == 6 and result.summary.models["echo-bot"].n_errors == 0
    assert "echo: &#39;Здравствуйте! Вопрос по скриншоту {item}.&#39;" in (
        result.report_dir / "index.html").read_text(encoding="utf-8")
    # the run's saved config names the plugin and its fields, and loads again (vlmpipe report RUN)
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert saved["models"] == [{"name": "echo-bot", "provider": "echo", "concurrency": None, "text": TEXT,
                                "delay_s": 0.0}]
    again = report(result.run_dir)
    assert again.summary.models["echo-bot"].n == 6


def test_a_broken_plugin_is_a_config_error_only_where_it_is_used(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(tmp_path, monkeypatch, "vlmpipe-broken", {"vlmpipe.providers": {
        "broken": "vlmpipe_broken_plugin", "taker": "vlmpipe_taker_plugin"}}, {
        "vlmpipe_broken_plugin": "import vlmpipe_needs_this_package_xyz\n",
        "vlmpipe_taker_plugin": "from vlmpipe.providers import register_provider\n"
                                "from vlmpipe.providers.ocr import OcrSpec\n"
                                "register_provider(OcrSpec, lambda spec: None)\n",
    })
    PROVIDERS.refresh()
    try:
        ok = config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "q"}, {"name": "o", "provider": "ocr"}]})
        assert len(ok.models) == 2  # the broken plugin is listed, never imported
        with pytest.raises(ConfigError) as err:
            config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "b", "provider": "broken"}]},
                             source="c.yaml")
        assert ("c.yaml: models.0.provider: the provider plugin 'broken' (entry point broken = "
                "'vlmpipe_broken_plugin') could not be loaded: ModuleNotFoundError: No module named "
                "'vlmpipe_needs_this_package_xyz'") in str(err.value)
        with pytest.raises(ConfigError, match=r"models\.0\.provider: the provider plugin 'taker' .* could not be "
                                              r"loaded: RegistryError: provider 'ocr' is registered twice"):
            config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "t", "provider": "taker"}]})
    finally:
        PROVIDERS.refresh()
