"""Shared fixtures. ``tests/`` is on sys.path so tests can import the local servers (fakeserver.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PEER = ROOT.parent / "shared" / "peer"
sys.path.insert(0, str(TESTS))


@pytest.fixture
def peer_dir() -> Path:
    """The peer's recorded results (../shared/peer); tests using it skip with a reason when absent."""
    if not (PEER / "summary_test_stats.xlsx").is_file():
        pytest.skip(f"peer data not found at {PEER} (it lives beside the checkout in ../shared/peer)")
    return PEER
