"""One FastAPI app for the services a process runs.

Every process answers ``/healthz`` (alive), ``/readyz`` (its services reach RabbitMQ and
PostgreSQL) and ``/metrics`` (Prometheus), whatever services it runs; the API routers
are those of its services, described by ``/openapi.json`` and ``/docs`` (see
``openapi.py``). The identity pool is opened here, once per process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postwire_common import asyncapi, db
from postwire_common.config import Settings
from postwire_common.crypto import keyring
from postwire_common.http import actions, openapi
from postwire_common.http.client_address import networks
from postwire_common.http.envelope import envelope_response, install_error_handlers
from postwire_common.http.hygiene import InputHygieneMiddleware
from postwire_common.http.limits import BodyLimitMiddleware
from postwire_common.identity import Identity
from postwire_common.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS
from postwire_common.service import Service


def build_app(settings: Settings, services: Sequence[Service]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        identity_pool = await db.create_pool(settings.database_url.get_secret_value(), size=4)
        app.state.identity = Identity(identity_pool, keyring(settings))
        started: list[Service] = []
        try:
            for service in services:
                await service.start()
                started.append(service)
            # Everything made at start lives as long as the process: keep it out of the
            # collector's view, so full collections stay short (they scanned every
            # module, model and route each time, pausing requests for milliseconds).
            gc.collect()
            gc.freeze()
            yield
        finally:
            for service in reversed(started):
                await service.stop()
            await identity_pool.close()

    names = ", ".join(s.name for s in services)
    app = FastAPI(
        title="postwire",
        version="1",
        summary=f"Self-hosted email delivery platform ({names})",
        lifespan=lifespan,
        docs_url=None,  # openapi.install serves /docs with Swagger UI's assets, offline
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.trusted_proxies = networks(settings.trusted_proxies)  # client_address.py
    app.state.services = list(services)
    install_error_handlers(app)
    openapi.install(app, docs_url="/docs")
    asyncapi.install(app)  # /asyncapi.json: the bus (exchanges, queues, messages)
    larger: dict[tuple[str, str], int] = {}
    for service in services:
        larger.update(service.body_limits)
    app.add_middleware(BodyLimitMiddleware, larger=larger)
    app.add_middleware(InputHygieneMiddleware)
    app.add_middleware(MetricsMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return envelope_response({"services": [s.name for s in services]})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks = {s.name: await s.readiness() for s in services}
        ready = all(all(c.values()) for c in checks.values())
        return envelope_response(
            checks,
            code="ok" if ready else "internal_error",
            description="ready" if ready else "not ready",
            status=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for service in services:
        for router in service.routers:
            app.include_router(router)
    actions.install(app, [a for s in services for a in s.actions])
    return app


@lru_cache(maxsize=4096)
def _children(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    """Labelled metric children, looked up once per (method, route, status)."""
    return (
        HTTP_REQUESTS.labels(method, template, str(status)),
        HTTP_SECONDS.labels(method, template),
    )


class MetricsMiddleware:
    """Counts and times requests by route template (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            counter, histogram = _children(scope["method"], template, status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)
