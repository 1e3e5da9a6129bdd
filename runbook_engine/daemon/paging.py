"""NextToken for the listing operations: an offset bound to the query that made it.

A token is the base64 of ``{"offset": N, "query": DIGEST}``; a token from another query
(other filters, another document) is ``InvalidNextToken``, as AWS answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any


class InvalidNextToken(Exception):
    code = "InvalidNextToken"
    message = "The specified token isn't valid."


def query_digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def page_token(offset: int, digest: str) -> str:
    raw = json.dumps({"offset": offset, "query": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def page_offset(token: str | None, digest: str) -> int:
    """The position a NextToken stands for; it must come from the same query."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
        if data["query"] != digest or not isinstance(offset, int) or offset < 0:
            raise ValueError("another query's token")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidNextToken from None
    return offset
