from pathlib import Path

import pytest

from vlmpipe.core.config import ConfigError, config_from_dict, load_config
from vlmpipe.tasks import resolve
from vlmpipe.tasks.request import RequestTask


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_config_gets_the_specification_defaults(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    cfg = load_config(write(tmp_path, "dataset: {path: shots}\nmodels: [{name: qwen}]\n"))
    assert cfg.repeats == 5
    assert cfg.concurrency == 1
    assert cfg.task == "request" and cfg.user_message is None and cfg.system_prompt is None  # the task's defaults
    resolve(cfg)
    assert cfg.user_message == "" and cfg.judge.mode == "both"
    m = cfg.models[0]
    assert (m.temperature, m.base_url, m.model_id) == (0.1, "http://localhost:8000/v1", "qwen")
    assert cfg.dataset.path == (tmp_path / "shots").resolve()  # relative to the config file
    assert "скриншот" in cfg.system_prompt and cfg.system_prompt == RequestTask().default_system_prompt()


def test_wrong_type_names_the_file_and_field(tmp_path: Path) -> None:
    p = write(tmp_path, "dataset: {path: x}\nmodels: [{name: a, temperature: hot}]\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "models.0.temperature" in msg
    assert "valid number" in msg


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    p = write(tmp_path, "dataset: {path: x}\nmodels: [{name: a, temprature: 0.2}]\n")
    with pytest.raises(ConfigError, match=r"models\.0\.temprature: unknown key"):
        load_config(p)


def test_missing_required_fields_and_duplicate_model_names() -> None:
    with pytest.raises(ConfigError, match=r"dataset: Field required"):
        config_from_dict({"models": [{"name": "a"}]}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"model name 'a' is used twice"):
        config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "a"}, {"name": "a"}]})


def test_judge_and_reference_consistency_is_checked() -> None:
    base = {"dataset": {"path": "x"}, "models": [{"name": "a"}]}
    with pytest.raises(ConfigError, match=r"judge\.model is not set"):
        config_from_dict({**base, "judge": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"references\.model is not set"):
        config_from_dict({**base, "references": {"source": "model"}})


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "dataset: [unclosed\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- just a list\n"))


def test_saved_config_has_key_variable_name_not_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-sentinel-0123456789abcdef")
    cfg = config_from_dict({"dataset": {"path": "x"}, "models": [{"name": "a", "api_key_env": "MY_KEY"}]})
    dumped = str(cfg.public_dict())
    assert "MY_KEY" in dumped and "sk-sentinel" not in dumped
