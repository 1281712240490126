"""Labels (SendCloud's 标签): an id and a name per account, used to group mail in sending
details and statistics. ``POST /v1/labels`` makes one; sending with a ``label`` that does
not exist yet makes it too.

A label known to exist is remembered per process (``KNOWN_SECONDS``), so a send with a
label costs no query; a label deleted in another process is made again by a send there
only after that.
"""

from __future__ import annotations

from postwire_common.ttl_cache import TtlCache
from postwire_ingest.label_store import LabelStore
from postwire_ingest.limits import MAX_LABELS_PER_ACCOUNT

KNOWN_SECONDS = 60.0


class Labels:
    def __init__(self, store: LabelStore) -> None:
        self.store = store
        self._known: TtlCache[tuple[str, str], bool] = TtlCache(KNOWN_SECONDS)

    async def ensure(self, account_id: str, name: str) -> None:
        """The account has a label ``name`` (made now if need be, within the limit)."""
        if self._known.get((account_id, name)):
            return
        await self.store.create(account_id, name, MAX_LABELS_PER_ACCOUNT, existing_ok=True)
        self._known.put((account_id, name), True)

    def forget(self, account_id: str) -> None:
        self._known.forget(lambda key: key[0] == account_id)
