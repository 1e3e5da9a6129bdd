"""AWS Signature Version 4: check that a request was signed with a configured key.

The server recomputes the signature the way botocore's ``SigV4Auth`` computes it
(canonical request -> string to sign -> HMAC chain of date, region, service) and
compares in constant time. Refusals carry the codes AWS JSON services answer with:

==================================  ====  =============================================
``MissingAuthenticationTokenException``  403  no ``Authorization`` header at all
``IncompleteSignatureException``     400  a header that is not a complete SigV4 header
``UnrecognizedClientException``      400  an access key that is not configured
``InvalidSignatureException``        400  wrong signature, wrong scope, or a date more
                                          than the allowed skew (5 minutes) away from
                                          now: a captured request replayed later fails
==================================  ====  =============================================
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from runbook_engine.daemon.config import Credential

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ssm"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class AuthError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, as received: raw path and query, headers, body."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]  # names in any case, repeats allowed
    body: bytes


def verify(
    request: SignedRequest,
    lookup: Callable[[str], Credential | None],
    *,
    region: str,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=5),
) -> Credential:
    """The credential that signed ``request``, or ``AuthError``."""
    headers = _header_map(request.headers)
    authorization = headers.get("authorization")
    if not authorization:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    fields = _authorization_fields(authorization)
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise AuthError(
            "IncompleteSignatureException",
            f"Credential {fields['Credential']!r} is not of the form "
            "ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        )
    access_key, scope_date, scope_region, scope_service, _ = scope
    credential = lookup(access_key)
    if credential is None:
        raise AuthError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    stamp = headers.get("x-amz-date")
    if not stamp:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires existence of a 'X-Amz-Date' header.",
        )
    try:
        signed_at = datetime.strptime(stamp, TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise AuthError(
            "IncompleteSignatureException", f"X-Amz-Date {stamp!r} is not of the form {TIMESTAMP}"
        ) from None
    _check_time(signed_at, now, max_skew)
    if scope_date != stamp[:8]:
        raise AuthError(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{stamp[:8]}', from '{stamp}'.",
        )
    if scope_region != region:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    if scope_service != SERVICE:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'.",
        )
    signed_headers = fields["SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise AuthError(
            "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    missing = [name for name in signed_headers if name not in headers]
    if missing:
        raise AuthError("InvalidSignatureException", f"Signed header {missing[0]!r} is missing.")
    canonical = canonical_request(request, headers, signed_headers)
    scope_text = "/".join(scope[1:])
    to_sign = "\n".join(
        [ALGORITHM, stamp, scope_text, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = signature(credential.secret_access_key, scope_date, region, to_sign)
    if not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise AuthError("InvalidSignatureException", MISMATCH)
    return credential


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(" ".join(value.split()))
    return {name: ",".join(values) for name, values in merged.items()}


def _authorization_fields(header: str) -> dict[str, str]:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(
            "IncompleteSignatureException",
            f"Unsupported authorization algorithm {algorithm!r}: only {ALGORITHM} is accepted.",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    absent = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if absent:
        raise AuthError(
            "IncompleteSignatureException",
            " ".join(f"Authorization header requires '{name}' parameter." for name in absent),
        )
    return fields


def _check_time(signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    def show(moment: datetime) -> str:
        return moment.strftime(TIMESTAMP)

    minutes = f"{max_skew.total_seconds() / 60:g} min."
    if signed_at < now - max_skew:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {show(signed_at)} is now earlier than {show(now - max_skew)} "
            f"({show(now)} - {minutes})",
        )
    if signed_at > now + max_skew:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature not yet current: {show(signed_at)} is still later than "
            f"{show(now + max_skew)} ({show(now)} + {minutes})",
        )


def canonical_request(
    request: SignedRequest, headers: dict[str, str], signed_headers: Sequence[str]
) -> str:
    return "\n".join(
        [
            request.method.upper(),
            _canonical_path(request.path),
            _canonical_query(request.query),
            "".join(f"{name}:{headers[name]}\n" for name in signed_headers),
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def _canonical_path(raw: str) -> str:
    path = unquote(raw or "/")
    normalized = posixpath.normpath(path)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized.replace("//", "/"), safe="/~")


def _canonical_query(raw: str) -> str:
    """Pairs sorted as sent, the way botocore signs them (it sends them encoded already)."""
    pairs = [part.partition("=")[::2] for part in raw.split("&")] if raw else []
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def signature(secret: str, date: str, region: str, string_to_sign: str) -> str:
    """The HMAC chain: secret -> date -> region -> service -> aws4_request -> signature."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
