"""A config naming an API-key variable that is not set cannot start: nothing is sent, nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeserver import FakeOpenAIServer
from reliability_helpers import make_images, model, write_config
from vlmpipe.app.cli import app
from vlmpipe.core.config import ConfigError, config_from_dict
from vlmpipe.core.keys import require_api_keys

KEY_VAR = "VLMPIPE_TEST_UNSET_KEY"


def _cfg(**over: object):
    data = {"dataset": {"path": "x"}, "models": [{"name": "local"}, {"name": "hosted", "api_key_env": KEY_VAR}],
            **over}
    return config_from_dict(data)


def test_unset_or_empty_key_variables_are_named_with_their_field() -> None:
    cfg = _cfg(judge={"enabled": True, "model": {"name": "j", "api_key_env": "JUDGE_KEY"}})
    with pytest.raises(ConfigError) as err:
        require_api_keys(cfg, source="c.yaml", environ={KEY_VAR: ""})
    lines = str(err.value).splitlines()
    assert lines[:2] == [
        f"c.yaml: models.1.api_key_env (hosted): the environment variable {KEY_VAR} is not set",
        "c.yaml: judge.model.api_key_env (j): the environment variable JUDGE_KEY is not set",
    ]
    assert "remove api_key_env for a server that needs no key" in lines[2]
    require_api_keys(cfg, environ={KEY_VAR: "k", "JUDGE_KEY": "k"})  # both set: fine
    require_api_keys(cfg, judge=False, environ={KEY_VAR: "k"})  # bench: the judge is not called
    with_ref = _cfg(references={"source": "model", "model": {"name": "gpt-4o", "api_key_env": "REF_KEY"}})
    with pytest.raises(ConfigError, match=r"references\.model\.api_key_env \(gpt-4o\): .* REF_KEY is not set"):
        require_api_keys(with_ref, environ={KEY_VAR: "k"})
    require_api_keys(with_ref, references=False, judge=False, environ={KEY_VAR: "k"})  # bench: no reference model
    with pytest.raises(ConfigError, match=r"judge\.model"):  # `vlmpipe judge RUN`: only the judge's key matters
        require_api_keys(cfg, generate=False, judge=True, environ={})
    require_api_keys(_cfg(judge={"enabled": False, "model": {"name": "j", "api_key_env": "JUDGE_KEY"}}),
                     environ={KEY_VAR: "k"})  # judge configured but not enabled: not called by `run`


def test_run_with_an_unset_key_variable_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    data = tmp_path / "data"
    make_images(data, 1)
    with FakeOpenAIServer() as srv:
        path = write_config(tmp_path / "c.yaml", data, [model("hosted", srv.url, api_key_env=KEY_VAR)])
        result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
        assert srv.request_count == 0
    assert result.exit_code == 2
    assert (f"{path}: models.0.api_key_env (hosted): the environment variable {KEY_VAR} is not set"
            in " ".join(result.stderr.split()))
    assert not (tmp_path / "runs").exists()


def test_judge_with_an_unset_key_variable_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    data = tmp_path / "data"
    make_images(data, 1)
    judge = {"enabled": False, "model": model("judge", "http://127.0.0.1:9/v1", api_key_env=KEY_VAR)}
    with FakeOpenAIServer() as srv:
        path = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)], judge=judge)
        assert CliRunner().invoke(app, ["run", str(path), "--quiet"]).exit_code == 0  # judge not enabled
    result = CliRunner().invoke(app, ["judge", str(tmp_path / "runs" / "r"), "--quiet"])
    assert result.exit_code == 2
    assert (f"judge.model.api_key_env (judge): the environment variable {KEY_VAR} is not set"
            in " ".join(result.stderr.split()))
