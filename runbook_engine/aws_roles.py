"""Calls made as the runbook's ``assumeRole`` (runbook_engine.aws.Boto3Caller.for_role).

The role is assumed through STS on the first call, not when the step starts, so a step
that never calls AWS never asks STS; a role that cannot be assumed fails that call with
a Permission failure naming the role. botocore refreshes the credentials through STS
before they expire, so a long wait keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import boto3

from runbook_engine.aws import AwsIdentity, Boto3Caller
from runbook_engine.plugin import ActionError, FailureStage, FailureType


class RoleCaller:
    """Calls made as an assumed role; the role is assumed on the first call, and botocore
    refreshes the credentials through STS before they expire."""

    def __init__(self, base: Boto3Caller, role_arn: str, session_name: str) -> None:
        self.base = base
        self.role_arn = role_arn
        self.session_name = session_name
        self.region = base.region
        self.configured = base.configured
        self._caller: Boto3Caller | None = None
        self._lock = anyio.Lock()

    async def _ready(self) -> Boto3Caller:
        if self._caller is None:
            async with self._lock:
                if self._caller is None:
                    self._caller = await self._assume()
        return self._caller

    async def _assume(self) -> Boto3Caller:
        from botocore.credentials import RefreshableCredentials
        from botocore.session import Session as BotocoreSession

        sts = self.base.client("sts")
        request = {"RoleArn": self.role_arn, "RoleSessionName": self.session_name[:64]}

        def fetch() -> dict[str, str]:
            answer = sts.assume_role(**request)["Credentials"]
            return {
                "access_key": answer["AccessKeyId"],
                "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"],
                "expiry_time": answer["Expiration"].isoformat(),
            }

        try:
            metadata = await self.base.send(fetch, f"sts.AssumeRole {self.role_arn}")
        except ActionError as exc:
            raise ActionError(
                f"cannot assume role {self.role_arn} (the runbook's assumeRole): {exc.message}",
                failure_type=FailureType.PERMISSION,
                stage=FailureStage.PRE_VERIFICATION,
                details=exc.details,
            ) from exc
        credentials = RefreshableCredentials.create_from_metadata(
            metadata, refresh_using=fetch, method="assume-role"
        )
        core = BotocoreSession()
        core._credentials = credentials  # the documented way has no public setter
        session = boto3.Session(botocore_session=core, region_name=self.region)
        return Boto3Caller(self.base.settings, session=session, limiter=self.base.limiter)

    async def call(
        self,
        service: str,
        api: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        caller = await self._ready()
        return await caller.call(service, api, parameters, read_timeout=read_timeout)

    async def identity(self) -> AwsIdentity:
        return await (await self._ready()).identity()

    def poll_delay(self) -> float:
        return self.base.poll_delay()

    def close(self) -> None:
        if self._caller is not None:
            self._caller.close()
