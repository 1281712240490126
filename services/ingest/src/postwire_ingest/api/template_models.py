"""Request bodies of the template routes (``/v1/templates``, ``/v1/admin/templates``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from postwire_common.http.body import form_schema
from postwire_ingest.api.models import Strict
from postwire_ingest.limits import (
    MAX_TEMPLATE_NAME_CHARS,
    MAX_TEMPLATE_PARAMS,
    MAX_TEMPLATE_SUBJECT_CHARS,
)
from postwire_ingest.templates import Draft, TemplateType

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_NAME_CHARS)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_SUBJECT_CHARS)]
PARAMS = (
    "Parameters are `{{name}}` in the subject and bodies, at most "
    f"{MAX_TEMPLATE_PARAMS} distinct: letters, digits and _, not all digits, not "
    "starting with a digit or _."
)


class TemplateContent(Strict):
    name: Name = Field(description="The template's name (need not be unique).")
    subject: Subject = Field(description="Subject line; may hold parameters.")
    text: str | None = Field(None, description="Plain-text body, up to 1 MB.")
    html: str | None = Field(
        None,
        description="HTML body, up to 1 MB; in a multipart request, a file part. Values "
        "are HTML-escaped where they are inserted.",
    )
    unsubscribe: StrictBool = Field(
        False, description="Add an unsubscribe link to mail sent with this template."
    )

    def draft(self) -> Draft:
        return Draft(self.name, self.subject, self.text, self.html, self.unsubscribe)


class CreateTemplate(TemplateContent):
    type: TemplateType = Field(
        description="trigger or batch: sent by API users of the same type (SendCloud)."
    )


class UpdateTemplate(TemplateContent):
    """A new version; the type stays (copy a template to change it)."""


class CopyTemplate(Strict):
    name: Name | None = Field(None, description="The copy's name; the original's if absent.")
    type: TemplateType | None = Field(None, description="The copy's type; else the original's.")


class PreviewTemplate(Strict):
    variables: dict[str, str] = Field(
        default_factory=dict, description="A value for every parameter of the template."
    )
    version: StrictInt | None = Field(
        None, ge=1, le=2_147_483_647, description="A version to preview; the current if absent."
    )


class SetSensitive(Strict):
    sensitive: StrictBool = Field(
        description="In a sensitive industry: the account's new and changed templates wait "
        "for an operator's approval (KooMessage)."
    )


class RejectTemplate(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why, shown to the account."
    )


def multipart_schema(model: type[TemplateContent]) -> dict[str, Any]:
    """The model as a ``multipart/form-data`` body: every field a form field, ``html``
    a file (or a field)."""
    html = {
        "type": "string",
        "contentMediaType": "text/html",  # OpenAPI 3.1's file part (3.0 said format: binary)
        "description": "The HTML body as a file (UTF-8), up to 1 MB.",
    }
    return form_schema(model, {"html": html})
