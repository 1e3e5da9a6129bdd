"""The AWS caller: the one door every AWS-calling action goes through (``ctx.aws``).

``Boto3Caller`` builds boto3 clients from the standard configuration (credential chain,
profiles, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` and the per-service endpoint settings) plus
explicit :class:`~runbook_engine.settings.AwsSettings`, so the same code path serves real
AWS and a local emulator. A call:

1. names its operation as runbooks do (``ec2`` + ``DescribeInstances``, or the
   snake_case and camelCase spellings real runbooks use);
2. has its parameters coerced and validated against botocore's model *before* anything
   is sent (runbook_engine.aws_params), so a wrong name or type fails with its path;
3. runs on a worker thread (boto3 blocks), at most ``max_workers`` at a time;
4. is retried with jittered exponential backoff while the service throttles, up to the
   configured limits (ssm-reference §2.4); botocore's own retries are off, so the limit
   that counts is ours;
5. answers with the response normalised for selectors (:func:`normalize`).

Failures are :class:`~runbook_engine.plugin.ActionError`, which ends the step::

    ActionError
     ├── FailureType.Verification  unknown service or operation, invalid parameters
     │                             (stage InputValidation: nothing was sent)
     ├── FailureType.Throttling    still throttled when the retry limit ran out
     ├── FailureType.Permission    access denied, no credentials, role not assumable
     └── FailureType.Action        any other service error (its code and message kept)

The botocore exception stays as ``__cause__``.

An execution whose runbook sets ``assumeRole`` calls through :meth:`Boto3Caller.for_role`:
STS AssumeRole on first use, credentials refreshed before they expire.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import boto3
import botocore.exceptions as boto_errors
from botocore import xform_name
from botocore.config import Config
from botocore.parsers import ResponseParserError

from runbook_engine.aws_names import operation_name, service_model_name
from runbook_engine.aws_params import prepare_parameters
from runbook_engine.aws_surface import (
    AwsCaller,
    AwsError,
    AwsIdentity,
    failure_type_of,
    is_throttling,
    normalize,
)
from runbook_engine.in_flight import announcing
from runbook_engine.plugin import ActionError, FailureStage, FailureType
from runbook_engine.settings import AwsSettings

if TYPE_CHECKING:
    from runbook_engine.aws_roles import RoleCaller

T = TypeVar("T")


def _error_code(error: boto_errors.ClientError) -> tuple[str, str, int | None]:
    body = error.response.get("Error") or {}
    status = (error.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(body.get("Code") or "Unknown"), str(body.get("Message") or error), status


def client_error(what: str, error: boto_errors.ClientError) -> AwsError:
    """A service's error answer as the step failure: its code, its message, its type."""
    code, message, status = _error_code(error)
    return AwsError(what, code, message, failure_type_of(code, status))


def botocore_error(what: str, error: boto_errors.BotoCoreError) -> ActionError:
    """A failure before any answer: no credentials, no region, endpoint unreachable."""
    if isinstance(error, boto_errors.ParamValidationError):
        return ActionError(
            f"{what}: invalid parameters: {error.kwargs.get('report', error)}",
            failure_type=FailureType.VERIFICATION,
            stage=FailureStage.INPUT_VALIDATION,
        )
    credentials = (
        boto_errors.NoCredentialsError,
        boto_errors.PartialCredentialsError,
        boto_errors.CredentialRetrievalError,
    )
    if isinstance(error, credentials):
        return ActionError(f"{what}: {error}", failure_type=FailureType.PERMISSION)
    return ActionError(f"{what} failed: {error}", failure_type=FailureType.ACTION)


class Boto3Caller:
    """The AWS caller on boto3. One per engine; clients are made once and shared by threads
    (boto3 clients are thread-safe, sessions are not: sessions are touched under a lock)."""

    def __init__(
        self,
        settings: AwsSettings,
        *,
        fallback_region: str = "us-east-1",
        session: boto3.Session | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.settings = settings
        self._session = session or boto3.Session(
            profile_name=settings.profile, region_name=settings.region
        )
        self.region: str = settings.region or self._session.region_name or fallback_region
        # Whether AWS was set up here at all (a region, a profile or an endpoint), as
        # opposed to the fallback region: actions that could run either locally or on AWS
        # (aws:runCommand for ids not in the inventory) go to AWS only when it was.
        self.configured = bool(
            settings.region or settings.profile or settings.endpoint_url
            or self._session.region_name
        )
        self.limiter = limiter or anyio.CapacityLimiter(settings.max_workers)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, float], Any] = {}
        self._roles: dict[tuple[str, str], RoleCaller] = {}

    # -- clients -------------------------------------------------------------------------

    def client(self, service: str, timeout: float | None = None) -> Any:
        """The boto3 client for a service model name, made on first use."""
        read_timeout = float(timeout or self.settings.call_timeout)
        key = (service, read_timeout)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    config = Config(
                        region_name=self.region,
                        connect_timeout=self.settings.connect_timeout,
                        read_timeout=read_timeout,
                        retries={"mode": "standard", "total_max_attempts": 1},
                        parameter_validation=False,  # aws_params validated it already
                        max_pool_connections=max(10, self.settings.max_workers),
                    )
                    client = self._session.client(
                        service, endpoint_url=self.settings.endpoint_url, config=config
                    )
                    self._clients[key] = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        for role in self._roles.values():
            role.close()

    # -- calls ---------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        api: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        model_name = service_model_name(service)
        if model_name is None:
            raise ActionError(
                f"unknown AWS service {service!r}",
                failure_type=FailureType.VERIFICATION,
                stage=FailureStage.INPUT_VALIDATION,
            )
        operation = operation_name(service, api)
        if operation is None:
            raise ActionError(
                f"service {service!r} has no operation {api!r}",
                failure_type=FailureType.VERIFICATION,
                stage=FailureStage.INPUT_VALIDATION,
            )
        what = f"{service}.{operation}"
        client = self.client(model_name, read_timeout)
        model = client.meta.service_model.operation_model(operation)
        params = prepare_parameters(model, dict(parameters or {}), what)
        method = getattr(client, xform_name(operation))
        response = await self.send(lambda: method(**params), what)
        result: dict[str, Any] = response
        return result

    async def send(self, request: Callable[[], Any], what: str) -> Any:
        """Run a blocking boto3 request on a worker thread, retrying while throttled;
        the answer normalised."""
        started = time.monotonic()
        retries = 0
        while True:
            try:
                return await anyio.to_thread.run_sync(
                    announcing(lambda: normalize(request())),
                    limiter=self.limiter,
                    abandon_on_cancel=True,
                )
            except boto_errors.ClientError as exc:
                code, message, status = _error_code(exc)
                if not is_throttling(code, status):
                    raise client_error(what, exc) from exc
                delay = self._backoff(retries)
                elapsed = time.monotonic() - started
                if (
                    retries >= self.settings.throttle_max_retries
                    or elapsed + delay > self.settings.throttle_retry_seconds
                ):
                    note = f" (still throttled after {retries} retries in {elapsed:.1f} s)"
                    raise AwsError(what, code, message, FailureType.THROTTLING, note) from exc
                retries += 1
                await anyio.sleep(delay)
            except boto_errors.BotoCoreError as exc:
                raise botocore_error(what, exc) from exc
            except ResponseParserError as exc:  # not a BotoCoreError
                raise ActionError(
                    f"{what} failed: the service's answer cannot be read: {exc}"
                ) from exc

    def _backoff(self, retries: int) -> float:
        """Full-jitter exponential backoff: uniform in [0, min(max, base * 2^n)]."""
        settings = self.settings
        ceiling = min(settings.throttle_max_delay, settings.throttle_base_delay * 2**retries)
        return random.uniform(0, ceiling)

    def poll_delay(self) -> float:
        interval, jitter = self.settings.poll_interval, self.settings.poll_jitter
        return max(0.0, interval * random.uniform(1 - jitter, 1 + jitter))

    async def identity(self) -> AwsIdentity:
        answer = await self.call("sts", "GetCallerIdentity")
        arn = str(answer.get("Arn", ""))
        parts = arn.split(":")
        partition = parts[1] if len(parts) > 1 and parts[1] else "aws"
        return AwsIdentity(str(answer.get("Account", "")), self.region, partition, arn)

    # -- assumed roles -------------------------------------------------------------------

    def for_role(self, role_arn: str, session_name: str = "runbook-engine") -> AwsCaller:
        """A caller with ``role_arn``'s credentials (assumed on its first call)."""
        from runbook_engine.aws_roles import RoleCaller

        key = (role_arn, session_name)
        caller = self._roles.get(key)
        if caller is None:
            caller = self._roles.setdefault(key, RoleCaller(self, role_arn, session_name))
        return caller
