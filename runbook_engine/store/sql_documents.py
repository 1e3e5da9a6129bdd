"""The document repository (``store.documents``) on the SQL store's connections.

It runs on its ``SqlStore``'s engine through the store's own call and transaction
helpers, so SQLite keeps its one connection and PostgreSQL its pool and thread limit.
A new version is written with ``UPDATE runbook_documents SET latest_version = n + 1
WHERE latest_version = n`` and the version row in one transaction: of two updates
racing on one document, one wins, the other gets ``ConcurrentUpdate``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from runbook_engine.errors import (
    ConcurrentUpdate,
    DocumentExists,
    DocumentMissing,
    DocumentVersionMissing,
    DocumentVersionNameTaken,
)
from runbook_engine.store.documents import (
    DocumentRecord,
    DocumentVersionRecord,
    StoredDocument,
    version_number,
)
from runbook_engine.store.schema import DOCUMENT_VERSIONS, DOCUMENTS

if TYPE_CHECKING:
    from runbook_engine.store.sql import SqlStore

_D = DOCUMENTS.c
_V = DOCUMENT_VERSIONS.c


def _document_row(record: DocumentRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "document_type": record.document_type,
        "owner": record.owner,
        "created": record.created,
        "default_version": record.default_version,
        "latest_version": record.latest_version,
        "tags": json.dumps(dict(record.tags)),
    }


def _document(row: Any) -> DocumentRecord:
    return DocumentRecord(
        name=row["name"],
        document_type=row["document_type"],
        owner=row["owner"],
        created=row["created"],
        default_version=int(row["default_version"]),
        latest_version=int(row["latest_version"]),
        tags=json.loads(row["tags"]),
    )


def _version_row(record: DocumentVersionRecord) -> dict[str, Any]:
    return {column.name: getattr(record, column.name) for column in DOCUMENT_VERSIONS.c}


def _version(row: Any) -> DocumentVersionRecord:
    return DocumentVersionRecord(
        **{column.name: row[column.name] for column in DOCUMENT_VERSIONS.c}
    )


class SqlDocuments:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def create(self, document: DocumentRecord, first: DocumentVersionRecord) -> None:
        await self._store._call(self._create, document, first)

    def _create(self, document: DocumentRecord, first: DocumentVersionRecord) -> None:
        try:
            with self._store._transaction() as conn:
                conn.execute(DOCUMENTS.insert(), _document_row(document))
                conn.execute(DOCUMENT_VERSIONS.insert(), _version_row(first))
        except self._store._integrity_errors:
            raise DocumentExists(f"Document {document.name} already exists") from None

    def _read_document(self, conn: Connection, name: str) -> DocumentRecord:
        row = conn.execute(select(DOCUMENTS).where(_D.name == name)).mappings().first()
        if row is None:
            raise DocumentMissing(f"Document {name} does not exist")
        return _document(row)

    async def find(
        self, name: str, version: str | None = None, version_name: str | None = None
    ) -> StoredDocument:
        return await self._store._call(self._find, name, version, version_name)

    def _find(self, name: str, version: str | None, version_name: str | None) -> StoredDocument:
        with self._store._transaction(write=False) as conn:
            document = self._read_document(conn, name)
            query = select(DOCUMENT_VERSIONS).where(_V.name == name)
            if version is not None or version_name is None:
                query = query.where(_V.version == version_number(document, version))
            if version_name is not None:
                query = query.where(_V.version_name == version_name)
            row = conn.execute(query).mappings().first()
        if row is None:
            shown = version or version_name
            raise DocumentVersionMissing(f"Version {shown} of document {name} does not exist")
        return StoredDocument(document, _version(row))

    async def add_version(self, version: DocumentVersionRecord) -> StoredDocument:
        return await self._store._call(self._add_version, version)

    def _add_version(self, version: DocumentVersionRecord) -> StoredDocument:
        name = version.name
        try:
            with self._store._transaction() as conn:
                bumped = conn.execute(
                    update(DOCUMENTS)
                    .where(_D.name == name, _D.latest_version == version.version - 1)
                    .values(latest_version=version.version)
                ).rowcount
                if bumped != 1:
                    self._read_document(conn, name)  # DocumentMissing if it is gone
                    raise ConcurrentUpdate(f"Document {name} was updated meanwhile; try again")
                conn.execute(DOCUMENT_VERSIONS.insert(), _version_row(version))
                document = self._read_document(conn, name)
        except self._store._integrity_errors:
            raise DocumentVersionNameTaken(
                f"Version name {version.version_name} is used by another version of {name}"
            ) from None
        return StoredDocument(document, version)

    async def list_documents(self) -> list[StoredDocument]:
        return await self._store._call(self._list_documents)

    def _list_documents(self) -> list[StoredDocument]:
        query = (
            select(DOCUMENTS, *(c.label(f"v_{c.name}") for c in DOCUMENT_VERSIONS.c))
            .join(
                DOCUMENT_VERSIONS,
                and_(_V.name == _D.name, _V.version == _D.default_version),
            )
            .order_by(_D.name)
        )
        with self._store._transaction(write=False) as conn:
            rows = list(conn.execute(query).mappings())
        return [
            StoredDocument(
                _document(row),
                _version({c.name: row[f"v_{c.name}"] for c in DOCUMENT_VERSIONS.c}),
            )
            for row in rows
        ]

    async def list_versions(self, name: str) -> list[DocumentVersionRecord]:
        return await self._store._call(self._list_versions, name)

    def _list_versions(self, name: str) -> list[DocumentVersionRecord]:
        with self._store._transaction(write=False) as conn:
            self._read_document(conn, name)
            query = select(DOCUMENT_VERSIONS).where(_V.name == name).order_by(_V.version)
            return [_version(row) for row in conn.execute(query).mappings()]

    async def set_default_version(self, name: str, version: int) -> StoredDocument:
        return await self._store._call(self._set_default_version, name, version)

    def _set_default_version(self, name: str, version: int) -> StoredDocument:
        with self._store._transaction() as conn:
            self._read_document(conn, name)
            row = (
                conn.execute(
                    select(DOCUMENT_VERSIONS).where(_V.name == name, _V.version == version)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise DocumentVersionMissing(f"Version {version} of document {name} does not exist")
            conn.execute(update(DOCUMENTS).where(_D.name == name).values(default_version=version))
            return StoredDocument(self._read_document(conn, name), _version(row))

    async def delete(self, name: str, version: int | None = None) -> None:
        await self._store._call(self._delete, name, version)

    def _delete(self, name: str, version: int | None) -> None:
        with self._store._transaction() as conn:
            document = self._read_document(conn, name)
            if version is None:
                conn.execute(DOCUMENT_VERSIONS.delete().where(_V.name == name))
                conn.execute(DOCUMENTS.delete().where(_D.name == name))
                return
            deleted = 0
            if version != document.default_version:
                deleted = conn.execute(
                    DOCUMENT_VERSIONS.delete().where(_V.name == name, _V.version == version)
                ).rowcount
            if deleted != 1:
                raise DocumentVersionMissing(
                    f"Version {version} of document {name} does not exist or is its default"
                )
