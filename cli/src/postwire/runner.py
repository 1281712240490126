"""Run services: in this process, or in several identical worker processes.

One process is one event loop (uvloop) with one HTTP server (uvicorn) for the services it
runs. With ``POSTWIRE_PROCESSES`` > 1 this process becomes a supervisor that starts that
many workers, each running the same services as a replica would: they share the HTTP
port (``SO_REUSEPORT``: the kernel spreads connections), compete for bus messages and for
claimed work (``SKIP LOCKED``), exactly as replicas in separate pods do. A Python process
uses one core, so this is how ``run all`` uses the machine. A worker dies with its
supervisor (``PR_SET_PDEATHSIG``); if a worker exits, the supervisor stops the others and
exits with its code, for the orchestrator to restart.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn
import uvloop

from postwire.registry import SERVICES
from postwire_common.config import Settings
from postwire_common.http.app import build_app
from postwire_common.service import StartupError, wait_for_dependencies

log = logging.getLogger("postwire")

WORKER_ENV = "POSTWIRE_WORKER_OF"
MAX_AUTO_PROCESSES = 4


def process_count(names: Sequence[str], settings: Settings) -> int:
    """``POSTWIRE_PROCESSES``, or when it is 0: one per CPU (at most 4) for all services
    in one process, one for anything less (those scale as separate deployments)."""
    if settings.processes:
        return settings.processes
    if set(names) == set(SERVICES):
        return max(1, min(os.cpu_count() or 1, MAX_AUTO_PROCESSES))
    return 1


def check_tls(settings: Settings) -> None:
    """HTTPS needs both files; refuse to start rather than serve plain HTTP by surprise."""
    if bool(settings.http_tls_cert) != bool(settings.http_tls_key):
        raise StartupError("set both POSTWIRE_HTTP_TLS_CERT and POSTWIRE_HTTP_TLS_KEY, or neither")
    for path in (settings.http_tls_cert, settings.http_tls_key):
        if path is not None and not Path(path).is_file():
            raise StartupError(f"{path} (POSTWIRE_HTTP_TLS_*) is not a readable file")


def listening_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A bound socket for uvicorn (it calls listen() once the services have started, so a
    worker still starting gets no connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def serve(names: Sequence[str], settings: Settings, *, shared_port: bool) -> bool:
    """Serve until SIGINT/SIGTERM; False if the services could not start."""
    # Made first (they connect nothing yet): a service that cannot run with these
    # settings (e.g. production without POSTWIRE_SECRET_KEYS) refuses before any wait.
    services = [SERVICES[name](settings) for name in names]
    await wait_for_dependencies(settings)
    app = build_app(settings, services)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=30,
        ssl_certfile=settings.http_tls_cert,
        ssl_keyfile=settings.http_tls_key,
    )
    server = uvicorn.Server(config)
    log.info(
        "starting",
        extra={
            "services": list(names),
            "http": f"{settings.http_host}:{settings.http_port}",
            "tls": settings.http_tls_cert is not None,
        },
    )
    sock = listening_socket(settings.http_host, settings.http_port, shared=shared_port)
    await server.serve(sockets=[sock])
    return server.started


def run(names: Sequence[str], settings: Settings) -> int:
    count = process_count(names, settings)
    if count > 1 and settings.http_port != 0 and WORKER_ENV not in os.environ:
        return supervise(count)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # previous handler; a no-op one lets the process exit 0 after a clean shutdown.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        check_tls(settings)
        started = uvloop.run(serve(names, settings, shared_port=WORKER_ENV in os.environ))
    except StartupError as exc:
        print(f"postwire: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0
    if not started:
        print("postwire: the services did not start; see the log above", file=sys.stderr)
        return 3
    return 0


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(count: int) -> int:
    """Start ``count`` workers (this same command), forward SIGTERM/SIGINT, and exit when
    they have; if one exits by itself, stop the others and exit with its code."""
    env = {**os.environ, WORKER_ENV: str(os.getpid())}
    argv = [sys.executable, "-m", "postwire", *sys.argv[1:]]
    workers = [
        subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)  # noqa: S603
        for _ in range(count)
    ]
    log.info("supervising workers", extra={"workers": [w.pid for w in workers]})
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while any(w.poll() is None for w in workers):
        for worker in workers:
            returned = worker.poll()
            if returned is not None and not stopping:
                code = returned or 1
                log.error("a worker exited; stopping the others", extra={"code": returned})
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return code if not stopping else max((w.returncode or 0) for w in workers)
