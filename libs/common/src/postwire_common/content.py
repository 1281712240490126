"""The content store: a request's content, written once by ingest, read by delivery.

A request's content is what every recipient's copy shares: the common header block
(From, Subject, Date, MIME-Version, custom headers) and the MIME body with its
attachments, both 7-bit with CRLF line ends. Recipients are small rows that point at it
by ``content_id``; delivery renders each recipient's copy with :func:`render` at send
time. So a 10 MB message to 100 recipients is stored, read and cached once, and the bus
never carries MIME.

PostgreSQL is the default store (table ``ingest.contents``; ingest owns and migrates it).
An S3-compatible object store is the way past one machine: same two calls.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from postwire_common.batching import Batcher


@dataclass(frozen=True, slots=True)
class StoredContent:
    """Composed content (HTTP): ``head`` holds the common headers and ``body`` the MIME
    part. Content as sent (SMTP submission): ``head`` is empty and ``body`` is the whole
    message, headers included, kept as the client wrote it."""

    head: bytes  # common headers, each ending in CRLF; empty for content as sent
    body: bytes  # MIME-Version, Content-* headers, blank line, body; or the whole message
    # What the copies track, as JSON (``postwire_common.tracking.choice.Tracking``).
    tracking: str | None = None

    @property
    def as_sent(self) -> bool:
        return not self.head

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body)


PREFETCH_BYTES = 256 * 1024


class ContentMissing(Exception):
    """No content under this id (purged, or never committed)."""


def render(
    content: StoredContent,
    rcpt: str,
    msg_id: str,
    env_id: str,
    to: str | None = None,
    *,
    body: bytes | None = None,
    extra: bytes = b"",
) -> bytes:
    """One recipient's copy: the common head, the recipient's own headers, the body.
    ``to`` is the To header's value when it carries a display name. Content as sent keeps
    the client's To and Message-ID: only our envelope id is added, on top. ``body``
    replaces the content's body and ``extra`` (whole header lines) joins the recipient's
    own headers: the copy's tracked body and List-Unsubscribe."""
    body = content.body if body is None else body
    if content.as_sent:
        return b"X-Postwire-Env-Id: %s\r\n%s%s" % (env_id.encode("ascii"), extra, body)
    own = f"To: {to or rcpt}\r\nMessage-ID: {msg_id}\r\nX-Postwire-Env-Id: {env_id}\r\n"
    return b"".join((content.head, own.encode("ascii"), extra, body))


_INSERT_CTE = (
    "contents AS (INSERT INTO ingest.contents (id, account_id, head, body, tracking) "
    "SELECT u.id, u.account_id, u.head, u.body, u.tracking::jsonb "
    "FROM unnest(ARRAYS) AS u(id, account_id, head, body, tracking) WHERE GUARD "
    "ON CONFLICT (id) DO NOTHING)"
)


def insert_cte(first: int, guard: str = "true") -> str:
    """A ``WITH`` item that stores contents given as five arrays from parameter ``$first``
    on (see :func:`content_columns`), for a statement that commits more with them; only
    when the SQL condition ``guard`` holds."""
    a, b, c, d, e = (f"${first + n}" for n in range(5))
    arrays = f"{a}::text[], {b}::text[], {c}::bytea[], {d}::bytea[], {e}::text[]"
    return _INSERT_CTE.replace("ARRAYS", arrays).replace("GUARD", guard)


def content_columns(
    items: Sequence[tuple[str, str, StoredContent]],
) -> tuple[list[str], list[str], list[bytes], list[bytes], list[str | None]]:
    """``(content_id, account_id, content)`` items as the arrays of :func:`insert_cte`."""
    return (
        [i[0] for i in items],
        [i[1] for i in items],
        [i[2].head for i in items],
        [i[2].body for i in items],
        [i[2].tracking for i in items],
    )


class ContentStore:
    """PostgreSQL content store, with a read cache bounded in bytes."""

    def __init__(self, pool: asyncpg.Pool, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self._pool = pool
        self._cache: OrderedDict[str, StoredContent] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._loading: dict[str, asyncio.Future[StoredContent | None]] = {}
        self._prefetching: set[asyncio.Future[None]] = set()
        # Reads are grouped by bytes as well: at most 16 contents a statement.
        self._loader: Batcher[str, StoredContent | None] = Batcher(self._load, max_size=16)

    async def put(self, content_id: str, account_id: str, content: StoredContent) -> None:
        await self._pool.execute(
            "INSERT INTO ingest.contents (id, account_id, head, body, tracking) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING",
            content_id,
            account_id,
            content.head,
            content.body,
            content.tracking,
        )

    async def get(self, content_id: str) -> StoredContent:
        found = self._cache.get(content_id)
        if found is not None:
            self._cache.move_to_end(content_id)
            return found
        pending = self._loading.get(content_id)
        if pending is not None:
            found = await asyncio.shield(pending)
            if found is not None:
                return found
            # A prefetch left this one out (large, or its read failed): read it here.
        # Recipients of one request are sent concurrently: one read serves them all.
        loading = self._loading.get(content_id)
        if loading is None:
            loading = asyncio.ensure_future(self._loader.submit(content_id))
            self._track(content_id, loading)
        found = await asyncio.shield(loading)
        if found is None:
            raise ContentMissing(content_id)
        return found

    def _track(self, content_id: str, future: asyncio.Future[StoredContent | None]) -> None:
        self._loading[content_id] = future

        def done(_: object) -> None:
            if self._loading.get(content_id) is future:
                del self._loading[content_id]

        future.add_done_callback(done)

    def prefetch(self, content_ids: Sequence[str]) -> None:
        """Start reading the small ones of these contents in one statement, for the sends
        about to need them (large ones are read when needed, within their budget)."""
        missing = [
            c for c in dict.fromkeys(content_ids) if c not in self._cache and c not in self._loading
        ]
        if not missing:
            return
        loop = asyncio.get_running_loop()
        waiting: dict[str, asyncio.Future[StoredContent | None]] = {
            c: loop.create_future() for c in missing
        }
        for content_id, future in waiting.items():
            self._track(content_id, future)

        async def load() -> None:
            try:
                rows = await self._pool.fetch(
                    "SELECT id, head, body, tracking::text FROM ingest.contents "
                    "WHERE id = ANY($1::text[]) AND octet_length(body) <= $2",
                    missing,
                    PREFETCH_BYTES,
                )
                found = {r["id"]: StoredContent(r["head"], r["body"], r["tracking"]) for r in rows}
            except Exception:
                found = {}  # not fatal: each send reads its own
            for content_id, future in waiting.items():
                content = found.get(content_id)
                if content is not None:
                    self._remember(content_id, content)
                future.set_result(content)  # None: not read here, read on demand

        task = asyncio.ensure_future(load())
        self._prefetching.add(task)
        task.add_done_callback(self._prefetching.discard)

    async def _load(self, content_ids: Sequence[str]) -> list[StoredContent | None]:
        """Contents read together (one statement for the misses of many sends)."""
        rows = await self._pool.fetch(
            "SELECT id, head, body, tracking::text FROM ingest.contents WHERE id = ANY($1::text[])",
            list(content_ids),
        )
        found = {r["id"]: StoredContent(r["head"], r["body"], r["tracking"]) for r in rows}
        for content_id, content in found.items():
            self._remember(content_id, content)
        return [found.get(content_id) for content_id in content_ids]

    def _remember(self, content_id: str, content: StoredContent) -> None:
        if content.size > self._cache_bytes // 2:
            return  # one huge message must not evict everything else
        self._cache[content_id] = content
        self._cached += content.size
        while self._cached > self._cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._cached -= evicted.size
