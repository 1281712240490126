"""``POST /``: the vendors' RPC-style APIs, which name the action in the request.

Aliyun's SDKs (``x-acs-action`` header, or ``Action`` in the query string with the older
RPC signature) and Tencent's (``X-TC-Action`` header) post every call to ``/`` of one
endpoint. Each service lists the actions it answers (``Service.actions``), next to the
data they need: sending in ingest, statistics in events. A process answers the actions
of the services it runs; gateways route ``/`` to the owning service by the same header
(``deploy/gateway/nginx.conf``).

::

    POST /  X-TC-Action: SendEmail      ──▶ ("tencent", "SendEmail") handler (ingest)
    POST /  x-acs-action: SingleSendMail ─▶ ("aliyun", "SingleSendMail") handler (ingest)
    POST /  X-TC-Action: GetStatisticsReport ─▶ ("tencent", …) handler (events)
    POST /  X-TC-Action: AnythingElse   ──▶ that vendor's own "unsupported action" error

An action this process does not know answers the vendor's own error for an unknown
action, which its SDK raises with the vendor's code, never a silent success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response

from postwire_common.errors import NotFound
from postwire_common.http.envelope import error_response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one vendor names the action, and how it answers an action it does not have."""

    name: str
    action_of: Callable[[Request], str | None]
    unsupported: Callable[[Request, str], Response]


@dataclass(frozen=True, slots=True)
class Action:
    dialect: Dialect
    name: str
    handler: Handler


def install(app: FastAPI, actions: Iterable[Action]) -> None:
    """Answer ``POST /`` with ``actions`` (nothing is installed when there are none)."""
    listed = list(actions)
    table: Mapping[tuple[str, str], Handler] = {(a.dialect.name, a.name): a.handler for a in listed}
    if not table:
        return
    ordered = list({a.dialect.name: a.dialect for a in listed}.values())

    async def vendor_action(request: Request) -> Response:
        for dialect in ordered:
            name = dialect.action_of(request)
            if name is not None:
                handler = table.get((dialect.name, name))
                if handler is None:
                    return dialect.unsupported(request, name)
                return await handler(request)
        return error_response(
            NotFound(
                "POST / answers the vendors' RPC APIs: name the action in an X-TC-Action "
                "header (Tencent), an x-acs-action header or an Action parameter (Aliyun)"
            )
        )

    app.add_api_route("/", vendor_action, methods=["POST"], include_in_schema=False)
