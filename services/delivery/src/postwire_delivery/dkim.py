"""DKIM signatures (RFC 6376) on each recipient's rendered copy, with dkimpy.

Relaxed/relaxed canonicalisation; the signed headers are ``SIGNED`` (a header that is
absent is signed as absent, so nobody can add it later) and ``From`` is signed once more
than it occurs (oversigned), so a second From cannot be added either.

dkimpy computes RSA signatures in pure Python (two 1024-bit modular powers: about 8 ms a
signature, 125 a second per core, far below delivery's rate). PKCS#1 v1.5 signatures are
deterministic, so :func:`_openssl_sign` computes the same bytes through ``cryptography``
(OpenSSL, about 0.3 ms) and dkimpy is given it instead; canonicalisation, hashing and
the header stay dkimpy's. A unit test checks both give the same signature.

A domain with Ed25519 on (RFC 8463) has a second key: its copies carry an rsa-sha256
signature and, below it, an ed25519-sha256 one (dkimpy through PyNaCl, ~0.1 ms). The RSA
one is always there: receivers that do not know ed25519 ignore the other. Both keys come
as PKCS#8 PEM; :func:`signing_key` tells them apart.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dkim
import dkim.canonicalization
import dkim.crypto
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from postwire_common.crypto import Keyring

log = logging.getLogger("postwire.delivery")

SIGNED = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post",
)  # fmt: skip


RSA_SHA256 = b"rsa-sha256"
ED25519_SHA256 = b"ed25519-sha256"


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str  # d=
    selector: str  # s=
    algorithm: bytes  # a=: RSA_SHA256 or ED25519_SHA256
    private: bytes  # as dkimpy takes it: RSA's PEM, Ed25519's 32-byte seed in base64


def signing_key(domain: str, selector: str, pem: str) -> SigningKey:
    """The decrypted PEM key ``pem`` as dkimpy signs with it, its algorithm read from it."""
    # Only the key's type is wanted here (dkimpy parses RSA keys itself): skip the
    # milliseconds of RSA consistency checks.
    key = serialization.load_pem_private_key(
        pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if isinstance(key, rsa.RSAPrivateKey):
        return SigningKey(domain, selector, RSA_SHA256, pem.encode())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return SigningKey(domain, selector, ED25519_SHA256, base64.b64encode(seed))
    raise ValueError(f"a DKIM key is RSA or Ed25519, not {type(key).__name__}")


def sign(raw: bytes, keys: Sequence[SigningKey]) -> bytes:
    """``raw`` with a DKIM-Signature header per key, the first key's outermost."""
    headers = [
        dkim.sign(
            raw,
            key.selector.encode(),
            key.domain.encode(),
            key.private,
            signature_algorithm=key.algorithm,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[b"from", *SIGNED],  # From twice: oversigned
            linesep=b"\r\n",
        )
        for key in keys
    ]
    return b"".join(headers) + raw


# Copies larger than this are signed in a thread: canonicalising them takes milliseconds.
THREAD_BYTES = 256 * 1024
KEYS_CACHED = 10_000

Lookup = Callable[[str, str, Sequence[str]], Awaitable[dict[str, str]]]


class Signer:
    """Signs a recipient's copy with the keys it was accepted with, by selector; keys are
    read from delivery's table (``lookup``), decrypted once and kept (a selector's key
    never changes: a rotation makes a new selector)."""

    def __init__(self, lookup: Lookup, keyring: Keyring) -> None:
        self._lookup = lookup
        self._keyring = keyring
        self._keys: OrderedDict[tuple[str, str, str], SigningKey] = OrderedDict()

    async def sign(
        self, tenant_id: str, sender: str, selectors: Sequence[str] | None, raw: bytes
    ) -> bytes:
        if not selectors:
            return raw  # accepted before signing existed, or by a domain without keys
        domain = sender.rpartition("@")[2].lower()
        keys = await self._get(tenant_id, domain, selectors)
        if len(raw) > THREAD_BYTES:
            return await asyncio.to_thread(sign, raw, keys)
        return sign(raw, keys)

    async def _get(self, tenant_id: str, domain: str, selectors: Sequence[str]) -> list[SigningKey]:
        missing = [s for s in selectors if (tenant_id, domain, s) not in self._keys]
        if missing:
            found = await self._lookup(tenant_id, domain, missing)
            for selector, stored in found.items():
                pem = self._keyring.decrypt(stored)
                self._keys[(tenant_id, domain, selector)] = signing_key(domain, selector, pem)
            while len(self._keys) > KEYS_CACHED:
                self._keys.popitem(last=False)
        keys = []
        for selector in selectors:
            key = self._keys.get((tenant_id, domain, selector))
            if key is None:  # cannot happen short of a lost row: send, but say so
                log.error("DKIM key missing; sending unsigned", extra={"domain": domain})
                continue
            self._keys.move_to_end((tenant_id, domain, selector))
            keys.append(key)
        return keys


@lru_cache(maxsize=1024)
def _private_key(numbers: tuple[int, ...]) -> rsa.RSAPrivateKey:
    n, e, d, p, q, dp, dq, qi = numbers
    public = rsa.RSAPublicNumbers(e, n)
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()


_FIELDS = (
    "modulus", "publicExponent", "privateExponent", "prime1", "prime2", "exponent1",
    "exponent2", "coefficient",
)  # fmt: skip


def _openssl_sign(digest: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign(hash object, key fields)``, by OpenSSL."""
    if digest.name != "sha256":  # we sign rsa-sha256 only (RFC 8301)
        raise ValueError(f"unexpected DKIM digest {digest.name}")
    key = _private_key(tuple(private_key[f] for f in _FIELDS))
    return key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))


dkim.RSASSA_PKCS1_v1_5_sign = _openssl_sign
# Every recipient's copy of a message has the same body: dkimpy canonicalises it again for
# each (regexes over the whole body, ~seconds for 10 MB x 100 copies). Large bodies'
# canonical form is remembered for the last few bodies (the key is the bytes themselves).
CACHED_BODY_BYTES = 64 * 1024
# Runs that relaxed canonicalisation changes: a tab, or two or more blanks. dkimpy's
# "[\t ]+" also rewrites every single space as itself, a quarter of delivery's time on
# prose; after compression the blank before a line end is one space, removed in C.
_WSP_RUN = re.compile(rb"\t[\t ]*| [\t ]+")


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4, as dkimpy's ``Relaxed.canonicalize_body`` computes it."""
    compressed = _WSP_RUN.sub(b" ", body).replace(b" \r\n", b"\r\n")
    canonical = dkim.canonicalization.correct_empty_body(
        dkim.canonicalization.strip_trailing_lines(compressed)
    )
    return bytes(canonical)


@lru_cache(maxsize=2)
def _cached_relaxed_body(body: bytes) -> bytes:
    return _relaxed_body(body)


def _relaxed_body_of(body: bytes) -> bytes:
    if len(body) < CACHED_BODY_BYTES:
        return _relaxed_body(body)
    return _cached_relaxed_body(body)


dkim.canonicalization.Relaxed.canonicalize_body = staticmethod(_relaxed_body_of)
# dkimpy parses the PEM key (in Python) on every signature, a quarter of its time: the
# same key's parse is remembered (the result is only read).
dkim.parse_pem_private_key = lru_cache(maxsize=1024)(dkim.crypto.parse_pem_private_key)
