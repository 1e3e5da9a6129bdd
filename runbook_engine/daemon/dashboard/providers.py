"""What the dashboard reads besides executions: documents, parameters and schedules.

Parameters (the Parameter Store) and schedules have their own back-ends; the dashboard
sees each through one small protocol, and a daemon without that back-end passes None,
which the page states plainly. A ``SecureString`` value never reaches a template: the
page shows :data:`MASK` whatever a source hands over (:attr:`ParameterEntry.shown_value`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml

from runbook_engine.documents import BUNDLED, EXTENSIONS, DocumentLibrary

MASK = "****"
SECURE_STRING = "SecureString"


@dataclass(frozen=True)
class ParameterEntry:
    name: str
    type: str  # String | StringList | SecureString
    value: str | None = None  # a source should leave SecureString values out altogether
    version: int | None = None
    last_modified: datetime | None = None
    description: str = ""
    labels: tuple[str, ...] = ()

    @property
    def shown_value(self) -> str:
        if self.type == SECURE_STRING or self.value is None:
            return MASK
        return self.value


class ParameterSource(Protocol):
    async def list_parameters(self, path: str | None = None) -> Sequence[ParameterEntry]:
        """Parameters under ``path`` (all of them for None), sorted by name."""


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    document_name: str
    expression: str  # cron(...) or rate(...)
    enabled: bool = True
    next_run: datetime | None = None
    last_run: datetime | None = None
    last_execution_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    association_id: str | None = None  # what a deletion names; None: cannot be deleted
    targets: tuple[str, ...] = ()  # shown as "Key=value,value"
    last_error: str | None = None  # why the last firing started nothing


class ScheduleSource(Protocol):
    async def list_schedules(self) -> Sequence[ScheduleEntry]:
        """Every schedule, sorted by name."""


@runtime_checkable
class ScheduleDeleter(Protocol):
    """A schedule source that can also delete (the page offers it only then)."""

    async def delete_schedule(self, association_id: str) -> None:
        """``ScheduleMissing`` if there is none."""


@dataclass(frozen=True)
class Providers:
    """The optional back-ends of one daemon; None means this daemon has none."""

    parameters: ParameterSource | None = None
    schedules: ScheduleSource | None = None


@dataclass(frozen=True)
class DocumentEntry:
    name: str
    source: str  # "bundled", a directory, or "stored" (created through the API)
    description: str = ""
    document_type: str = "Automation"
    version: str | None = None
    viewable: bool = True  # the dashboard can show its text and graph


def library_documents(library: DocumentLibrary) -> list[DocumentEntry]:
    """Documents the daemon resolves by name: its ``documents`` directories, then the
    bundled runbooks; a name found twice is listed where it resolves (the first)."""
    seen: set[str] = set()
    found: list[DocumentEntry] = []
    for directory in library.directories:
        if not directory.is_dir():
            continue
        source = "bundled" if directory.resolve() == BUNDLED else str(directory)
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() not in EXTENSIONS or path.stem in seen:
                continue
            seen.add(path.stem)
            kind, description = _summary(path)
            found.append(DocumentEntry(path.stem, source, description, kind))
    return found


def _summary(path: Path) -> tuple[str, str]:
    """The document type and the first line of the description (headings stripped)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "Unknown", "(cannot be read)"
    if not isinstance(data, dict):
        return "Unknown", "(not a document)"
    kind = "Automation" if str(data.get("schemaVersion")) == "0.3" else "Command"
    lines = [
        ln.strip().lstrip("#").strip() for ln in str(data.get("description") or "").split("\n")
    ]
    return kind, next((ln for ln in lines if ln), "")


async def stored_documents(store: Any) -> list[DocumentEntry]:
    """Documents kept in the state store (CreateDocument), when the store keeps any.

    The one place that knows how stored documents are listed: a store without
    ``list_documents`` has none. Entries may be records with ``name`` (and optionally
    ``document_type``, ``version``/``document_version``, ``description``) or API-shaped
    maps with ``Name``.
    """
    lister = getattr(store, "list_documents", None)
    if lister is None:
        return []
    entries = await lister()
    found = []
    for entry in entries:
        if isinstance(entry, Mapping):
            name, kind = entry.get("Name"), entry.get("DocumentType", "Automation")
            version, description = entry.get("DocumentVersion"), entry.get("Description", "")
        else:
            name = getattr(entry, "name", None)
            kind = getattr(entry, "document_type", "Automation")
            version = getattr(entry, "version", None) or getattr(entry, "document_version", None)
            description = getattr(entry, "description", "")
        if name:
            found.append(
                DocumentEntry(
                    str(name),
                    "stored",
                    str(description or ""),
                    str(kind),
                    str(version) if version is not None else None,
                    viewable=False,
                )
            )
    return found
