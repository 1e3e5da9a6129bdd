"""What actions see of AWS: the caller protocol, its error, response normalisation.

Kept apart from :mod:`runbook_engine.aws` (the boto3 implementation) so that loading the
action plugins does not import boto3: only a step that calls AWS pays for it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from runbook_engine.plugin import ActionError, FailureType

# Error codes AWS services use for throttling (botocore's standard retry list, and 429).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

PERMISSION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthFailure",
        "AuthorizationError",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "NotAuthorized",
        "Forbidden",
        "KMSAccessDeniedException",
    }
)


@dataclass(frozen=True)
class AwsIdentity:
    """Who the caller is: what ``global:ACCOUNT_ID``, ``REGION`` and ``AWS_PARTITION`` say."""

    account_id: str
    region: str
    partition: str
    arn: str


class AwsCaller(Protocol):
    """What an action may ask of AWS."""

    region: str
    configured: bool  # a region, profile or endpoint was set up (not only the fallback)

    async def call(
        self,
        service: str,
        api: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Call ``service``'s operation ``api``; the response normalised for selectors.

        ``read_timeout`` bounds how long one call may wait for the answer (default: the
        configured call timeout). Raises ActionError as the module docstring draws.
        """
        ...

    async def identity(self) -> AwsIdentity:
        """The account, region and partition of the credentials in use."""
        ...

    def poll_delay(self) -> float:
        """Seconds a waiting action sleeps between two polls: the configured interval
        with jitter, so that many waiters do not poll in step."""
        ...


def normalize(value: Any) -> Any:
    """A response as selectors see it: no ``ResponseMetadata``, datetimes as ISO-8601
    text, streams read, bytes as text (base64 when they are not UTF-8), Decimals as
    numbers, tuples as lists (ssm-reference §3.6).

    Plain dicts and lists are changed in place rather than copied: a response is the
    caller's own, freshly parsed, and a copy of every container doubled what each AWS
    step allocates (and what the garbage collector then walks)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value  # most of a response: checked first, without the ABC checks below
    if kind is dict:
        value.pop("ResponseMetadata", None)
        if all(type(k) is str for k in value):
            for key, item in value.items():
                if type(item) is not str:
                    value[key] = normalize(item)  # same keys: safe while iterating
            return value
        return {str(k): normalize(v) for k, v in value.items()}
    if kind is list:
        for index, item in enumerate(value):
            if type(item) is not str:
                value[index] = normalize(item)
        return value
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "read") and callable(value.read):  # botocore StreamingBody
        value = value.read()
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    return value


def is_throttling(code: str, status: int | None) -> bool:
    return code in THROTTLING_CODES or status == 429


def failure_type_of(code: str, status: int | None) -> FailureType:
    if is_throttling(code, status):
        return FailureType.THROTTLING
    if code in PERMISSION_CODES or status == 403:
        return FailureType.PERMISSION
    return FailureType.ACTION


class AwsError(ActionError):
    """A service answered with an error: ``code`` and ``service_message`` as it said them."""

    def __init__(
        self, what: str, code: str, service_message: str, failure_type: FailureType, note: str = ""
    ) -> None:
        super().__init__(
            f"{what} failed: {code}: {service_message}{note}",
            failure_type=failure_type,
            details={"ErrorCode": [code]},
        )
        self.code = code
        self.service_message = service_message
