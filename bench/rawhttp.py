"""A minimal HTTP/1.1 keep-alive client for load generation.

httpx spends as much CPU per request as postwire does serving it; on a small machine the
benchmark would measure its own client. This client does only what the benchmark needs:
POST a JSON body on a persistent connection and read a Content-Length response.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any


class RawHttpConnection:
    def __init__(self, host: str, port: int, user: str, key: str) -> None:
        self._host, self._port = host, port
        token = base64.b64encode(f"{user}:{key}".encode()).decode()
        self._auth = f"Authorization: Basic {token}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\n{self._auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self._writer.write(head + payload)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self._reader.readexactly(length)
        return status, json.loads(data)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
