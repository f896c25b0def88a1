"""Shared test fixtures: the location of ../shared/data, which a user's fresh clone does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip: tests that use it are for CI and developers, not a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA} (only CI and developer machines have it)")
    return SHARED_DATA
