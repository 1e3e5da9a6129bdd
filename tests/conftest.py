"""Shared fixtures. Services the tests need are started once per session (tests/services)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.services.postgres",
    "tests.services.daemon",
    "tests.services.moto",
    "tests.services.https",
    "tests.services.sshd",
    "tests.services.docker",
    "tests.services.lambda_runtime",
    "tests.store_fixtures",
]

ROOT = Path(__file__).resolve().parent.parent
# The nearest shared/corpus above the checkout (a git worktree may sit one level deeper).
CORPUS = next(
    (p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()),
    ROOT.parent / "shared" / "corpus",
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the conformance corpus is missing: {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The engine runs on asyncio (anyio's asyncio backend); asyncssh and the daemon need it."""
    return "asyncio"
