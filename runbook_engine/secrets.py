"""SecureString encryption: Fernet (AES-128-CBC with HMAC-SHA256) under a key kept in a
file outside the state database, so a copy of the database alone reveals no secret.

The key file is created on first use with mode 0600 (its directory 0700), at
``$XDG_CONFIG_HOME/runbook/parameter.key`` unless configured otherwise. Losing it
makes the stored SecureString values unreadable; that is the point of keeping it apart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_engine.errors import RunbookError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretError(RunbookError):
    code = "InvalidKeyId"


def default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runbook" / "parameter.key"


class SecretBox:
    """Encrypts and decrypts SecureString values; reads (or makes) the key when first needed."""

    def __init__(self, key_file: str | Path | None = None) -> None:
        self.key_file = Path(key_file) if key_file else default_key_path()
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._load_or_create())
        return self._fernet

    def _load_or_create(self) -> bytes:
        path = self.key_file.expanduser()
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SecretError(f"cannot read the SecureString key {path}: {exc}") from exc
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        return key

    def encrypt(self, plaintext: str) -> str:
        return self._key().encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._key().decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise SecretError(
                f"a SecureString value cannot be decrypted with the key {self.key_file}"
                " (was the key file replaced?)"
            ) from exc
