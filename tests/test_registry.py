"""The plugin registry of core: built-ins from a package, plugins from entry points loaded only when asked for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plugin_helpers import install_distribution
from vlmpipe.core.registry import Registry, RegistryError

GROUP = "vlmpipe_test.things"


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry[int]:
    """A registry whose built-ins package registers ``one``, with three plugins installed: ``good`` (registers
    itself), ``broken`` (fails on import) and ``silent`` (registers nothing)."""
    reg: Registry[int] = Registry("thing", group=GROUP, builtins="regtest_builtins")
    monkeypatch.setitem(sys.modules, "regtest_holder", type(sys)("regtest_holder"))
    sys.modules["regtest_holder"].REG = reg  # type: ignore[attr-defined]
    install_distribution(tmp_path, monkeypatch, "regtest-plugins", {GROUP: {
        "good": "regtest_good", "broken": "regtest_broken", "silent": "regtest_silent"}}, {
        "regtest_builtins": "import regtest_holder\nregtest_holder.REG.register('one', 1)\n",
        "regtest_good": "import regtest_holder\nregtest_holder.REG.register('good', 2)\n",
        "regtest_broken": "raise ImportError('needs the package frobnicate')\n",
        "regtest_silent": "X = 1\n",
    })
    return reg


def test_builtins_and_entry_points_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _registry(tmp_path, monkeypatch)
    assert "regtest_builtins" not in sys.modules  # nothing is loaded before it is needed
    assert reg.names() == ["broken", "good", "one", "silent"]  # entry points are listed without loading them
    assert "regtest_builtins" in sys.modules and "regtest_good" not in sys.modules
    assert reg.get("one") == 1
    assert reg.get("good") == 2 and "regtest_good" in sys.modules
    assert reg.loaded() == {"one": 1, "good": 2}
    with pytest.raises(RegistryError, match=r"^unknown thing 'nope'; known: broken, good, one, silent$"):
        reg.get("nope")
    with pytest.raises(RegistryError, match=r"the thing plugin 'broken' \(entry point broken = 'regtest_broken'\) "
                                            r"could not be loaded: ImportError: needs the package frobnicate"):
        reg.get("broken")
    with pytest.raises(RegistryError, match=r"'silent' .* was loaded but registered no thing named 'silent'"):
        reg.get("silent")
    assert reg.get("good") == 2  # a broken plugin breaks only itself


def test_a_name_is_registered_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _registry(tmp_path, monkeypatch)
    reg.get("one")
    reg.register("one", 1)  # the same value again (a module imported twice): nothing happens
    with pytest.raises(RegistryError, match=r"thing 'one' is registered twice: 1 and 3"):
        reg.register("one", 3)
    reg.unregister("one")
    reg.register("one", 3)
    assert reg.get("one") == 3


def test_entry_points_are_read_again_after_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _registry(tmp_path / "first", monkeypatch)
    assert "late" not in reg.names()
    install_distribution(tmp_path / "second", monkeypatch, "regtest-late", {GROUP: {"late": "regtest_late"}},
                         {"regtest_late": "import regtest_holder\nregtest_holder.REG.register('late', 4)\n"})
    assert "late" not in reg.names()  # read once, then cached
    reg.refresh()
    assert reg.get("late") == 4


def test_two_distributions_claiming_one_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _registry(tmp_path / "first", monkeypatch)
    install_distribution(tmp_path / "second", monkeypatch, "regtest-rival", {GROUP: {"good": "regtest_rival"}})
    reg.refresh()
    with pytest.raises(RegistryError, match=r"thing 'good' is claimed by several entry points .*: regtest_good, "
                                            r"regtest_rival"):
        reg.get("good")
