"""What CreateDocument and UpdateDocument check before a version is stored, and the
shapes the document operations answer with (DocumentDescription, DocumentIdentifier,
DocumentVersionInfo).

Checks, in order: the name (pattern, reserved prefixes), the size (64 KB of UTF-8,
``MaxDocumentSizeExceeded``), the format (JSON content must parse as JSON; YAML as
YAML), the schema version against the document type (``InvalidDocumentSchemaVersion``),
then the whole validation ``runbook validate`` runs (``InvalidDocumentContent`` with
every located problem: ``line L, column C (path): message``). Only Automation and
Command documents are accepted: they are what this server runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from runbook_engine.command_documents import COMMAND_SCHEMA_VERSIONS
from runbook_engine.daemon.operations import ApiError
from runbook_engine.diagnostics import format_path
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import CommandDocument, Runbook
from runbook_engine.source import SourceSyntaxError, load_source
from runbook_engine.store.documents import DocumentVersionRecord, StoredDocument
from runbook_engine.validation import validate_source

MAX_CONTENT_BYTES = 64 * 1024
MAX_VERSIONS = 1000
NAME = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
RESERVED_PREFIXES = ("aws", "amazon", "amzn")  # AWSEC2, AWSConfigRemediation, AWSSupport too
DOCUMENT_TYPES = ("Automation", "Command")
SCHEMA_VERSIONS = {"Automation": ("0.3",), "Command": COMMAND_SCHEMA_VERSIONS}
MAX_PROBLEMS_SHOWN = 10

ParsedDocument = Runbook | CommandDocument


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ApiError(
            "ValidationException",
            f"Document name {name!r} must be 3 to 128 letters, digits, '_', '-' or '.'",
        )
    if name.lower().startswith(RESERVED_PREFIXES):
        raise ApiError(
            "ValidationException",
            f"Document name {name!r} begins with a prefix reserved for AWS documents"
            " (aws, amazon, amzn)",
        )


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def check_content(
    name: str,
    content: str,
    document_format: str,
    document_type: str,
    schemas: Mapping[str, ActionSchema],
) -> ParsedDocument:
    """The parsed document, or ``ApiError`` saying what is wrong with it."""
    if document_type not in DOCUMENT_TYPES:
        raise ApiError(
            "InvalidDocumentContent",
            f"DocumentType {document_type} is not supported by this server: it stores"
            " Automation and Command documents",
        )
    size = len(content.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        raise ApiError(
            "MaxDocumentSizeExceeded",
            f"The content is {size} bytes; a document may have at most {MAX_CONTENT_BYTES}",
        )
    if document_format not in ("JSON", "YAML"):
        raise ApiError(
            "InvalidDocumentContent",
            f"DocumentFormat {document_format} is not supported for {document_type}"
            " documents: use JSON or YAML",
        )
    try:
        source = load_source(content, name, "json" if document_format == "JSON" else "yaml")
    except SourceSyntaxError as exc:
        where = f"line {exc.diagnostic.line}, column {exc.diagnostic.column}"
        hint = " (set DocumentFormat to YAML for YAML content)" if document_format == "JSON" else ""
        raise ApiError(
            "InvalidDocumentContent",
            f"The content is not valid {document_format}{hint}: {where}: {exc.diagnostic.message}",
        ) from None
    data = source.data
    version = str(data.get("schemaVersion", "")) if isinstance(data, dict) else ""
    if version not in SCHEMA_VERSIONS[document_type]:
        other = "Command" if document_type == "Automation" else "Automation"
        hint = f" (for a {other} document pass DocumentType={other})" if version else ""
        raise ApiError(
            "InvalidDocumentSchemaVersion",
            f"schemaVersion {version or '(missing)'} is not valid for a {document_type}"
            f" document: use {' or '.join(SCHEMA_VERSIONS[document_type])}{hint}",
        )
    report = validate_source(source, schemas, name)
    if report.errors or report.document is None:
        problems = [
            f"line {d.line}, column {d.column}"
            + (f" ({format_path(d.path)})" if d.path else "")
            + f": {d.message}"
            for d in report.errors
        ] or ["the document could not be read"]
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (
            f"; and {more} more" if more > 0 else ""
        )
        raise ApiError("InvalidDocumentContent", f"Document {name} is not valid: {shown}")
    return report.document


def convert(content: str, stored_format: str, wanted: str | None) -> tuple[str, str]:
    """GetDocument's content in the requested format (JSON <-> YAML), and that format."""
    if wanted is None or wanted == stored_format:
        return content, stored_format
    if wanted == "TEXT":
        raise ApiError("ValidationException", "DocumentFormat TEXT applies to other document types")
    data = json.loads(content) if stored_format == "JSON" else yaml.safe_load(content)
    if wanted == "JSON":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str), "JSON"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "YAML"


def _parameters(document: ParsedDocument) -> list[dict[str, Any]]:
    shaped = []
    for parameter in document.parameters.values():
        item: dict[str, Any] = {"Name": parameter.name, "Type": parameter.type}
        if parameter.description:
            item["Description"] = parameter.description
        if parameter.has_default:
            default = parameter.default
            item["DefaultValue"] = default if isinstance(default, str) else json.dumps(default)
        shaped.append(item)
    return shaped


def platforms(document: ParsedDocument) -> list[str]:
    if isinstance(document, Runbook):
        return ["Windows", "Linux", "MacOS"]
    actions = {plugin.action for plugin in document.plugins}
    platforms = []
    if actions - {"aws:runPowerShellScript"}:
        platforms += ["Linux", "MacOS"]
    if "aws:runPowerShellScript" in actions:
        platforms.insert(0, "Windows")
    return platforms


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def description(stored: StoredDocument, parsed: ParsedDocument) -> dict[str, Any]:
    """DocumentDescription of one version (CreateDocument, UpdateDocument, DescribeDocument)."""
    document, version = stored.document, stored.version
    shape: dict[str, Any] = {
        "Hash": version.content_hash,
        "HashType": "Sha256",
        "Name": document.name,
        "Owner": document.owner,
        "CreatedDate": _epoch(version.created),
        "Status": "Active",
        "DocumentVersion": str(version.version),
        "Description": parsed.description or None,
        "Parameters": _parameters(parsed),
        "PlatformTypes": platforms(parsed),
        "DocumentType": document.document_type,
        "SchemaVersion": parsed.schema_version,
        "LatestVersion": str(document.latest_version),
        "DefaultVersion": str(document.default_version),
        "DocumentFormat": version.document_format,
        "Tags": _tags(document.tags),
        "DisplayName": version.display_name,
        "VersionName": version.version_name,
        "TargetType": version.target_type,
    }
    return {k: v for k, v in shape.items() if v is not None}


def identifier(stored: StoredDocument, parsed: ParsedDocument) -> dict[str, Any]:
    """DocumentIdentifier (ListDocuments): the document's default version."""
    document, version = stored.document, stored.version
    shape: dict[str, Any] = {
        "Name": document.name,
        "CreatedDate": _epoch(document.created),
        "Owner": document.owner,
        "PlatformTypes": platforms(parsed),
        "DocumentVersion": str(version.version),
        "DocumentType": document.document_type,
        "SchemaVersion": parsed.schema_version,
        "DocumentFormat": version.document_format,
        "Tags": _tags(document.tags),
        "DisplayName": version.display_name,
        "VersionName": version.version_name,
        "TargetType": version.target_type,
    }
    return {k: v for k, v in shape.items() if v is not None}


def version_info(version: DocumentVersionRecord, default_version: int) -> dict[str, Any]:
    """DocumentVersionInfo (ListDocumentVersions)."""
    shape: dict[str, Any] = {
        "Name": version.name,
        "DocumentVersion": str(version.version),
        "CreatedDate": _epoch(version.created),
        "IsDefaultVersion": version.version == default_version,
        "DocumentFormat": version.document_format,
        "Status": "Active",
        "DisplayName": version.display_name,
        "VersionName": version.version_name,
    }
    return {k: v for k, v in shape.items() if v is not None}
