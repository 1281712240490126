"""The submission listeners' TLS context: the operator's certificate, or a self-signed one
made at start for development (clients must then be told not to verify it)."""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from postwire_common.config import Settings

log = logging.getLogger("postwire.ingest.submission")


def _pem(value: str) -> bytes:
    """A PEM given inline, or the path of a file holding it."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).read_bytes()


def self_signed(hostname: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(settings: Settings, hostname: str) -> ssl.SSLContext:
    if settings.smtp_tls_cert and settings.smtp_tls_key:
        cert = _pem(settings.smtp_tls_cert)
        key = _pem(settings.smtp_tls_key.get_secret_value())
    else:
        log.warning(
            "SMTP submission uses a self-signed certificate made at start; set "
            "POSTWIRE_SMTP_TLS_CERT and POSTWIRE_SMTP_TLS_KEY in production"
        )
        cert, key = self_signed(hostname)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only: the PEMs pass through a private temporary directory.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        os.chmod(key_file, 0o600)
        context.load_cert_chain(cert_file, key_file)
    return context
