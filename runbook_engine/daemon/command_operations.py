"""The Run Command operations of the SSM API: SendCommand, ListCommands,
ListCommandInvocations, GetCommandInvocation and CancelCommand, against the inventory's
instances, run by this daemon (``command_runner``) with the state in ``store.commands``.

Documents are Command documents (schemaVersion 2.2 or 2.0) by name: one stored with
CreateDocument (``DocumentType: Command``) first, then the ``documents`` directories and
the bundled ``runbooks/`` (``AWS-RunShellScript``), whose files are version 1.

Shapes follow botocore's model: ``DateTime`` members are epoch seconds, the
``StringDateTime`` members of GetCommandInvocation ISO-8601 strings; stdout is cut to
24,000 characters and stderr to 8,000 there, plugin ``Output`` to 2,500 (the store keeps
everything). The caller's policy (operation names, document-name patterns) governs each
operation; listings leave out commands of documents the caller may not see.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_engine.coercion import check_constraints, coerce
from runbook_engine.daemon.command_context import parse_command_document
from runbook_engine.daemon.command_runner import CommandRunner
from runbook_engine.daemon.command_shapes import (
    command_shape,
    get_invocation_shape,
    invocation_shape,
)
from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.filters import FilterError
from runbook_engine.daemon.operations import MAX_RESULTS, ApiError, Caller, Handler, Params
from runbook_engine.daemon.paging import InvalidNextToken, page_offset, page_token, query_digest
from runbook_engine.engine import Engine
from runbook_engine.errors import (
    DocumentMissing,
    DocumentNotFound,
    DocumentVersionMissing,
    TargetError,
)
from runbook_engine.model import CommandDocument
from runbook_engine.parameters import ParameterStoreError
from runbook_engine.store.commands import (
    RUNNING_STATUSES,
    CommandMissing,
    CommandQuery,
    CommandRecord,
    InvocationRecord,
)

SSM_REFERENCE = re.compile(r"\{\{\s*ssm:([^{}\s]+)\s*\}\}")
FILE_VERSIONS = (None, "$DEFAULT", "$LATEST", "1")
EXECUTION_STAGES = {
    "Executing": RUNNING_STATUSES,
    "Complete": ("Success", "Cancelled", "Failed", "TimedOut"),
}
INVOCATION_STATUSES = (
    "Pending", "InProgress", "Delayed", "Success", "Cancelled", "TimedOut", "Failed", "Cancelling",
)  # fmt: skip


class CommandOperations:
    def __init__(self, engine: Engine, config: DaemonConfig, runner: CommandRunner) -> None:
        self.engine = engine
        self.config = config
        self.runner = runner
        self.handlers: dict[str, Handler] = {
            "SendCommand": self.send,
            "ListCommands": self.list_commands,
            "ListCommandInvocations": self.list_invocations,
            "GetCommandInvocation": self.get_invocation,
            "CancelCommand": self.cancel,
        }

    # -- helpers ---------------------------------------------------------------------------

    def _allowed(self, caller: Caller, operation: str, name: str) -> None:
        if not caller.policy.allows_document(name):
            resource = f"arn:aws:ssm:{self.config.region}:{self.config.account_id}:document/{name}"
            raise ApiError(
                "AccessDeniedException",
                f"User: {caller.arn} is not authorized to perform: ssm:{operation} on"
                f" resource: {resource}",
            )

    async def _command(self, command_id: str, caller: Caller, operation: str) -> CommandRecord:
        try:
            command = await self.engine.store.commands.get(command_id)
        except CommandMissing:
            raise ApiError("InvalidCommandId", f"Command {command_id} does not exist") from None
        self._allowed(caller, operation, command.document_name)
        return command

    async def _document(self, name: str, version: str | None) -> tuple[CommandDocument, str]:
        """The Command document and its text: stored first, then the directories."""
        repository = self.engine.repository
        if repository is not None:
            try:
                stored = await repository.find(name, version)
            except DocumentVersionMissing as exc:
                raise ApiError("InvalidDocumentVersion", exc.message) from None
            except DocumentMissing:
                pass
            else:
                if stored.document.document_type != "Command":
                    raise ApiError("InvalidDocument", f"Document {name} is not a Command document")
                content = stored.version.content
                return (
                    parse_command_document(content, name, stored.version.document_format),
                    content,
                )
        try:
            text = self.engine.library.find_by_name(name)
        except DocumentNotFound:
            raise ApiError("InvalidDocument", f"Document {name} does not exist") from None
        if version not in FILE_VERSIONS:
            raise ApiError("InvalidDocumentVersion", f"Document {name} has only version 1")
        return parse_command_document(text.content, text.path), text.content

    async def _resolve_references(
        self, parameters: dict[str, list[str]], caller: Caller
    ) -> dict[str, list[str]]:
        """``{{ssm:name}}`` (or ``name:version``) in values, read from the Parameter Store
        before delivery as SSM does; String and StringList only (a SecureString is read
        by the script itself). The caller's policy must allow the parameter."""
        wanted = {
            match.group(1)
            for values in parameters.values()
            for value in values
            for match in SSM_REFERENCE.finditer(value)
        }
        if not wanted:
            return parameters
        found: dict[str, str] = {}
        for reference in sorted(wanted):
            name = reference.split(":", 1)[0]
            if not caller.policy.allows_parameter(name):
                raise ApiError(
                    "AccessDeniedException",
                    f"User: {caller.arn} is not authorized to perform: ssm:GetParameter on"
                    f" resource: arn:aws:ssm:{self.config.region}:{self.config.account_id}"
                    f":parameter/{name.lstrip('/')}",
                )
            try:
                stored = await self.engine.parameters.get(reference)
            except ParameterStoreError as exc:
                raise ApiError(
                    "InvalidParameters", f"{{{{ssm:{reference}}}}}: {exc.message}"
                ) from None
            if stored.type == "SecureString":
                raise ApiError(
                    "InvalidParameters",
                    f"{{{{ssm:{reference}}}}} is a SecureString parameter: read it in the script",
                )
            found[reference] = stored.value
        return {
            name: [SSM_REFERENCE.sub(lambda m: found[m.group(1)], value) for value in values]
            for name, values in parameters.items()
        }

    # -- SendCommand -------------------------------------------------------------------------

    async def send(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = str(params["DocumentName"])
        if name.startswith("arn:"):
            name = name.rsplit("document/", 1)[-1]
        self._allowed(caller, "SendCommand", name)
        ids = [str(i) for i in params.get("InstanceIds") or ()]
        targets = [dict(t) for t in params.get("Targets") or ()]
        if bool(ids) == bool(targets):
            raise ApiError(
                "ValidationException", "Give either InstanceIds or Targets (one of them)"
            )
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ApiError(
                "DuplicateInstanceId", f"Instance ids given twice: {', '.join(duplicates)}"
            )
        version = params.get("DocumentVersion")
        document, content = await self._document(name, version)
        if not document.runnable:
            raise ApiError(
                "InvalidDocument",
                f"{name} is a schema {document.schema_version} Command document; only schema"
                " 2.2 and 2.0 documents run here",
            )
        given = {str(k): list(v) for k, v in (params.get("Parameters") or {}).items()}
        parameters = await self._resolve_references(given, caller)
        check_parameters(document, parameters)  # before anything is stored
        try:
            instances = await self.engine.fleet.resolve(ids or None, targets or None)
        except TargetError as exc:
            code = "InvalidInstanceId" if ids else "ValidationException"
            raise ApiError(code, exc.message) from None
        now = self.engine.now()
        command = CommandRecord(
            str(uuid.uuid4()),
            name,
            str(version or "$DEFAULT"),
            content,
            now,
            caller.arn,
            comment=str(params.get("Comment") or ""),
            parameters=parameters,
            instance_ids=tuple(ids),
            targets=tuple(targets),
            max_concurrency=str(params.get("MaxConcurrency") or "50"),
            max_errors=str(params.get("MaxErrors") or "0"),
            timeout_seconds=params.get("TimeoutSeconds"),
            target_count=len(instances),
            owner=self.engine.owner,
            lease_expires=now + timedelta(seconds=self.runner.lease_seconds),
        )
        invocations = [
            InvocationRecord(command.command_id, i.id, n, i.tags.get("Name", i.id))
            for n, i in enumerate(instances)
        ]
        await self.engine.store.commands.create(command, invocations)
        await self.runner.submit(command)
        return {"Command": command_shape(command)}

    # -- listings ----------------------------------------------------------------------------

    async def list_commands(self, params: Params, caller: Caller) -> dict[str, Any]:
        query = await self._query(params, caller, "ListCommands", for_invocations=False)
        limit = params.get("MaxResults", MAX_RESULTS)
        asked = (params.get("CommandId"), params.get("InstanceId"), params.get("Filters"))
        digest = query_digest("ListCommands", *asked)
        offset = _offset(params.get("NextToken"), digest)
        found: list[CommandRecord] = []
        if query is not None:
            found = await self.engine.store.commands.list_commands(
                query, limit=limit + 1, offset=offset
            )
        result: dict[str, Any] = {
            "Commands": [
                command_shape(c)
                for c in found[:limit]
                if caller.policy.allows_document(c.document_name)
            ]
        }
        if len(found) > limit:
            result["NextToken"] = page_token(offset + limit, digest)
        return result

    async def list_invocations(self, params: Params, caller: Caller) -> dict[str, Any]:
        query = await self._query(params, caller, "ListCommandInvocations", for_invocations=True)
        limit = params.get("MaxResults", MAX_RESULTS)
        details = bool(params.get("Details"))
        asked = (params.get("CommandId"), params.get("InstanceId"), params.get("Filters"))
        digest = query_digest("ListCommandInvocations", *asked, details)
        offset = _offset(params.get("NextToken"), digest)
        found: list[InvocationRecord] = []
        if query is not None:
            found = await self.engine.store.commands.list_invocations(
                query, limit=limit + 1, offset=offset
            )
        commands: dict[str, CommandRecord] = {}
        shapes = []
        for invocation in found[:limit]:
            command = commands.get(invocation.command_id)
            if command is None:
                command = await self.engine.store.commands.get(invocation.command_id)
                commands[command.command_id] = command
            if caller.policy.allows_document(command.document_name):
                shapes.append(invocation_shape(invocation, command, details))
        result: dict[str, Any] = {"CommandInvocations": shapes}
        if len(found) > limit:
            result["NextToken"] = page_token(offset + limit, digest)
        return result

    async def _query(
        self, params: Params, caller: Caller, operation: str, *, for_invocations: bool
    ) -> CommandQuery | None:
        """The store query of a listing; None when nothing can match."""
        command_id = params.get("CommandId")
        if command_id is not None:
            await self._command(command_id, caller, operation)
        grouped: dict[str, str] = {}
        for item in params.get("Filters") or ():
            grouped[item["key"]] = item["value"]
        statuses: set[str] | None = None
        if "Status" in grouped:
            value = grouped["Status"]
            if value not in INVOCATION_STATUSES:
                raise FilterError(f"Status value {value!r} is not a command status")
            statuses = {value}
        if "ExecutionStage" in grouped:
            stage = grouped["ExecutionStage"]
            if stage not in EXECUTION_STAGES:
                raise FilterError(f"ExecutionStage value {stage!r} is not Executing or Complete")
            wanted = set(EXECUTION_STAGES[stage])
            if for_invocations:
                wanted |= {"Delayed"} if stage == "Executing" else set()
            statuses = wanted if statuses is None else statuses & wanted
        if statuses is not None and not statuses:
            return None
        return CommandQuery(
            command_id=command_id,
            instance_id=params.get("InstanceId"),
            statuses=tuple(sorted(statuses or ())),
            document_name=grouped.get("DocumentName"),
            invoked_after=_instant("InvokedAfter", grouped.get("InvokedAfter")),
            invoked_before=_instant("InvokedBefore", grouped.get("InvokedBefore")),
        )

    # -- one invocation, cancellation ---------------------------------------------------------

    async def get_invocation(self, params: Params, caller: Caller) -> dict[str, Any]:
        command_id, instance_id = params["CommandId"], params["InstanceId"]
        missing = ApiError(
            "InvocationDoesNotExist",
            f"Command {command_id} has no invocation on instance {instance_id}",
        )
        try:
            command = await self.engine.store.commands.get(command_id)
        except CommandMissing:
            raise missing from None
        self._allowed(caller, "GetCommandInvocation", command.document_name)
        found = await self.engine.store.commands.list_invocations(
            CommandQuery(command_id=command_id, instance_id=instance_id), limit=1
        )
        if not found:
            raise missing
        return get_invocation_shape(found[0], command, params.get("PluginName"))

    async def cancel(self, params: Params, caller: Caller) -> dict[str, Any]:
        command = await self._command(params["CommandId"], caller, "CancelCommand")
        ids = [str(i) for i in params.get("InstanceIds") or ()]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ApiError(
                "DuplicateInstanceId", f"Instance ids given twice: {', '.join(duplicates)}"
            )
        if ids:
            invocations = await self.engine.store.commands.list_invocations(
                CommandQuery(command_id=command.command_id), limit=10_000
            )
            known = {i.instance_id for i in invocations}
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ApiError(
                    "InvalidInstanceId",
                    f"Command {command.command_id} does not run on {', '.join(unknown)}",
                )
        await self.runner.cancel(command.command_id, ids)
        return {}


def check_parameters(document: CommandDocument, supplied: Mapping[str, Sequence[str]]) -> None:
    """``InvalidParameters`` unless the values fit the document's declarations (the
    action checks them again when it runs; this answers the request at once)."""
    problems: list[str] = []
    for name in supplied:
        if name not in document.parameters:
            declared = ", ".join(sorted(document.parameters)) or "none"
            problems.append(f"parameter {name!r} is not declared (declared: {declared})")
    for name, param in document.parameters.items():
        if name not in supplied:
            if not param.has_default:
                problems.append(f"parameter {name!r} is required")
            continue
        try:
            value = coerce(param, list(supplied[name]))
        except ValueError as exc:
            problems.append(f"parameter {name!r}: {exc}")
            continue
        problems.extend(f"parameter {name!r}: {p}" for p in check_constraints(param, value))
    if problems:
        raise ApiError("InvalidParameters", f"{document.name}: " + "; ".join(problems))


def _instant(key: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(
            f"{key} value {value!r} is not an ISO-8601 time such as 2018-12-25T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _offset(token: str | None, digest: str) -> int:
    try:
        return page_offset(token, digest)
    except InvalidNextToken as exc:
        raise ApiError(exc.code, exc.message) from None
