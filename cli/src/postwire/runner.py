"""Run services in this process: one HTTP server (uvicorn) and one event loop (uvloop)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import uvicorn
import uvloop

from postwire.registry import SERVICES
from postwire_common.config import Settings
from postwire_common.http.app import build_app
from postwire_common.service import StartupError, wait_for_dependencies

log = logging.getLogger("postwire")


async def serve(names: Sequence[str], settings: Settings) -> bool:
    """Serve until SIGINT/SIGTERM; False if the services could not start."""
    await wait_for_dependencies(settings)
    services = [SERVICES[name](settings) for name in names]
    app = build_app(settings, services)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    log.info(
        "starting",
        extra={"services": list(names), "http": f"{settings.http_host}:{settings.http_port}"},
    )
    await server.serve()
    return server.started


def run(names: Sequence[str], settings: Settings) -> int:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # previous handler; a no-op one lets the process exit 0 after a clean shutdown.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        started = uvloop.run(serve(names, settings))
    except StartupError as exc:
        print(f"postwire: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0
    if not started:
        print("postwire: the services did not start; see the log above", file=sys.stderr)
        return 3
    return 0
