"""Secrets we store but must read back (webhook app keys, DKIM private keys), encrypted at
rest with the keys of ``POSTWIRE_SECRET_KEYS`` (Fernet: AES-128-CBC + HMAC-SHA256).

```text
POSTWIRE_SECRET_KEYS=new,old      stored value            read
          │                        "fernet:gAAAA…"  ──▶   any key of the list decrypts
          └─ first key encrypts    "-----BEGIN…" (plain)  ──▶   as is, until rewritten
```

- A stored secret is ``fernet:<token>``; a value without that prefix is a row written
  before encryption existed. Services rewrite such rows encrypted when they start
  (:meth:`Keyring.rewrites` with ``rotate=False``).
- Rotation: put a new key first, keep the old one after it, run ``postwire
  rotate-secrets`` (every stored secret is re-encrypted with the first key), then drop
  the old key.
- Production (``POSTWIRE_ENV=production``) refuses to start without keys. Development
  without keys uses one generated into ``.dev/secret-key`` (made once, atomically, so the
  workers of one machine agree and a restart still decrypts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from postwire_common.config import Settings, secret_key_list
from postwire_common.service import StartupError

PREFIX = "fernet:"
DEV_KEY_FILE = Path(".dev/secret-key")

K = TypeVar("K")

log = logging.getLogger("postwire.crypto")


class SecretKeysMissing(StartupError):
    """Production without ``POSTWIRE_SECRET_KEYS``: the service refuses to start."""


class UndecryptableSecret(Exception):
    """A stored secret none of the keys decrypts (a key was dropped too early)."""


class Keyring:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: Iterable[str] | Callable[[], list[str]]) -> None:
        self._source = keys if callable(keys) else (lambda listed=list(keys): listed)
        self._fernet: MultiFernet | None = None

    @property
    def _multi(self) -> MultiFernet:
        if self._fernet is None:
            self._fernet = MultiFernet([Fernet(key) for key in self._source()])
        return self._fernet

    def derived(self, purpose: bytes) -> list[bytes]:
        """One HMAC key per secret key (the first one first), for ``purpose``: so tokens
        we sign (tracking links) rotate with the keys, and no key is used twice."""
        return [
            hmac.new(base64.urlsafe_b64decode(key), purpose, hashlib.sha256).digest()
            for key in self._source()
        ]

    @staticmethod
    def is_encrypted(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not self.is_encrypted(stored):
            return stored  # written before encryption; rewritten at the next start
        try:
            return self._multi.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret(
                "a stored secret is encrypted with a key that is not in POSTWIRE_SECRET_KEYS "
                "(was a key removed before `postwire rotate-secrets` ran?)"
            ) from None

    def rewrites(
        self, stored: Iterable[tuple[K, str]], *, rotate: bool
    ) -> list[tuple[K, str, str]]:
        """``(key, old, new)`` for each stored value that must be rewritten: plaintext
        ones, or with ``rotate`` every one (re-encrypted with the first key)."""
        return [
            (key, old, self.encrypt(self.decrypt(old)))
            for key, old in stored
            if rotate or not self.is_encrypted(old)
        ]


def generate_key() -> str:
    return Fernet.generate_key().decode()


def keyring(settings: Settings, *, dev_key_file: Path = DEV_KEY_FILE) -> Keyring:
    """The keyring of ``settings``; :class:`SecretKeysMissing` in production without keys."""
    if settings.secret_keys is not None:
        return Keyring(secret_key_list(settings.secret_keys.get_secret_value()))
    if settings.env == "production":
        raise SecretKeysMissing(
            "POSTWIRE_SECRET_KEYS is not set: in production (POSTWIRE_ENV=production) stored "
            "secrets must be encrypted with a key you keep; make one with `postwire "
            "generate-secret-key` and set POSTWIRE_SECRET_KEYS to it"
        )
    return Keyring(lambda: [development_key(dev_key_file)])


def development_key(path: Path) -> str:
    """The key in ``path``, generated the first time (atomically: concurrent workers
    all end up with the one that was linked first)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".secret-key.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(generate_key() + "\n")
            try:
                os.link(temp, path)
                log.warning(
                    "POSTWIRE_SECRET_KEYS is not set: stored secrets are encrypted with a "
                    "development key generated into %s (keep that file)",
                    path,
                )
            except FileExistsError:
                pass
        finally:
            os.unlink(temp)
    return path.read_text().strip()
