"""Shared fixtures. Services the tests need are started once per session (tests/services)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# <repo>/../shared/corpus; a checkout nested deeper (a git worktree) finds it further up.
CORPUS = next(
    (p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()),
    ROOT.parent / "shared" / "corpus",
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the conformance corpus is missing: {CORPUS}")
    return CORPUS
