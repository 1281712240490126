"""Tracked copies: a content's tracking cut (pixel, links, unsubscribe) made once per
content and reused for every recipient (``postwire_common.tracking.copies``)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from postwire_common.content import StoredContent, render
from postwire_common.tracking.copies import Prepared, prepare, render_copy
from postwire_common.tracking.tokens import TokenSigner

CACHED_CONTENTS = 256
INLINE_PREPARE_BYTES = 256 * 1024  # larger contents are parsed in a worker thread


class TrackedCopies:
    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()

    async def _prepare(self, content_id: str, content: StoredContent) -> Prepared:
        found = self._prepared.get(content_id)
        if found is not None:
            self._prepared.move_to_end(content_id)
            return found
        if content.size > INLINE_PREPARE_BYTES:
            found = await asyncio.to_thread(prepare, content)
        else:
            found = prepare(content)
        self._prepared[content_id] = found
        while len(self._prepared) > CACHED_CONTENTS:
            self._prepared.popitem(last=False)
        return found

    async def render(
        self,
        content_id: str,
        content: StoredContent,
        *,
        tenant_id: str,
        rcpt: str,
        msg_id: str,
        env_id: str,
        to: str | None,
    ) -> bytes:
        """The recipient's copy, tracked as its content asks (untouched when it asks
        for nothing)."""
        if content.tracking is None:  # ingest stores a choice only when it tracks something
            return render(content, rcpt, msg_id, env_id, to)
        prepared = await self._prepare(content_id, content)
        if not prepared.changes:
            return render(content, rcpt, msg_id, env_id, to)
        copy = render_copy(prepared, self._signer, tenant_id, env_id, content_id)
        return render(content, rcpt, msg_id, env_id, to, body=copy.body, extra=copy.headers)
