"""The ``store`` fixture of the store tests: every test that asks for it runs on each
kind of state store (in memory, a SQLite file, a fresh PostgreSQL database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runbook_engine.store import StateStore, open_store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'state.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[StateStore]:
    opened = open_store(store_url)
    yield opened
    await opened.close()
