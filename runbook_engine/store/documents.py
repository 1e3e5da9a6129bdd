"""Stored SSM documents: every version of each, which one is the default, and lookups by
name and version.

The daemon's CreateDocument/UpdateDocument write here; StartAutomationExecution and
aws:executeAutomation read here first (``Engine.find_by_name``), before the document
directories. Versions are numbered from 1 and never reused; ``latest_version`` is the
compare-and-set counter of a document, so two updates racing on one document produce
one new version and one ``ConcurrentUpdate``.

``DocumentRepository`` is the protocol; ``MemoryDocuments`` here and ``SqlDocuments``
(``sql_documents``) implement it, and the state stores carry one as ``store.documents``.
Content checks (names, size, validation) belong to the caller: the repository keeps
what it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from runbook_engine.errors import (
    ConcurrentUpdate,
    DocumentExists,
    DocumentMissing,
    DocumentVersionMissing,
    DocumentVersionNameTaken,
)

DEFAULT = "$DEFAULT"
LATEST = "$LATEST"


@dataclass(frozen=True)
class DocumentVersionRecord:
    """One version of a document, as created."""

    name: str
    version: int
    content: str
    document_format: str  # JSON | YAML
    content_hash: str  # SHA-256 of the content, hex
    created: datetime
    version_name: str | None = None
    display_name: str | None = None
    target_type: str | None = None


@dataclass(frozen=True)
class DocumentRecord:
    """What belongs to a document rather than to one version."""

    name: str
    document_type: str  # Automation | Command
    owner: str
    created: datetime
    default_version: int = 1
    latest_version: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    document: DocumentRecord
    version: DocumentVersionRecord


def version_number(document: DocumentRecord, selector: str | None) -> int:
    """``$DEFAULT`` (or nothing), ``$LATEST`` or a number -> the version it names."""
    if selector in (None, "", DEFAULT):
        return document.default_version
    if selector == LATEST:
        return document.latest_version
    assert selector is not None
    if not selector.isdigit() or not 1 <= int(selector) <= document.latest_version:
        raise DocumentVersionMissing(
            f"Version {selector} of document {document.name} does not exist"
        )
    return int(selector)


class DocumentRepository(Protocol):
    async def create(self, document: DocumentRecord, first: DocumentVersionRecord) -> None:
        """Store a new document with its version 1; ``DocumentExists`` if the name is taken."""

    async def find(
        self, name: str, version: str | None = None, version_name: str | None = None
    ) -> StoredDocument:
        """A version by selector (``version_number``) and/or version name.

        ``DocumentMissing`` for an unknown name, ``DocumentVersionMissing`` for an unknown
        version or a version name that is not on the selected version.
        """

    async def add_version(self, version: DocumentVersionRecord) -> StoredDocument:
        """Store ``version`` (numbered ``latest_version + 1`` by the caller) as the latest.

        ``ConcurrentUpdate`` if another version was added since the caller read the
        document, ``DocumentVersionNameTaken`` if the version name is used already.
        """

    async def list_documents(self) -> list[StoredDocument]:
        """Every document with its default version, by name."""

    async def list_versions(self, name: str) -> list[DocumentVersionRecord]:
        """Every version of a document, oldest first; ``DocumentMissing`` if none."""

    async def set_default_version(self, name: str, version: int) -> StoredDocument:
        """Make ``version`` the default; ``DocumentVersionMissing`` if it does not exist."""

    async def delete(self, name: str, version: int | None = None) -> None:
        """Delete a document (all versions), or one version that is not the default
        (``DocumentVersionMissing`` for the default: callers check that first)."""


class MemoryDocuments:
    """The repository in memory, for the in-memory store and tests."""

    def __init__(self) -> None:
        self._documents: dict[str, DocumentRecord] = {}
        self._versions: dict[str, dict[int, DocumentVersionRecord]] = {}

    def _document(self, name: str) -> DocumentRecord:
        try:
            return self._documents[name]
        except KeyError:
            raise DocumentMissing(f"Document {name} does not exist") from None

    async def create(self, document: DocumentRecord, first: DocumentVersionRecord) -> None:
        if document.name in self._documents:
            raise DocumentExists(f"Document {document.name} already exists")
        self._documents[document.name] = replace(document, default_version=1, latest_version=1)
        self._versions[document.name] = {1: replace(first, version=1)}

    async def find(
        self, name: str, version: str | None = None, version_name: str | None = None
    ) -> StoredDocument:
        document = self._document(name)
        versions = self._versions[name]
        if version_name is not None and version is None:
            for record in versions.values():
                if record.version_name == version_name:
                    return StoredDocument(document, record)
            raise DocumentVersionMissing(f"Document {name} has no version named {version_name}")
        selected = versions.get(version_number(document, version))
        if selected is None or (version_name is not None and selected.version_name != version_name):
            raise DocumentVersionMissing(f"Version {version} of document {name} does not exist")
        return StoredDocument(document, selected)

    async def add_version(self, version: DocumentVersionRecord) -> StoredDocument:
        document = self._document(version.name)
        if version.version != document.latest_version + 1:
            raise ConcurrentUpdate(f"Document {version.name} was updated meanwhile; try again")
        versions = self._versions[version.name]
        if version.version_name is not None and any(
            v.version_name == version.version_name for v in versions.values()
        ):
            raise DocumentVersionNameTaken(
                f"Version name {version.version_name} is used by another version of {version.name}"
            )
        versions[version.version] = version
        document = replace(document, latest_version=version.version)
        self._documents[version.name] = document
        return StoredDocument(document, version)

    async def list_documents(self) -> list[StoredDocument]:
        return [
            StoredDocument(document, self._versions[name][document.default_version])
            for name, document in sorted(self._documents.items())
        ]

    async def list_versions(self, name: str) -> list[DocumentVersionRecord]:
        self._document(name)
        return [self._versions[name][n] for n in sorted(self._versions[name])]

    async def set_default_version(self, name: str, version: int) -> StoredDocument:
        document = self._document(name)
        record = self._versions[name].get(version)
        if record is None:
            raise DocumentVersionMissing(f"Version {version} of document {name} does not exist")
        document = replace(document, default_version=version)
        self._documents[name] = document
        return StoredDocument(document, record)

    async def delete(self, name: str, version: int | None = None) -> None:
        document = self._document(name)
        if version is None:
            del self._documents[name], self._versions[name]
            return
        if version not in self._versions[name] or version == document.default_version:
            raise DocumentVersionMissing(
                f"Version {version} of document {name} does not exist or is its default"
            )
        del self._versions[name][version]
