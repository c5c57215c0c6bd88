"""Shared fixtures for the audio domain tests (no Flask app needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio.signal_checks import SHARED_DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared evaluation data (``../shared/data`` from the repository root)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
