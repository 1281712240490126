"""SendCloud's X-SMTPAPI (``to``, ``sub``) and its ``%name%`` variables as templates.

Variables go through ``templates.render``, as a template's variables do. mail/send makes
a transient template of subject/plain/html in which each key is a parameter and each
``{`` one whose value is ``{`` (the caller's text is never read as a parameter);
sendtemplate turns each key in the stored template into ``{{name}}`` (``%name%`` ->
``name``), so a template written with ``{{name}}`` or with ``%name%`` is filled. As
everywhere in postwire, values are HTML-escaped in the HTML body (SendCloud inserts
them raw).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from postwire_common.addresses import parse_mailbox
from postwire_ingest.limits import MAX_RECIPIENTS
from postwire_ingest.templates import Rendered
from postwire_ingest.vendors.sendcloud_codes import (
    XSMTPAPI_BAD,
    XSMTPAPI_NO_TO,
    XSMTPAPI_PARSE,
    XSMTPAPI_TO_EMPTY,
    XSMTPAPI_TO_MANY,
)


@dataclass(frozen=True)
class XSmtpApi:
    to: list[str]
    sub: dict[str, list[str]] = field(default_factory=dict)  # key -> one value per to


def parse_xsmtpapi(raw: str) -> XSmtpApi:
    """SendCloud's X-SMTPAPI JSON: ``to`` (required here) and ``sub``."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise XSMTPAPI_BAD("not JSON") from None
    if not isinstance(data, dict):
        raise XSMTPAPI_BAD("not a JSON object")
    unknown = sorted(set(data) - {"to", "sub"})
    if unknown:
        raise XSMTPAPI_BAD(f"postwire does not support {', '.join(unknown)} in xsmtpapi")
    if "to" not in data:
        raise XSMTPAPI_NO_TO()
    to = data["to"]
    if not isinstance(to, list) or not all(isinstance(t, str) for t in to):
        raise XSMTPAPI_BAD("to is a list of addresses")
    if not to:
        raise XSMTPAPI_TO_EMPTY()
    if len(to) > MAX_RECIPIENTS:
        raise XSMTPAPI_TO_MANY()
    sub = data.get("sub") or {}
    if not isinstance(sub, dict):
        raise XSMTPAPI_PARSE("sub is an object of lists")
    values: dict[str, list[str]] = {}
    for key, given in sub.items():
        if not key or not isinstance(given, list) or len(given) != len(to):
            raise XSMTPAPI_PARSE(f"sub {key!r} needs one value per recipient ({len(to)})")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in given):
            raise XSMTPAPI_PARSE(f"sub {key!r}: values are strings or numbers")
        values[key] = [str(v) for v in given]
    return XSmtpApi(to, values)


def recipient_values(
    x: XSmtpApi, names: dict[str, str], shared: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Each recipient's variables (lower-cased address -> parameter -> value), the first
    spelling of a repeated address winning, as recipients are de-duplicated."""
    found: dict[str, dict[str, str]] = {}
    for i, to in enumerate(x.to):
        address = parse_mailbox(to, field="recipient").address.lower()
        found.setdefault(address, {**shared, **{names[k]: v[i] for k, v in x.sub.items()}})
    return found


BRACE = "brace"  # the parameter whose value is "{" in a transient template


def transient_template(content: Rendered, keys: Sequence[str]) -> tuple[Rendered, dict[str, str]]:
    """mail/send's subject/plain/html as a template: each key (``%name%``) a parameter
    ``v<n>`` and each ``{`` the parameter ``brace``, so no text of the caller is ever
    read as a parameter. Returns the template and key -> parameter."""
    names = {key: f"v{n}" for n, key in enumerate(keys)}
    alternatives = [re.escape(k) for k in sorted(keys, key=len, reverse=True)] + [r"\{"]
    pattern = re.compile("|".join(alternatives))

    def convert(text: str | None) -> str | None:
        if text is None:
            return None
        return pattern.sub(lambda m: "{{" + names.get(m.group(), BRACE) + "}}", text)

    subject = convert(content.subject)
    assert subject is not None
    return Rendered(subject, convert(content.text), convert(content.html)), names


def template_with_keys(template: Rendered, keys: Sequence[str]) -> tuple[Rendered, dict[str, str]]:
    """A stored template with each SendCloud key (``%name%``) also a ``{{name}}``."""
    names: dict[str, str] = {}
    for key in keys:
        name = key.strip("%").strip()
        if not name or "{" in name or "}" in name:
            raise XSMTPAPI_PARSE(f"sub {key!r} is not a usable variable name")
        names[key] = name

    def convert(text: str | None) -> str | None:
        for key, name in names.items():
            text = text.replace(key, "{{" + name + "}}") if text is not None else None
        return text

    subject = convert(template.subject)
    assert subject is not None
    return Rendered(subject, convert(template.text), convert(template.html)), names
