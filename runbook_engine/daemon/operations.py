"""The Automation operations of the SSM API, on top of the engine.

Each handler takes the request (already checked against the model, see ``shapes``) and
the caller, and returns the response body. Engine errors carry their SSM code
(runbook_engine.errors) and become ``ApiError`` in ``app``; this module raises
``ApiError`` itself for what only the API knows (filters, tokens, access).

Starting returns at once: a worker of some daemon on the same database picks the
execution up (``notify`` wakes this daemon's idle workers without waiting for their poll).
A signal is different: ``hand_off`` (``WorkerPool.hand_off``) drives the woken execution
on this daemon at once, and the answer waits until it went on (bounded; see worker). The
signal, the wake-up and the hand-off's claim are one store call (``send_signal``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runbook_engine.api import automation_execution, metadata, step_execution
from runbook_engine.control import Claimed, send_signal
from runbook_engine.daemon.config import DaemonConfig, Policy
from runbook_engine.daemon.filters import execution_query, step_filter
from runbook_engine.daemon.paging import InvalidNextToken, page_offset, page_token, query_digest
from runbook_engine.engine import Engine, StartOptions
from runbook_engine.errors import DocumentNotFound
from runbook_engine.records import ExecutionRecord
from runbook_engine.status import Mode
from runbook_engine.store import ClientToken

DOCUMENT_NAME = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
MAX_RESULTS = 50
MAX_TAGS = 5
# Start arguments a later release will run (rate control, other accounts, alarms).
NOT_YET = ("TargetLocations", "TargetLocationsURL", "AlarmConfiguration")


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Caller:
    """Who signed the request: the configured principal, its ARN and its policy."""

    principal: str
    arn: str
    policy: Policy


Params = Mapping[str, Any]
Handler = Callable[[Params, Caller], Awaitable[dict[str, Any]]]
# WorkerPool.hand_off: (execution id, send the signal (claiming it if asked)).
HandOff = Callable[[str, Callable[[bool], Awaitable[Claimed | None]]], Awaitable[None]]


class Operations:
    def __init__(
        self,
        engine: Engine,
        config: DaemonConfig,
        notify: Callable[[], None],
        hand_off: HandOff | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.notify = notify
        self.hand_off = hand_off
        self.handlers: dict[str, Handler] = {
            "StartAutomationExecution": self.start,
            "GetAutomationExecution": self.get,
            "DescribeAutomationExecutions": self.describe_executions,
            "DescribeAutomationStepExecutions": self.describe_steps,
            "StopAutomationExecution": self.stop,
            "SendAutomationSignal": self.signal,
        }
        from runbook_engine.daemon.parameter_operations import ParameterOperations  # cycle

        self.handlers.update(ParameterOperations(engine, config).handlers)

    # -- access ------------------------------------------------------------------------

    def _deny(self, caller: Caller, operation: str, document: str) -> ApiError:
        resource = (
            f"arn:aws:ssm:{self.config.region}:{self.config.account_id}"
            f":automation-definition/{document}"
        )
        return ApiError(
            "AccessDeniedException",
            f"User: {caller.arn} is not authorized to perform: ssm:{operation} on resource:"
            f" {resource}",
        )

    async def _execution(
        self, execution_id: str, caller: Caller, operation: str
    ) -> ExecutionRecord:
        execution = await self.engine.store.get_execution(execution_id)
        if not caller.policy.allows_document(execution.document_name):
            raise self._deny(caller, operation, execution.document_name)
        return execution

    # -- operations --------------------------------------------------------------------

    async def start(self, params: Params, caller: Caller) -> dict[str, Any]:
        given = [name for name in NOT_YET if name in params]
        if given:
            raise ApiError(
                "ValidationException",
                f"{', '.join(given)}: not supported by this server yet (start one execution"
                " per account and Region instead)",
            )
        name = str(params["DocumentName"])
        if name.startswith("arn:"):
            name = name.rsplit("document/", 1)[-1]
        if not caller.policy.allows_document(name):
            raise self._deny(caller, "StartAutomationExecution", name)
        if not DOCUMENT_NAME.fullmatch(name):  # a name, never a path on this machine
            raise DocumentNotFound(f"Document {name} was not found")
        # A stored document (CreateDocument) first, then the documents directories.
        document = await self.engine.find_by_name(name, params.get("DocumentVersion"))
        tags: dict[str, str] = {}
        for tag in params.get("Tags") or ():
            if tag["Key"] in tags:
                raise ApiError("ValidationException", f"Tag key {tag['Key']} is given twice")
            tags[tag["Key"]] = tag["Value"]
        if len(tags) > MAX_TAGS:
            raise ApiError("ValidationException", f"At most {MAX_TAGS} tags can be given")
        token = params.get("ClientToken")
        options = StartOptions(
            client_token=ClientToken(str(token), _fingerprint(params)) if token else None,
            tags=tags,
            max_concurrency=params.get("MaxConcurrency"),
            max_errors=params.get("MaxErrors"),
            target_parameter_name=params.get("TargetParameterName"),
            targets=list(params.get("Targets") or ()),
            target_maps=list(params.get("TargetMaps") or ()),
        )
        execution_id = await self.engine.start(
            document,
            {k: list(v) for k, v in (params.get("Parameters") or {}).items()},
            mode=Mode(params.get("Mode", "Auto")),
            principal=caller.arn,
            options=options,
        )
        self.notify()
        return {"AutomationExecutionId": execution_id}

    async def get(self, params: Params, caller: Caller) -> dict[str, Any]:
        execution = await self._execution(
            params["AutomationExecutionId"], caller, "GetAutomationExecution"
        )
        steps = await self.engine.store.get_steps(execution.execution_id)
        runbook = self.engine.runbook_of(execution)
        shape = automation_execution(execution, steps, runbook, fmt="epoch")
        return {"AutomationExecution": shape}

    async def describe_executions(self, params: Params, caller: Caller) -> dict[str, Any]:
        filters = params.get("Filters") or []
        query = execution_query(filters)
        limit = params.get("MaxResults", MAX_RESULTS)
        digest = _digest("DescribeAutomationExecutions", filters)
        offset = _offset(params.get("NextToken"), digest)
        records: list[ExecutionRecord] = []
        if query is not None:
            records = await self.engine.store.list_executions(
                limit=limit + 1, offset=offset, query=query
            )
        page = records[:limit]
        result: dict[str, Any] = {
            "AutomationExecutionMetadataList": [
                metadata(record, "epoch")
                for record in page
                if caller.policy.allows_document(record.document_name)
            ]
        }
        if len(records) > limit:
            result["NextToken"] = _token(offset + limit, digest)
        return result

    async def describe_steps(self, params: Params, caller: Caller) -> dict[str, Any]:
        execution_id = params["AutomationExecutionId"]
        execution = await self._execution(execution_id, caller, "DescribeAutomationStepExecutions")
        filters = params.get("Filters") or []
        keep = step_filter(filters)
        steps = [s for s in await self.engine.store.get_steps(execution_id) if keep(s)]
        if params.get("ReverseOrder"):
            steps.reverse()
        limit = params.get("MaxResults", MAX_RESULTS)
        digest = _digest(execution_id, filters, bool(params.get("ReverseOrder")))
        offset = _offset(params.get("NextToken"), digest)
        runbook = self.engine.runbook_of(execution)
        page = steps[offset : offset + limit]
        result: dict[str, Any] = {
            "StepExecutions": [step_execution(s, runbook, "epoch") for s in page]
        }
        if len(steps) > offset + limit:
            result["NextToken"] = _token(offset + limit, digest)
        return result

    async def stop(self, params: Params, caller: Caller) -> dict[str, Any]:
        execution = await self._execution(
            params["AutomationExecutionId"], caller, "StopAutomationExecution"
        )
        await self.engine.stop(execution.execution_id, params.get("Type", "Cancel"))
        self.notify()
        return {}

    async def signal(self, params: Params, caller: Caller) -> dict[str, Any]:
        # The steps with the execution (one store call): what the signal is checked against.
        execution, steps = await self.engine.store.get_execution_and_steps(
            params["AutomationExecutionId"]
        )
        if not caller.policy.allows_document(execution.document_name):
            raise self._deny(caller, "SendAutomationSignal", execution.document_name)
        payload = {k: list(v) for k, v in (params.get("Payload") or {}).items()}

        async def send(claim: bool) -> Claimed | None:
            return await send_signal(
                self.engine,
                execution.execution_id,
                params["SignalType"],
                None,
                payload,
                caller.arn,
                execution,
                claim=claim,
                steps=steps,
            )

        if self.hand_off is not None:
            await self.hand_off(execution.execution_id, send)
        else:
            await send(False)
            self.notify()
        return {}


def _fingerprint(params: Params) -> str:
    """What a retry with the same ClientToken must repeat exactly."""
    relevant = {k: v for k, v in params.items() if k != "ClientToken"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _digest(*parts: Any) -> str:
    return query_digest(*parts)


def _token(offset: int, digest: str) -> str:
    return page_token(offset, digest)


def _offset(token: str | None, digest: str) -> int:
    try:
        return page_offset(token, digest)
    except InvalidNextToken as exc:
        raise ApiError(exc.code, exc.message) from None
