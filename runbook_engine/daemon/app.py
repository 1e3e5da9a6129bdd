"""The HTTP face: AWS JSON 1.1 at ``POST /``, Prometheus at ``GET /metrics``, ``GET /healthz``,
and the web dashboard under ``/ui/`` (``dashboard.pages``; ``GET /`` leads there).

A request to ``POST /`` goes through, in order: the body size limit (413), the SigV4
check (``sigv4``), the operation named by ``X-Amz-Target: AmazonSSM.<Op>``
(``UnknownOperationException``), the caller's policy (``AccessDeniedException``), JSON
parsing and the model's input shape (``ValidationException``), then the operation.
Every answer is ``application/x-amz-json-1.1`` with an ``x-amzn-RequestId``; an error is
``{"__type": CODE, "message": TEXT, "Message": TEXT}``, with status 500 only for a fault
of the server.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from runbook_engine.daemon import logs
from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.dashboard.pages import build_dashboard
from runbook_engine.daemon.dashboard.providers import Providers
from runbook_engine.daemon.filters import FilterError
from runbook_engine.daemon.metrics import Metrics
from runbook_engine.daemon.operations import ApiError, Caller, Operations
from runbook_engine.daemon.shapes import RequestProblem, check_request, operation_model
from runbook_engine.daemon.sigv4 import AuthError, SignedRequest, verify
from runbook_engine.engine import Engine
from runbook_engine.errors import RunbookError, StoreError

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "AmazonSSM."
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _TooLarge(Exception):
    pass


def build_app(
    config: DaemonConfig,
    engine: Engine,
    operations: Operations,
    metrics: Metrics,
    providers: Providers | None = None,
) -> Starlette:
    skew = timedelta(seconds=config.clock_skew_seconds)

    async def api(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        operation = "-"
        principal = None
        try:
            body = await _read_body(request, config.max_request_bytes)
            signed = SignedRequest(
                request.method,
                request.scope.get("raw_path", b"/").decode("latin-1"),
                request.scope.get("query_string", b"").decode("latin-1"),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                body,
            )
            credential = verify(
                signed, config.credential, region=config.region, now=engine.now(), max_skew=skew
            )
            principal = credential.principal
            caller = Caller(principal, config.principal_arn(principal), config.policy(principal))
            operation = _operation(request.headers.get("x-amz-target", ""), operations)
            if not caller.policy.allows_operation(operation):
                raise ApiError(
                    "AccessDeniedException",
                    f"User: {caller.arn} is not authorized to perform: ssm:{operation}",
                )
            params = _parse(body)
            model = operation_model(operation)
            assert model is not None
            check_request(model, params)
            result = await operations.handlers[operation](params, caller)
            status, payload = 200, result
        except _TooLarge:
            status, payload = (
                413,
                _error(
                    "ValidationException",
                    f"The request body is larger than {config.max_request_bytes} bytes",
                ),
            )
        except (AuthError, ApiError) as exc:
            status, payload = exc.status, _error(exc.code, exc.message)
        except (RequestProblem, FilterError) as exc:
            status, payload = 400, _error(exc.code, exc.message)
        except StoreError as exc:
            logging.getLogger("runbook_engine.daemon").exception("state database error")
            status, payload = 500, _error("InternalServerError", exc.message)
        except RunbookError as exc:
            status, payload = 400, _error(exc.code, exc.message)
        except Exception:
            logging.getLogger("runbook_engine.daemon").exception("request failed")
            status, payload = 500, _error("InternalServerError", "An internal error occurred")
        code = payload.get("__type", "OK") if status != 200 else "OK"
        metrics.requests.labels(operation, code).inc()
        logs.event(
            "request",
            request_id=request_id,
            operation=operation,
            principal=principal,
            status=status,
            code=code,
            execution_id=payload.get("AutomationExecutionId") if status == 200 else None,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return Response(
            json.dumps(payload),
            status_code=status,
            media_type=CONTENT_TYPE,
            headers={"x-amzn-RequestId": request_id},
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(await metrics.render(engine.store), media_type=PROMETHEUS_TYPE)

    async def health(request: Request) -> Response:
        try:
            counts = await engine.store.count_executions()
        except Exception as exc:  # the database is out of reach: say so, do not crash
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse(
            {"status": "ok", "owner": engine.owner, "executions": sum(counts.values())}
        )

    async def to_dashboard(request: Request) -> Response:
        return RedirectResponse("/ui/", 303)

    return Starlette(
        routes=[
            Route("/", api, methods=["POST"]),
            Route("/", to_dashboard, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            build_dashboard(config, engine, operations.notify, providers),
        ]
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _operation(target: str, operations: Operations) -> str:
    name = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
    if name not in operations.handlers:
        shown = target or "(no X-Amz-Target header)"
        raise ApiError("UnknownOperationException", f"Operation {shown} is not supported")
    return name


def _parse(body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(
            "ValidationException", f"The request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(params, dict):
        raise ApiError("ValidationException", "The request body must be a JSON object")
    return params


def _error(code: str, message: str) -> dict[str, Any]:
    # Both spellings: the model's Parameter Store errors say "message", the others "Message".
    return {"__type": code, "message": message, "Message": message}
