"""An HTTP server receiving webhook pushes (own thread); HTTPS with ``tls``. And
:class:`HttpPages`, one serving set pages per host (MTA-STS policies).

Connections close after each answer unless ``keep_alive`` (HTTP/1.1, as most receivers
answer). Answers 200 to GET and POST unless told otherwise: ``fail_next(n, status)`` makes the
next ``n`` POSTs fail, ``get_status``/``post_status`` change the default answer.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    peer_port: int = 0  # the client's port: one per connection

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        *,
        keep_alive: bool = False,
    ) -> None:
        self.requests: list[Request] = []
        self.get_status = 200
        self.post_status = 200
        self._failures: list[int] = []
        self._hangs: dict[str, float] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                hang = receiver._hangs.get(self.path) if self.command == "POST" else None
                if hang:
                    time.sleep(hang)  # a black-holed endpoint: the client times out first
                request = Request(
                    self.command,
                    self.path,
                    dict(self.headers),
                    body,
                    peer_port=self.client_address[1],
                )
                status = receiver._record(request)
                payload = b"ok" if status == 200 else b"nope"
                self.send_response(status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:  # the handshake happens in the handler's thread, on first read
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls else "http"
        self.host = host

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def start(self) -> HttpReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def hang(self, path: str, seconds: float) -> None:
        """POSTs to ``path`` wait ``seconds`` before they are answered (0: no more)."""
        self._hangs[path] = seconds

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def _record(self, request: Request) -> int:
        with self._lock:
            self.requests.append(request)
            if request.method == "GET":
                return self.get_status
            if self._failures:
                return self._failures.pop(0)
            return self.post_status

    def posts(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r for r in self.requests if r.method == "POST" and (path is None or r.path == path)
            ]


@dataclass
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class HttpPages:
    """An HTTP server (own thread; HTTPS with ``tls``) answering GETs with the pages set
    per host name and path, and 404 otherwise: ``mta-sts.<domain>`` policies for several
    domains from one server (the certificate names them all). Keeps every request."""

    def __init__(
        self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None, *, port: int = 0
    ) -> None:
        self.requests: list[Request] = []
        self._pages: dict[tuple[str, str], Page] = {}
        self._lock = threading.Lock()
        pages = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                request = Request(
                    "GET", self.path, dict(self.headers), b"", peer_port=self.client_address[1]
                )
                with pages._lock:
                    pages.requests.append(request)
                    page = pages._pages.get((_host_name(request), self.path))
                page = page or Page(b"not found", 404)
                self.send_response(page.status)
                self.send_header("content-type", page.content_type)
                self.send_header("content-length", str(len(page.body)))
                for key, value in page.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(page.body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        if tls is not None:  # the handshake happens in the handler's thread, on first read
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.host = host

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpPages:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def page(
        self,
        host: str,
        path: str,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer GET ``path`` on ``host`` (the Host header, without port) with this."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._pages[(host.lower(), path)] = Page(raw, status, content_type, headers or {})

    def gets(self, host: str | None = None) -> list[Request]:
        """The requests received, for ``host`` only if given."""
        with self._lock:
            return [r for r in self.requests if host is None or _host_name(r) == host.lower()]


def _host_name(request: Request) -> str:
    """The Host header's name, lower case, without its port."""
    value = next((v for k, v in request.headers.items() if k.lower() == "host"), "")
    name, colon, port = value.rpartition(":")
    return (name if colon and port.isdigit() else value).lower()
