"""Stored secrets: encrypted with the first key, decrypted with any; plaintext rows read
as they are until rewritten; production refuses to run without keys; development keeps
one generated key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postwire_common.config import Settings
from postwire_common.crypto import (
    Keyring,
    SecretKeysMissing,
    UndecryptableSecret,
    development_key,
    generate_key,
    keyring,
)
from postwire_common.service import StartupError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("POSTWIRE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_encrypted_values_hide_the_plaintext_and_read_back() -> None:
    ring = Keyring([generate_key()])
    stored = ring.encrypt("s3cret-app-key")
    assert "s3cret" not in stored
    assert stored.startswith("fernet:")
    assert ring.encrypt("s3cret-app-key") != stored  # random IV: equal secrets differ
    assert ring.decrypt(stored) == "s3cret-app-key"


def test_plaintext_from_before_encryption_reads_as_is_and_is_rewritten() -> None:
    ring = Keyring([generate_key()])
    encrypted = ring.encrypt("b")
    [(key, old, new)] = ring.rewrites([("row1", "a"), ("row2", encrypted)], rotate=False)
    assert (key, old) == ("row1", "a")
    assert ring.decrypt("a") == "a"
    assert ring.decrypt(new) == "a"


def test_rotation_re_encrypts_with_the_first_key_so_the_old_one_can_go() -> None:
    old, new = generate_key(), generate_key()
    stored = Keyring([old]).encrypt("dkim-pem")
    rotated = Keyring([new, old]).rewrites([("row", stored)], rotate=True)
    [(_, _, now_stored)] = rotated
    assert Keyring([new]).decrypt(now_stored) == "dkim-pem"
    with pytest.raises(UndecryptableSecret):
        Keyring([new]).decrypt(stored)


def test_production_without_keys_refuses_to_start(env: pytest.MonkeyPatch) -> None:
    env.setenv("POSTWIRE_ENV", "production")
    with pytest.raises(SecretKeysMissing, match="POSTWIRE_SECRET_KEYS") as refused:
        keyring(Settings(_env_file=None))
    assert isinstance(refused.value, StartupError)


def test_production_with_keys_uses_them(env: pytest.MonkeyPatch) -> None:
    first, second = generate_key(), generate_key()
    env.setenv("POSTWIRE_ENV", "production")
    env.setenv("POSTWIRE_SECRET_KEYS", f"{first}, {second}")
    ring = keyring(Settings(_env_file=None))
    assert Keyring([first]).decrypt(ring.encrypt("x")) == "x"
    assert ring.decrypt(Keyring([second]).encrypt("y")) == "y"


def test_development_generates_one_key_when_first_needed(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / ".dev" / "secret-key"
    ring = keyring(Settings(_env_file=None), dev_key_file=path)
    assert not path.exists()  # nothing made until a secret is stored or read
    stored = ring.encrypt("x")
    assert path.exists()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    restarted = keyring(Settings(_env_file=None), dev_key_file=path)
    assert restarted.decrypt(stored) == "x"
    assert development_key(path) == path.read_text().strip()
