"""Dashboard sessions and CSRF tokens: HMAC-signed, kept by the browser, not the server.

A session cookie carries the user name, a random nonce, its expiry and a fingerprint of
the user's password hash, signed with the daemon's session secret (the configured
``dashboard.session_secret``, or a random one per start, which logs everyone out when
the daemon restarts). Changing a user's password or removing the user ends their
sessions at once. The cookie is HttpOnly and SameSite=Strict (Secure under TLS).

Every form carries a CSRF token: the HMAC of the session's nonce (the login form: of a
short-lived pre-login cookie's nonce), checked in constant time on POST. The purposes are
kept apart by a prefix inside the MAC, so a CSRF token can never pass for a session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from runbook_engine.daemon.config import DashboardUser

SESSION_COOKIE = "runbook_session"
LOGIN_COOKIE = "runbook_login"
LOGIN_FORM_SECONDS = 3600


@dataclass(frozen=True)
class Session:
    user: str
    nonce: str
    expires: float


class SessionKeeper:
    def __init__(
        self,
        secret: str | bytes,
        lifetime: float,
        find_user: Callable[[str], DashboardUser | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        self._key = hashlib.sha256(b"runbook-dashboard\0" + raw).digest()
        self.lifetime = lifetime
        self._find_user = find_user
        self._clock = clock

    # -- sessions ---------------------------------------------------------------------

    def issue(self, user: DashboardUser) -> str:
        body = {
            "u": user.name,
            "n": secrets.token_urlsafe(16),
            "e": int(self._clock() + self.lifetime),
            "h": _fingerprint(user),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie stands for, or None (absent, forged, expired, stale)."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            user, nonce, expires, fingerprint = body["u"], body["n"], body["e"], body["h"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not isinstance(expires, int) or expires < self._clock():
            return None
        known = self._find_user(str(user))
        if known is None or not hmac.compare_digest(str(fingerprint), _fingerprint(known)):
            return None
        return Session(str(user), str(nonce), float(expires))

    # -- CSRF -------------------------------------------------------------------------

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def login_nonce(self) -> str:
        """A pre-login cookie value: a nonce and when it was made, signed."""
        made = str(int(self._clock()))
        nonce = f"{secrets.token_urlsafe(16)}~{made}"
        return f"{nonce}.{self._mac('login-cookie', nonce)}"

    def login_token(self, cookie: str | None) -> str | None:
        """The token the login form must send back with this pre-login cookie."""
        if not cookie or cookie.count(".") != 1:
            return None
        nonce, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("login-cookie", nonce)):
            return None
        made = nonce.rpartition("~")[2]
        if not made.isdigit() or int(made) + LOGIN_FORM_SECONDS < self._clock():
            return None
        return self._mac("login", nonce)

    def check_login(self, cookie: str | None, token: str | None) -> bool:
        expected = self.login_token(cookie)
        return expected is not None and bool(token) and hmac.compare_digest(str(token), expected)

    def _mac(self, purpose: str, text: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{text}".encode(), hashlib.sha256).digest()
        return _b64(digest)


def _fingerprint(user: DashboardUser) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
