"""Email address and header-value validation shared by the HTTP API and SMTP.

Addresses are checked for syntax only (no DNS here: an address whose domain has no mail
server fails at delivery with status 2). We accept what an SMTP server without SMTPUTF8
can carry: an ASCII local part and a domain that IDNA can encode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from postwire_common.errors import InvalidEmail, InvalidValue

# Control characters (CR and LF above all) are how header injection and SMTP smuggling
# start; Python's email package does not reject them on every path (bpo-43998 and kin).
# Unicode line separators (NEL, LS, PS) count too: some readers break lines at them.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_NAME_ADDR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A validated address with an optional display name."""

    address: str  # ASCII, domain in lower case and IDNA-encoded
    name: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def check_header_value(field: str, value: str) -> str:
    """Refuse CR, LF and other control characters in anything that becomes a header."""
    if _CONTROL.search(value):
        raise InvalidValue(f"{field} must not contain line breaks or control characters")
    return value


# A dot-atom local part of RFC 5322's atext: what nearly every address has. Such an address
# is checked here, with its domain's check cached (domains repeat; a 100,000-row task is
# mostly a few), instead of by validate_email in full (about 150 us an address).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _validate(address: str) -> ValidatedEmail:
    return validate_email(
        address,
        check_deliverability=False,
        allow_smtputf8=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
    )


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """The domain as validate_email checks and encodes it (lower case), or None."""
    try:
        return _validate(f"a@{domain}").ascii_domain.lower()
    except EmailNotValidError:
        return None


def normalize_address(value: str, *, field: str = "address") -> str:
    """Validate one bare address and return it in canonical form (domain lower-cased)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmail(f"{field} is empty")
    if _CONTROL.search(value):
        raise InvalidEmail(f"{field} {value!r} contains control characters")
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _DOT_ATOM.fullmatch(local):
        ascii_domain = _ascii_domain(domain)
        if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= 254:
            return f"{local}@{ascii_domain}"
    try:  # anything else: the full check, which says what is wrong
        result = _validate(address)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{field} {value!r} is not a valid email address: {exc}") from None
    return f"{result.local_part}@{result.ascii_domain.lower()}"


def parse_mailbox(value: str, *, field: str = "address") -> Mailbox:
    """``"Ann <ann@example.org>"``, ``'"Ann" <ann@example.org>'`` or a bare address."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmail(f"{field} is empty")
    check_header_value(field, value)
    match = _NAME_ADDR.match(value)
    if match is None:
        return Mailbox(normalize_address(value, field=field))
    name = match.group("name")
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if len(name) > 200:
        raise InvalidValue(f"the display name in {field} is longer than 200 characters")
    if "<" in name or ">" in name:
        # "Ann <a@x.org>, Bob <b@y.org>" is a list, not one mailbox with a long name.
        raise InvalidEmail(f"{field} must be one address, optionally with a display name")
    return Mailbox(normalize_address(match.group("addr"), field=field), name.strip())
