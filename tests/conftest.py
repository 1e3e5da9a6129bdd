"""Shared fixtures. Services the tests need are started once per session (tests/services)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.services.postgres"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the conformance corpus is missing: {CORPUS}")
    return CORPUS
