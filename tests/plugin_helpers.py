"""Installing a plugin for one test: modules and a ``*.dist-info`` with ``entry_points.txt`` in a folder put on
``sys.path``, which is all ``importlib.metadata`` needs to list the entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def install_distribution(root: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                         entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None) -> Path:
    """A distribution ``name`` in ``root`` (put on ``sys.path``): its entry points ``{group: {name: value}}`` and
    its ``modules`` ``{module name: source}``. The modules are dropped from ``sys.modules`` after the test."""
    root.mkdir(parents=True, exist_ok=True)
    dist = root / f"{name.replace('-', '_')}-0.1.dist-info"  # as wheels name it: the name ends at the first '-'
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    lines = []
    for group, points in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{point} = {value}" for point, value in points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
        monkeypatch.delitem(sys.modules, module, raising=False)  # restored (absent) after the test
    monkeypatch.syspath_prepend(str(root))
    return root
