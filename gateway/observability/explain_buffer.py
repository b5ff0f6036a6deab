"""The last explained requests, as the JSON the admin API serves: bounded in count and in bytes.

Oldest out first; a request id seen again replaces its earlier entry. Each entry is kept as its
serialized JSON, so the bound is on what is actually held, whatever a flood of explained
requests looks like.
"""

from __future__ import annotations

from collections import OrderedDict

ENTRY_OVERHEAD = 200  # bytes a kept entry costs beside its JSON (dict slot, key, bytes header)


class ExplainBuffer:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self.bytes = 0  # what the kept entries cost, by the measure above
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, request_id: str, document: bytes) -> None:
        cost = _cost(request_id, document)
        if cost > self.max_bytes:
            return  # cannot happen with bounded explanations; never hold more than the cap
        old = self._entries.pop(request_id, None)
        if old is not None:
            self.bytes -= _cost(request_id, old)
        self._entries[request_id] = document
        self.bytes += cost
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            gone_id, gone = self._entries.popitem(last=False)
            self.bytes -= _cost(gone_id, gone)
            self.evicted += 1

    def get(self, request_id: str) -> bytes | None:
        return self._entries.get(request_id)

    def ids(self) -> list[str]:
        """Newest first."""
        return list(reversed(self._entries))


def _cost(request_id: str, document: bytes) -> int:
    return len(document) + len(request_id) + ENTRY_OVERHEAD
