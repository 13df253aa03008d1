"""Shared fixtures for the process-level tests."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    "The repository root."
    return REPO


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes of work (CI runs these too)")
