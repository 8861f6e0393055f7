"""Model entries are typed by their provider: each provider validates its own fields, unknown providers and
fields of another provider are config errors naming file and field, earlier configs still load, generation keys
of existing runs do not change, and the code asks the spec (keys, report row, provider) instead of its name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import yaml

from vlmpipe.core.config import ConfigError, RunConfig, config_from_dict, load_config
from vlmpipe.core.keys import require_api_keys
from vlmpipe.core.modelspec import PROVIDERS, ModelSpec, parse_model_spec
from vlmpipe.core.runlog import config_secrets
from vlmpipe.providers import Generation, Request, make_provider, provider_names, register_provider
from vlmpipe.providers.ocr import DEFAULT_TEMPLATE, OcrProvider, OcrSpec
from vlmpipe.providers.openai_compat import OpenAICompatProvider
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.plan import generation_key

SAVED = Path(__file__).parent / "data" / "saved_config_before_provider_specs.yaml"


def _cfg(*models: dict[str, Any], **over: Any) -> RunConfig:
    return config_from_dict({"dataset": {"path": "x"}, "models": list(models), **over}, source="c.yaml")


def _error(*models: dict[str, Any], **over: Any) -> str:
    with pytest.raises(ConfigError) as err:
        _cfg(*models, **over)
    return str(err.value)


# --- the union: each provider's own fields -----------------------------------------------------------------
def test_the_provider_picks_the_spec_class_openai_by_default() -> None:
    cfg = _cfg({"name": "qwen"}, {"name": "ocr-baseline", "provider": "ocr", "lang": "rus", "psm": 6})
    qwen, ocr = cfg.models
    assert type(qwen) is OpenAISpec and qwen.provider == "openai" and qwen.base_url == "http://localhost:8000/v1"
    assert type(ocr) is OcrSpec and (ocr.lang, ocr.psm, ocr.template) == ("rus", 6, DEFAULT_TEMPLATE)
    assert {"openai", "ocr"} <= set(provider_names())


def test_unknown_provider_lists_the_known_ones_with_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("dataset: {path: x}\nmodels: [{name: a}, {name: b, provider: tesseract}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: models.1.provider: unknown provider 'tesseract'; known: ocr, openai" in str(err.value)
    msg = _error({"name": "a"}, references={"source": "model", "model": {"name": "r", "provider": "gpt"}})
    assert "c.yaml: references.model.provider: unknown provider 'gpt'; known: ocr, openai" in msg
    assert "models.0.provider: must be a provider's name such as 'openai'" in _error({"name": "a", "provider": 3})
    assert "models.0: a model entry must be a mapping of keys to values" in _error("qwen")  # type: ignore[arg-type]


def test_a_field_of_another_provider_is_an_unknown_key_naming_the_providers_fields() -> None:
    msg = _error({"name": "o", "provider": "ocr", "base_url": "http://localhost:8000/v1", "temperature": 0})
    assert ("c.yaml: models.0.base_url: unknown key for provider 'ocr' (check the spelling, and the provider: its "
            "keys are name, provider, concurrency, lang, psm, template, unreadable, timeout_s)") in msg
    assert "c.yaml: models.0.temperature: unknown key for provider 'ocr'" in msg
    msg = _error({"name": "q", "lang": "rus", "temperature": "hot"})  # other errors keep their own message
    assert "c.yaml: models.0.lang: unknown key for provider 'openai'" in msg
    assert "c.yaml: models.0.temperature: Input should be a valid number" in msg
    msg = _error({"name": "q", "launch": {"engin": "vllm"}})  # a nested mapping's unknown key is its own
    assert "c.yaml: models.0.launch.engin: unknown key (check the spelling; see the README for the fields)" in msg
    assert "judge.model: Value error, provider 'ocr' cannot be the judge" in _error(
        {"name": "q"}, judge={"enabled": True, "model": {"name": "j", "provider": "ocr"}})


def test_the_ocr_spec_validates_its_own_options() -> None:
    assert "models.0.lang: String should match pattern" in _error({"name": "o", "provider": "ocr", "lang": "rus eng"})
    assert "models.0.psm: Input should be less than or equal to 13" in _error(
        {"name": "o", "provider": "ocr", "psm": 14})
    assert "psm 0 reads no text" in _error({"name": "o", "provider": "ocr", "psm": 0})
    assert "the template must contain {lines}" in _error({"name": "o", "provider": "ocr", "template": "Помогите"})
    msg = _error({"name": "o", "provider": "ocr", "template": "{lines} {user}"})
    assert "models.0.template: Value error, the template must contain {lines}" in msg and "['user']" in msg
    ok = _cfg({"name": "o", "provider": "ocr", "template": "{{скрин}}: {lines}"}).models[0]
    assert isinstance(ok, OcrSpec) and ok.template == "{{скрин}}: {lines}"


# --- earlier configs ---------------------------------------------------------------------------------------
def test_a_run_saved_before_provider_specs_still_loads(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(SAVED, run_dir / "config.yaml")
    cfg = load_config(run_dir / "config.yaml")
    ocr, qwen = cfg.models
    assert isinstance(ocr, OcrSpec) and (ocr.lang, ocr.timeout_s, ocr.psm) == ("rus", 60.0, None)
    assert isinstance(qwen, OpenAISpec) and qwen.launch is not None and qwen.launch.max_model_len == 4096
    assert isinstance(cfg.judge.model, OpenAISpec) and cfg.judge.model.stream is False
    # saved again and read back: the same config
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.public_dict(), allow_unicode=True)))
    assert again.public_dict() == cfg.public_dict()
    saved_ocr = cfg.public_dict()["models"][0]
    assert "base_url" not in saved_ocr and "extra_body" not in saved_ocr and saved_ocr["lang"] == "rus"


def test_earlier_ocr_options_in_extra_body_map_to_lang() -> None:
    ocr = _cfg({"name": "o", "provider": "ocr", "extra_body": {"lang": "rus+eng"}}).models[0]
    assert isinstance(ocr, OcrSpec) and ocr.lang == "rus+eng"
    assert "lang 'rus' and extra_body.lang 'eng' disagree" in _error(
        {"name": "o", "provider": "ocr", "lang": "rus", "extra_body": {"lang": "eng"}})
    assert "models.0.lang: String should match pattern" in _error(
        {"name": "o", "provider": "ocr", "extra_body": {"lang": "rus; rm -rf"}})


def test_generation_keys_of_openai_models_are_unchanged() -> None:
    """The keys computed by the code before provider specs (commit ffc57cb): existing runs resume, nothing is
    generated again."""
    cfg = _cfg({"name": "a"},
               {"name": "b", "model": "qwen", "temperature": 0, "max_tokens": 64,
                "extra_body": {"top_p": 0.9, "seed": 1}, "system_prompt_as_user": True, "base_url": "http://x/v1",
                "api_key_env": "K"},
               {"name": "c", "preset": "qwen2-vl-2b-instruct"}, system_prompt="инструкция")
    keys = [generation_key(m, cfg, "item1", "abc", "msg", 2) for m in cfg.models]
    assert keys == ["b6d4b90b0a4a957115ef4b11885b8529", "dc82d83d91f20f1dbbd3b5ecca90fb32",
                    "f040e0f2f0e8d597108b5adb680d5426"]


def test_what_changes_the_ocr_text_is_in_its_key() -> None:
    base = {"name": "o", "provider": "ocr"}
    variants = [{}, {"lang": "rus"}, {"psm": 6}, {"template": "Текст: {lines}"}, {"unreadable": "Пусто."},
                {"timeout_s": 5, "concurrency": 2}]
    cfg = _cfg({"name": "q"})
    keys = [generation_key(_cfg({**base, **v}).models[0], cfg, "i", "sha", "", 0) for v in variants]
    assert len(set(keys[:5])) == 5  # each option makes new generations
    assert keys[5] == keys[0]  # how long or how many at once does not change the text


# --- the code asks the spec ----------------------------------------------------------------------------------
class TokenSpec(ModelSpec):
    """A provider with its own key field, as a plugin may have."""

    provider: Literal["token-test"] = "token-test"
    token_env: str

    no_server_reason: ClassVar[str] = "in-process test provider"

    def sampling_signature(self) -> dict[str, Any]:
        return {"provider": self.provider}

    def key_env_vars(self) -> dict[str, str]:
        return {"token_env": self.token_env}


class TokenProvider:
    def __init__(self, spec: TokenSpec) -> None:
        self.spec = spec

    async def generate(self, request: Request) -> Generation:
        return Generation(text="ok")

    async def aclose(self) -> None:
        return None


@pytest.fixture
def token_provider() -> Any:
    register_provider(TokenSpec, TokenProvider)
    yield TokenSpec
    PROVIDERS.unregister("token-test")


def test_keys_are_checked_for_the_specs_that_name_them(token_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg({"name": "ocr", "provider": "ocr"}, {"name": "t", "provider": "token-test", "token_env": "TOK_VAR"},
               {"name": "q", "api_key_env": "Q_VAR"})
    with pytest.raises(ConfigError) as err:
        require_api_keys(cfg, source="c.yaml", environ={})
    assert str(err.value).splitlines()[:2] == [
        "c.yaml: models.1.token_env (t): the environment variable TOK_VAR is not set",
        "c.yaml: models.2.api_key_env (q): the environment variable Q_VAR is not set",
    ]
    require_api_keys(cfg, environ={"TOK_VAR": "t", "Q_VAR": "q"})
    monkeypatch.setenv("TOK_VAR", "secret-token-value")
    assert "secret-token-value" in config_secrets(cfg)  # the run's log masks it
    assert OcrSpec(name="o").key_env_vars() == {}


def test_make_provider_asks_the_registry(token_provider: Any) -> None:
    assert isinstance(make_provider(parse_model_spec({"name": "o", "provider": "ocr"})), OcrProvider)
    assert isinstance(make_provider(parse_model_spec({"name": "q"})), OpenAICompatProvider)
    assert isinstance(make_provider(parse_model_spec({"name": "t", "provider": "token-test", "token_env": "X"})),
                      TokenProvider)
    with pytest.raises(TypeError, match="ModelSpec is the base"):
        ModelSpec(name="x", provider="openai")


def test_the_reports_settings_row_is_the_specs_description() -> None:
    cfg = _cfg({"name": "q", "model": "qwen", "base_url": "http://gpu:8000/v1"},
               {"name": "r", "base_urls": ["http://a:1/v1", "http://b:1/v1"], "temperature": 0.0},
               {"name": "l", "preset": "qwen2-vl-2b-instruct"},
               {"name": "ocr", "provider": "ocr"},
               {"name": "ocr6", "provider": "ocr", "lang": "rus", "psm": 6, "template": "Текст: {lines}"})
    rows = {f"model {m.name}": m.describe() for m in cfg.models}  # index.html's settings rows (test_plugin_provider)
    assert rows["model q"] == "openai qwen @ http://gpu:8000/v1, temperature 0.1, max_tokens 512"
    assert rows["model r"] == "openai r @ http://a:1/v1, http://b:1/v1, temperature 0.0, max_tokens 512"
    assert rows["model l"] == ("openai Qwen/Qwen2-VL-2B-Instruct @ a server vlmpipe launches (vllm), temperature 0.1, "
                               "max_tokens 512")
    assert rows["model ocr"] == "ocr (Tesseract), lang rus+eng, psm Tesseract's default"
    assert rows["model ocr6"] == "ocr (Tesseract), lang rus, psm 6, own template"
