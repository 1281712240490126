"""Templates: their parameters and rules, and plain substitution (no template language).

    draft (name, subject, text, html) ──check_draft──▶ parameters ("name", "order_id", …)
        a parameter is {{name}} (spaces inside the braces allowed); at most 15 distinct;
        a name is letters, digits and _, not all digits, not starting with a digit or _
    template + variables ──render──▶ Rendered(subject, text, html)
        one regex pass over each original text; a value is inserted as it is (HTML-escaped
        in the HTML body), never read again: "{{x}}" or "${7*7}" in a value arrives as
        written; a value used in the subject cannot hold a line break (no header injection)
    template type + API user type ──check_type──▶ None, or invalid_permission (SendCloud)

Rules come from KooMessage ("Creating a Sender Template"); types from SendCloud (trigger
templates are sent by trigger API users, batch ones by batch API users). Nothing here
evaluates anything: no expressions, attribute access, filters or loops, so a template or
a value can never run code or read data.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from postwire_common.addresses import check_header_value
from postwire_common.errors import (
    EmptyValue,
    InvalidPermission,
    InvalidValue,
    MissingMacros,
    SizeExceeded,
)
from postwire_common.text import has_control
from postwire_ingest.limits import (
    MAX_TEMPLATE_BODY_BYTES,
    MAX_TEMPLATE_NAME_CHARS,
    MAX_TEMPLATE_PARAMS,
    MAX_TEMPLATE_SUBJECT_CHARS,
)

__all__ = [
    "PARAM_NAME_RULES",
    "Content",
    "Draft",
    "Rendered",
    "Status",
    "Template",
    "TemplateType",
    "check_draft",
    "check_name",
    "check_param_name",
    "check_type",
    "extract_params",
    "render",
]

MAX_PARAM_NAME_CHARS = 64
# Routes that take a template's content, with their body limit raised to it.
TEMPLATE_CONTENT_ROUTES = (
    ("POST", "/v1/templates"),
    ("PUT", "/v1/templates/{template_id}"),
    ("POST", "/v1/admin/templates"),
)

# {{ name }}: whatever stands between the braces (no brace inside) is a parameter's name.
_PARAM = re.compile(r"\{\{([^{}]*)\}\}")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")

PARAM_NAME_RULES = (
    "a name must not be empty",
    "a name has only letters (A-Z, a-z), digits and _",
    "a name must not be all digits",
    "a name must not start with a digit or _",
    f"a name has at most {MAX_PARAM_NAME_CHARS} characters",
)


class TemplateType(StrEnum):
    TRIGGER = "trigger"
    BATCH = "batch"


class Status(StrEnum):
    APPROVING = "approving"  # waits for an operator (accounts in a sensitive industry)
    APPROVED = "approved"  # may be sent
    REJECTED = "rejected"  # an operator refused it (reject_reason says why)


class Content(Protocol):
    """What :func:`render` reads: a template's texts (any version)."""

    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str | None: ...
    @property
    def html(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Draft:
    """A template's content as a caller gives it (create, update, publish)."""

    name: str
    subject: str
    text: str | None
    html: str | None
    unsubscribe: bool = False


@dataclass(frozen=True, slots=True)
class Template:
    """A template at one version (its current one unless asked otherwise)."""

    id: str
    account_id: str | None  # None: a public template, published by the operator
    name: str
    type: TemplateType
    status: Status
    reject_reason: str | None
    version: int
    subject: str
    text: str | None
    html: str | None
    unsubscribe: bool
    params: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def public(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str | None
    html: str | None


def _shown(name: str) -> str:
    return name if len(name) <= 40 else name[:40] + "…"


def check_param_name(name: str) -> str | None:
    """The rule ``name`` breaks (one of :data:`PARAM_NAME_RULES`), or None."""
    empty, chars, digits, start, length = PARAM_NAME_RULES
    if not name:
        return empty
    if not _NAME_CHARS.fullmatch(name):
        return chars
    if name.isdigit():
        return digits
    if name[0].isdigit() or name[0] == "_":
        return start
    if len(name) > MAX_PARAM_NAME_CHARS:
        return length
    return None


def _names(text: str | None) -> Iterator[str]:
    for match in _PARAM.finditer(text or ""):
        yield match.group(1).strip()


def extract_params(subject: str, text: str | None, html: str | None) -> tuple[str, ...]:
    """The distinct parameters of subject, text and HTML in order of first use, each
    name checked; ``invalid_value`` names the first bad one and the rule it breaks."""
    found: dict[str, None] = {}
    for field, value in (("subject", subject), ("text", text), ("html", html)):
        for name in _names(value):
            broken = check_param_name(name)
            if broken is not None:
                raise InvalidValue(f"{field}: parameter {{{{{_shown(name)}}}}}: {broken}")
            found[name] = None
    if len(found) > MAX_TEMPLATE_PARAMS:
        raise InvalidValue(
            f"a template has at most {MAX_TEMPLATE_PARAMS} distinct parameters; this one "
            f"has {len(found)}: {', '.join(found)}"
        )
    return tuple(found)


def check_name(name: str) -> str:
    if not name.strip():
        raise EmptyValue("name is required")
    if len(name) > MAX_TEMPLATE_NAME_CHARS:
        raise InvalidValue(f"name is longer than {MAX_TEMPLATE_NAME_CHARS} characters")
    if has_control(name):
        raise InvalidValue("name must not contain control characters")
    return name


def check_draft(draft: Draft) -> tuple[str, ...]:
    """Check a template's content against every rule; answer its parameters."""
    check_name(draft.name)
    if not draft.subject.strip():
        raise EmptyValue("subject is required")
    if len(draft.subject) > MAX_TEMPLATE_SUBJECT_CHARS:
        raise InvalidValue(f"subject is longer than {MAX_TEMPLATE_SUBJECT_CHARS} characters")
    check_header_value("subject", draft.subject)
    if not (draft.text or draft.html):
        raise EmptyValue("text or html is required")
    for field, body in (("text", draft.text), ("html", draft.html)):
        if body is not None and len(body.encode("utf-8")) > MAX_TEMPLATE_BODY_BYTES:
            limit = MAX_TEMPLATE_BODY_BYTES // (1024 * 1024)
            raise SizeExceeded(f"{field} is larger than {limit} MB")
    return extract_params(draft.subject, draft.text, draft.html)


def check_type(template_type: str, api_user_type: str) -> None:
    """SendCloud: a template is sent by API users of its type; else ``invalid_permission``."""
    if template_type != api_user_type:
        raise InvalidPermission(
            f"a {template_type} template is sent by {template_type} API users; this API "
            f"user is a {api_user_type} one"
        )


def _fill(text: str | None, values: Mapping[str, str], escape: bool) -> str | None:
    if text is None:
        return None

    def value(match: re.Match[str]) -> str:
        given = values[match.group(1).strip()]
        return html_lib.escape(given, quote=True) if escape else given

    # A function as replacement: its result is inserted as it is (no backslash escapes
    # read), and re.sub never scans what it inserted.
    return _PARAM.sub(value, text)


def check_values(template: Content, variables: Mapping[str, str]) -> None:
    """What ``render`` refuses, without rendering: ``missing_macros`` naming every
    parameter without a value, ``invalid_value`` for a subject value that could break
    the header. A task checks each of its rows with this (rendering a large HTML body per
    row would cost far more than the check)."""
    missing = [name for name in used_params(template) if name not in variables]
    if missing:
        raise MissingMacros(f"no value for template parameters: {', '.join(missing)}")
    for name in dict.fromkeys(_names(template.subject)):
        check_header_value(f"variables.{name} (used in the subject)", variables[name])


def used_params(template: Content) -> tuple[str, ...]:
    """The parameters a template's texts use, in order of first use (unchecked: for a
    template already stored, whose subject a task may have replaced)."""
    texts = (template.subject, template.text, template.html)
    return tuple(dict.fromkeys(name for text in texts for name in _names(text)))


def render(template: Content, variables: Mapping[str, str]) -> Rendered:
    """The template's texts with every parameter replaced by its value, in one pass.

    ``missing_macros`` names every parameter without a value; variables the template
    does not use are ignored. Values are HTML-escaped in the HTML body (as text: a value
    is not checked as a URL); a value used in the subject must not hold a line break or
    another control character (``invalid_value``)."""
    check_values(template, variables)
    subject = _fill(template.subject, variables, escape=False)
    assert subject is not None
    return Rendered(
        subject=subject,
        text=_fill(template.text, variables, escape=False),
        html=_fill(template.html, variables, escape=True),
    )
