"""``/v1/templates``: an account's templates and the public ones (KooMessage, SendCloud).

Create and update take JSON, or ``multipart/form-data`` with the HTML body as a file
part named ``html``; both are read here (``read_content``), after the caller is checked.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.datastructures import UploadFile

from postwire_common.errors import InvalidValue
from postwire_common.http.auth import CurrentPrincipal
from postwire_common.http.body import parse_fields, parse_model, read_body
from postwire_common.http.cursors import decode_cursor, next_cursor
from postwire_common.http.envelope import ok
from postwire_common.http.routes import ApiRoute
from postwire_common.instants import Instant
from postwire_ingest.api.context import IngestContext
from postwire_ingest.api.template_models import (
    PARAMS,
    CopyTemplate,
    CreateTemplate,
    PreviewTemplate,
    TemplateContent,
    UpdateTemplate,
    multipart_schema,
)
from postwire_ingest.limits import MAX_TEMPLATE_REQUEST_BYTES, MAX_TEMPLATES_PER_ACCOUNT
from postwire_ingest.template_store import TemplateQuery
from postwire_ingest.templates import (
    Status,
    Template,
    TemplateType,
    check_draft,
    check_name,
    render,
)

C = TypeVar("C", bound=TemplateContent)


def content_body(model: type[TemplateContent]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads ``model`` as JSON or multipart."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "multipart/form-data": {"schema": multipart_schema(model)},
            },
        }
    }


async def _form_value(name: str, value: UploadFile | str) -> str | bool:
    if isinstance(value, UploadFile):
        if name != "html":
            raise InvalidValue(f"{name}: only html may be a file")
        try:
            return (await value.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidValue("html: the file is not UTF-8 text") from None
    if name == "unsubscribe":  # a form field is text: the two words JSON would have
        if value not in ("true", "false"):
            raise InvalidValue("unsubscribe: true or false")
        return value == "true"
    return value


async def _form_fields(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    async with request.form(
        max_files=1, max_fields=8, max_part_size=MAX_TEMPLATE_REQUEST_BYTES
    ) as form:
        for name, value in form.multi_items():
            if name in fields:
                raise InvalidValue(f"{name}: given more than once")
            fields[name] = await _form_value(name, value)
    return fields


async def read_content(request: Request, model: type[C]) -> C:
    """The body as ``model``: JSON, or multipart/form-data with ``html`` as a file."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "multipart/form-data":
        return parse_model(model, await read_body(request, MAX_TEMPLATE_REQUEST_BYTES))
    return parse_fields(model, await _form_fields(request))


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A listing's row: no bodies."""
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "status": row["status"],
        "reject_reason": row["reject_reason"],
        "public": row["account_id"] is None,
        "version": row["version"],
        "subject": row["subject"],
        "unsubscribe": row["unsubscribe"],
        "params": list(row["params"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def present(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "type": template.type,
        "status": template.status,
        "reject_reason": template.reject_reason,
        "public": template.public,
        "version": template.version,
        "subject": template.subject,
        "text": template.text,
        "html": template.html,
        "unsubscribe": template.unsubscribe,
        "params": list(template.params),
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }


def created(template: Template) -> dict[str, Any]:
    """What API.md says a creation answers, with the version and name."""
    return {
        "id": template.id,
        "params": list(template.params),
        "status": template.status,
        "version": template.version,
        "name": template.name,
        "type": template.type,
    }


def router(ctx: IngestContext) -> APIRouter:
    api = APIRouter(prefix="/v1/templates", tags=["templates"], route_class=ApiRoute)
    store = ctx.templates

    @api.post(
        "",
        status_code=201,
        summary="Create a template",
        description=f"{PARAMS} Approved at once, unless the operator marked the account as "
        "in a sensitive industry: then `approving` until an operator approves it. JSON, or "
        "multipart/form-data with the HTML body as a file part `html`. At most "
        f"{MAX_TEMPLATES_PER_ACCOUNT} templates per account.",
        openapi_extra=content_body(CreateTemplate),
    )
    async def create(request: Request, principal: CurrentPrincipal) -> Response:
        body = await read_content(request, CreateTemplate)
        draft = body.draft()
        params = check_draft(draft)
        template = await store.create(
            principal.tenant_id, draft, body.type, params, MAX_TEMPLATES_PER_ACCOUNT
        )
        return ok(created(template), status=201)

    @api.get("", summary="List the account's templates and the public ones, newest first")
    async def list_(
        principal: CurrentPrincipal,
        name: Annotated[str | None, Query(max_length=64, description="Part of the name.")] = None,
        template_id: Annotated[str | None, Query(alias="id", max_length=64)] = None,
        type_: Annotated[TemplateType | None, Query(alias="type")] = None,
        status: Status | None = None,
        public: Annotated[
            bool | None, Query(description="true: only public ones; false: only yours.")
        ] = None,
        since: Annotated[Instant | None, Query(description="Created at or after.")] = None,
        until: Annotated[Instant | None, Query(description="Created before.")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the last page")] = None,
    ) -> Response:
        query = TemplateQuery(
            principal.tenant_id,
            name=name,
            template_id=template_id,
            type=type_,
            status=status,
            public=public,
            since=since,
            until=until,
            limit=limit,
            after=decode_cursor(cursor) if cursor else None,
        )
        rows = await store.list_templates(query)
        following = next_cursor(rows, limit)
        return ok({"templates": [summary(r) for r in rows], "next_cursor": following})

    @api.get("/{template_id}", summary="Show a template (its current version)")
    async def show(template_id: str, principal: CurrentPrincipal) -> Response:
        return ok(present(await store.get(principal.tenant_id, template_id)))

    @api.put(
        "/{template_id}",
        summary="Change a template: a new version",
        description="The new version becomes current (approving again in a sensitive "
        "account); older versions stay readable, and tasks made with one keep it. The type "
        "stays: copy a template to change it. JSON or multipart/form-data, as when creating.",
        openapi_extra=content_body(UpdateTemplate),
    )
    async def update(template_id: str, request: Request, principal: CurrentPrincipal) -> Response:
        body = await read_content(request, UpdateTemplate)
        draft = body.draft()
        params = check_draft(draft)
        template = await store.update(principal.tenant_id, template_id, draft, params)
        return ok(present(template))

    @api.get("/{template_id}/versions", summary="List a template's versions, newest first")
    async def versions(template_id: str, principal: CurrentPrincipal) -> Response:
        return ok({"versions": await store.versions(principal.tenant_id, template_id)})

    @api.get("/{template_id}/versions/{version}", summary="Show one version of a template")
    async def show_version(
        template_id: str,
        version: Annotated[int, Path(ge=1, le=2_147_483_647)],
        principal: CurrentPrincipal,
    ) -> Response:
        return ok(present(await store.get(principal.tenant_id, template_id, version)))

    @api.post(
        "/{template_id}/copy",
        status_code=201,
        summary="Copy a template (yours or a public one) into a new one of yours",
    )
    async def copy(
        template_id: str, principal: CurrentPrincipal, body: CopyTemplate | None = None
    ) -> Response:
        body = body or CopyTemplate()
        if body.name is not None:
            check_name(body.name)
        template = await store.copy(
            principal.tenant_id, template_id, body.name, body.type, MAX_TEMPLATES_PER_ACCOUNT
        )
        return ok(created(template), status=201)

    @api.post(
        "/{template_id}/preview",
        summary="Render a template with sample variables",
        description="Answers the subject, text and HTML as they would be sent: values are "
        "inserted as written (never evaluated), HTML-escaped in the HTML body; a parameter "
        "without a value answers `missing_macros` naming it.",
    )
    async def preview(
        template_id: str, body: PreviewTemplate, principal: CurrentPrincipal
    ) -> Response:
        template = await store.get(principal.tenant_id, template_id, body.version)
        rendered = render(template, body.variables)
        return ok({"subject": rendered.subject, "text": rendered.text, "html": rendered.html})

    @api.delete(
        "/{template_id}",
        summary="Delete a template and its versions",
        description="Not while a scheduled or running task uses it (`not_available`); a "
        "public template is not yours to delete (`access_denied`).",
    )
    async def delete(template_id: str, principal: CurrentPrincipal) -> Response:
        await store.delete(principal.tenant_id, template_id)
        return ok(None)

    return api
