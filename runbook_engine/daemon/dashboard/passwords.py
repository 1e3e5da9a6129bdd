"""Dashboard passwords: scrypt hashes in the configuration file, never the passwords.

A hash reads ``scrypt$N$r$p$SALT$KEY`` (salt and key in unpadded URL-safe base64), so
the cost can be raised later without breaking hashes already written. ``runbook
dashboard-password`` prints one. Only the standard library is used (``hashlib.scrypt``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# 16 MiB of memory and some 50 ms per check: slow for a guesser, quick for a person.
COST, BLOCK_SIZE, PARALLELISM = 2**14, 8, 1
KEY_BYTES = 32
SALT_BYTES = 16
_MAX_COST = 2**20  # refuse hashes that would make every login take seconds


class PasswordHashError(ValueError):
    """A configured hash that is not of the form ``scrypt$N$r$p$SALT$KEY``."""


def hash_password(password: str, *, cost: int = COST) -> str:
    """A new salted hash of ``password`` for the configuration file."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, cost, BLOCK_SIZE, PARALLELISM)
    return "$".join((SCHEME, str(cost), str(BLOCK_SIZE), str(PARALLELISM), _b64(salt), _b64(key)))


def check_hash(text: str) -> None:
    """Raise ``PasswordHashError`` unless ``text`` is a hash ``verify_password`` can use."""
    _parse(text)


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match ``stored``? (constant time in the key comparison)"""
    cost, block_size, parallelism, salt, key = _parse(stored)
    candidate = _derive(password, salt, cost, block_size, parallelism, len(key))
    return hmac.compare_digest(candidate, key)


@functools.cache
def decoy_hash() -> str:
    """Checked against when the user name is unknown, so that a wrong name takes as long
    as a wrong password and does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def _derive(
    password: str, salt: bytes, cost: int, block_size: int, parallelism: int, length: int = 32
) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=cost,
        r=block_size,
        p=parallelism,
        maxmem=256 * block_size * cost * parallelism + 2**20,
        dklen=length,
    )


def _parse(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$") if isinstance(text, str) else []
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError(
            "a password hash reads scrypt$N$r$p$SALT$KEY (make one with"
            " 'runbook dashboard-password')"
        )
    try:
        cost, block_size, parallelism = (int(p) for p in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise PasswordHashError("a password hash has a malformed number or base64 part") from None
    if cost < 2 or cost & (cost - 1) or cost > _MAX_COST:
        raise PasswordHashError(f"scrypt N must be a power of two up to {_MAX_COST}")
    if not 1 <= block_size <= 32 or not 1 <= parallelism <= 16:
        raise PasswordHashError("scrypt r must be 1..32 and p 1..16")
    if len(salt) < 8 or len(key) < 16:
        raise PasswordHashError("a password hash needs a salt of 8 bytes and a key of 16 or more")
    return cost, block_size, parallelism, salt, key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
