"""Shared fixtures: paths to the repo, its recipes and ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED / 'data'} is absent (tests that need ../shared skip without it)")
    return SHARED / "data"
