"""The dashboard's view of the daemon's own Parameter Store (``Engine.parameters``).

Values are read without decryption and a SecureString entry carries no value at all, so
its plain text never reaches the page, and neither does its ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runbook_engine.daemon.dashboard.providers import SECURE_STRING, ParameterEntry
from runbook_engine.parameters import ParameterStore


class StoreParameterSource:
    """A ``ParameterSource`` over a Parameter Store, opened when the page is first shown."""

    def __init__(self, store: Callable[[], ParameterStore]) -> None:
        self._store = store

    async def list_parameters(self, path: str | None = None) -> Sequence[ParameterEntry]:
        """Latest versions whose name starts with ``path`` (a root-level name counts as
        ``/Name``, the form it is also known by), sorted by name."""
        found = await self._store().list_parameters()
        entries = [
            ParameterEntry(
                name=p.name,
                type=p.type,
                value=None if p.type == SECURE_STRING else p.value,
                version=p.version,
                last_modified=p.last_modified,
                description=p.description,
                labels=p.labels,
            )
            for p in found
            if not path or p.name.startswith(path) or ("/" + p.name).startswith(path)
        ]
        return sorted(entries, key=lambda entry: entry.name)
