"""The document operations of the SSM API: CreateDocument, GetDocument, DescribeDocument,
UpdateDocument, UpdateDocumentDefaultVersion, ListDocuments, ListDocumentVersions and
DeleteDocument, on the state store's document repository (``store.documents``).

Documents in the configured ``documents:`` directories (and the bundled runbooks) can be
read with GetDocument and DescribeDocument as version 1 of a document owned by this
account; they are not listed, updated or deleted (they belong to the files). A stored
document of the same name wins, as it does for StartAutomationExecution.

The caller's policy (``documents:`` patterns) applies to every document operation;
ListDocuments leaves out what the caller may not see.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.document_content import (
    MAX_VERSIONS,
    ParsedDocument,
    check_content,
    check_name,
    content_hash,
    convert,
    description,
    identifier,
    platforms,
    version_info,
)
from runbook_engine.daemon.operations import MAX_RESULTS, ApiError, Caller, Handler, Params
from runbook_engine.daemon.paging import InvalidNextToken, page_offset, page_token, query_digest
from runbook_engine.engine import Engine
from runbook_engine.errors import DocumentMissing, DocumentNotFound
from runbook_engine.model import Runbook
from runbook_engine.source import load_source
from runbook_engine.store.documents import (
    LATEST,
    DocumentRecord,
    DocumentRepository,
    DocumentVersionRecord,
    StoredDocument,
)
from runbook_engine.validation import validate_source

OWNERS_MATCHING = ("Self", "Private")  # owners that stored documents have
OWNERS = ("Self", "Private", "Amazon", "Public", "ThirdParty", "All")
PARSED_CACHE = 256


class DocumentOperations:
    def __init__(self, engine: Engine, config: DaemonConfig) -> None:
        self.engine = engine
        self.config = config
        self._parsed: OrderedDict[tuple[str, str], ParsedDocument] = OrderedDict()
        self.handlers: dict[str, Handler] = {
            "CreateDocument": self.create,
            "GetDocument": self.get,
            "DescribeDocument": self.describe,
            "UpdateDocument": self.update,
            "UpdateDocumentDefaultVersion": self.set_default,
            "ListDocuments": self.list_documents,
            "ListDocumentVersions": self.list_versions,
            "DeleteDocument": self.delete,
        }

    @property
    def repository(self) -> DocumentRepository:
        return self.engine.store.documents

    # -- helpers -------------------------------------------------------------------------

    def _allowed(self, caller: Caller, operation: str, name: str) -> str:
        if name.startswith("arn:"):
            name = name.rsplit("document/", 1)[-1]
        if not caller.policy.allows_document(name):
            resource = f"arn:aws:ssm:{self.config.region}:{self.config.account_id}:document/{name}"
            raise ApiError(
                "AccessDeniedException",
                f"User: {caller.arn} is not authorized to perform: ssm:{operation} on"
                f" resource: {resource}",
            )
        return name

    def _parse(self, stored: StoredDocument) -> ParsedDocument:
        """The parsed version (for parameters, schema version, platforms), cached."""
        version = stored.version
        key = (version.content_hash, stored.document.name)
        parsed = self._parsed.get(key)
        if parsed is None:
            source = load_source(
                version.content,
                version.name,
                "json" if version.document_format == "JSON" else "yaml",
            )
            report = validate_source(source, self.engine.registry.schemas(), version.name)
            if report.document is None or report.errors:  # only a file can be invalid
                raise ApiError("InvalidDocumentContent", f"Document {version.name} is not valid")
            parsed = report.document
            self._parsed[key] = parsed
            if len(self._parsed) > PARSED_CACHE:
                self._parsed.popitem(last=False)
        return parsed

    async def _find(
        self, name: str, version: str | None = None, version_name: str | None = None
    ) -> StoredDocument:
        """A stored version, or a document file from the directories as version 1."""
        try:
            return await self.repository.find(name, version, version_name)
        except DocumentMissing:
            if version_name is not None or version not in (None, "$DEFAULT", LATEST, "1"):
                raise
        try:
            text = self.engine.library.find_by_name(name)
        except DocumentNotFound:
            raise DocumentMissing(f"Document {name} does not exist") from None
        record = _file_version(name, text.path, text.content)
        modified = record.created
        stored = StoredDocument(DocumentRecord(name, "", self.config.account_id, modified), record)
        kind = "Automation" if isinstance(self._parse(stored), Runbook) else "Command"
        return StoredDocument(DocumentRecord(name, kind, self.config.account_id, modified), record)

    @staticmethod
    def _tags(params: Params) -> dict[str, str]:
        tags: dict[str, str] = {}
        for tag in params.get("Tags") or ():
            if tag["Key"] in tags:
                raise ApiError("ValidationException", f"Tag key {tag['Key']} is given twice")
            tags[tag["Key"]] = tag["Value"]
        return tags

    @staticmethod
    def _refuse_unsupported(params: Params) -> None:
        given = [key for key in ("Attachments", "Requires") if params.get(key)]
        if given:
            raise ApiError(
                "ValidationException",
                f"{', '.join(given)}: not supported by this server (attachments would come"
                " from S3; put the files beside the runbook in a documents directory)",
            )

    # -- operations ------------------------------------------------------------------------

    async def create(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "CreateDocument", params["Name"])
        check_name(name)
        self._refuse_unsupported(params)
        document_type = params.get("DocumentType", "Automation")
        fmt = params.get("DocumentFormat", "JSON")
        content = params["Content"]
        parsed = check_content(name, content, fmt, document_type, self.engine.registry.schemas())
        now = self.engine.now()
        document = DocumentRecord(
            name, document_type, self.config.account_id, now, tags=self._tags(params)
        )
        version = DocumentVersionRecord(
            name,
            1,
            content,
            fmt,
            content_hash(content),
            now,
            params.get("VersionName"),
            params.get("DisplayName"),
            params.get("TargetType"),
        )
        await self.repository.create(document, version)
        return {"DocumentDescription": description(StoredDocument(document, version), parsed)}

    async def get(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "GetDocument", params["Name"])
        stored = await self._find(name, params.get("DocumentVersion"), params.get("VersionName"))
        version = stored.version
        content, fmt = convert(
            version.content, version.document_format, params.get("DocumentFormat")
        )
        shape: dict[str, Any] = {
            "Name": name,
            "CreatedDate": version.created.timestamp(),
            "DisplayName": version.display_name,
            "VersionName": version.version_name,
            "DocumentVersion": str(version.version),
            "Status": "Active",
            "Content": content,
            "DocumentType": stored.document.document_type,
            "DocumentFormat": fmt,
        }
        return {k: v for k, v in shape.items() if v is not None}

    async def describe(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "DescribeDocument", params["Name"])
        stored = await self._find(name, params.get("DocumentVersion"), params.get("VersionName"))
        return {"Document": description(stored, self._parse(stored))}

    async def update(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "UpdateDocument", params["Name"])
        self._refuse_unsupported(params)
        latest = await self.repository.find(name, LATEST)
        number = latest.document.latest_version
        asked = params.get("DocumentVersion")
        if asked not in (None, LATEST, str(number)):
            raise ApiError(
                "InvalidDocumentVersion",
                f"Only the latest version of {name} ({number}) can be updated, not {asked}",
            )
        if number >= MAX_VERSIONS:
            raise ApiError(
                "DocumentVersionLimitExceeded",
                f"Document {name} has {number} versions; delete some to add another",
            )
        content = params["Content"]
        fmt = params.get("DocumentFormat", "JSON")
        kind = latest.document.document_type
        parsed = check_content(name, content, fmt, kind, self.engine.registry.schemas())
        digest = content_hash(content)
        for existing in await self.repository.list_versions(name):
            if existing.content_hash == digest:
                raise ApiError(
                    "DuplicateDocumentContent",
                    f"The content is the same as version {existing.version} of {name}",
                )
        version = DocumentVersionRecord(
            name,
            number + 1,
            content,
            fmt,
            digest,
            self.engine.now(),
            params.get("VersionName"),
            params.get("DisplayName", latest.version.display_name),
            params.get("TargetType", latest.version.target_type),
        )
        stored = await self.repository.add_version(version)
        return {"DocumentDescription": description(stored, parsed)}

    async def set_default(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "UpdateDocumentDefaultVersion", params["Name"])
        stored = await self.repository.set_default_version(name, int(params["DocumentVersion"]))
        shape = {
            "Name": name,
            "DefaultVersion": str(stored.document.default_version),
            "DefaultVersionName": stored.version.version_name,
        }
        return {"Description": {k: v for k, v in shape.items() if v is not None}}

    async def list_documents(self, params: Params, caller: Caller) -> dict[str, Any]:
        filters = _filters(params)
        documents = [
            stored
            for stored in await self.repository.list_documents()
            if caller.policy.allows_document(stored.document.name)
        ]
        matching = [
            identifier(stored, parsed)
            for stored in documents
            if _matches(stored, parsed := self._parse(stored), filters)
        ]
        return self._page(params, matching, "DocumentIdentifiers", filters)

    async def list_versions(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "ListDocumentVersions", params["Name"])
        versions = await self.repository.list_versions(name)
        stored = await self.repository.find(name)
        infos = [version_info(v, stored.document.default_version) for v in versions]
        return self._page(params, infos, "DocumentVersions", {"Name": [name]})

    @staticmethod
    def _page(
        params: Params, items: list[dict[str, Any]], key: str, query: Mapping[str, Any]
    ) -> dict[str, Any]:
        limit = params.get("MaxResults", MAX_RESULTS)
        digest = query_digest(key, query)
        try:
            offset = page_offset(params.get("NextToken"), digest)
        except InvalidNextToken as exc:
            raise ApiError(exc.code, exc.message) from None
        result: dict[str, Any] = {key: items[offset : offset + limit]}
        if len(items) > offset + limit:
            result["NextToken"] = page_token(offset + limit, digest)
        return result

    async def delete(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._allowed(caller, "DeleteDocument", params["Name"])
        version, version_name = params.get("DocumentVersion"), params.get("VersionName")
        if version is None and version_name is None:
            schedules = [
                s for s in await self.engine.store.schedules.list_all() if s.document_name == name
            ]
            await self.repository.find(name)  # InvalidDocument when there is none
            if schedules:
                raise ApiError(
                    "AssociatedInstances",
                    f"Document {name} is used by {len(schedules)} association(s), for example"
                    f" {schedules[0].association_id}: delete them first",
                )
            await self.repository.delete(name)
            return {}
        stored = await self.repository.find(name, version, version_name)
        number = stored.version.version
        if number == stored.document.default_version:
            raise ApiError(
                "InvalidDocumentOperation",
                f"Version {number} is the default version of {name}: make another version the"
                " default first, or delete the whole document",
            )
        await self.repository.delete(name, number)
        return {}


def _file_version(name: str, path: str, content: str) -> DocumentVersionRecord:
    """A document file shown as version 1, created when the file was last written."""
    file = Path(path)
    modified = datetime.fromtimestamp(file.stat().st_mtime, UTC)
    fmt = "JSON" if file.suffix.lower() == ".json" else "YAML"
    return DocumentVersionRecord(name, 1, content, fmt, content_hash(content), modified)


def _filters(params: Params) -> dict[str, list[str]]:
    """ListDocuments' Filters and legacy DocumentFilterList, grouped by key."""
    grouped: dict[str, list[str]] = {}
    for item in params.get("Filters") or ():
        grouped.setdefault(item.get("Key", ""), []).extend(item.get("Values") or [])
    for item in params.get("DocumentFilterList") or ():
        grouped.setdefault(item["key"], []).append(item["value"])
    for key, values in grouped.items():
        known = key in ("Name", "DocumentType", "Owner", "PlatformTypes", "TargetType")
        if not known and not key.startswith("tag:"):
            raise ApiError("InvalidFilterKey", f"Filter key {key!r} is not supported")
        if key == "Owner":
            if len(values) != 1 or values[0] not in OWNERS:
                raise ApiError(
                    "InvalidFilterValue",
                    f"Owner takes one value of {', '.join(OWNERS)}, not {values}",
                )
    return grouped


def _matches(stored: StoredDocument, parsed: ParsedDocument, filters: Mapping[str, Any]) -> bool:
    document, version = stored.document, stored.version
    for key, values in filters.items():
        if key == "Name" and not any(document.name.startswith(v) for v in values):
            return False
        if key == "DocumentType" and document.document_type not in values:
            return False
        if key == "Owner" and values[0] not in (*OWNERS_MATCHING, "All"):
            return False
        if key == "TargetType" and version.target_type not in values:
            return False
        if key == "PlatformTypes" and not _overlap(values, platforms(parsed)):
            return False
        if key.startswith("tag:"):
            tag = key[4:]
            if tag not in document.tags or (values and document.tags[tag] not in values):
                return False
    return True


def _overlap(wanted: Sequence[str], have: Sequence[str]) -> bool:
    return any(value in have for value in wanted)
