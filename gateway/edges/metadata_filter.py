"""Which of a backend's metadata keys an edge passes on to its clients (issue 11, class 2).

The REST edge uses an allow-list (`transcoding.response_headers`, empty by default: browsers
and the internet see none of a backend's keys unless the config names them); the gRPC edge a
deny-list (`grpc_edge.metadata_deny`: hop-by-hop and sensitive keys such as `set-cookie` and
`server`; internal callers see the rest). Entries are exact keys or fnmatch patterns
(`x-internal-*`). Keys grpc owns (`grpc-*`, pseudo-headers) never pass either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from gateway.call import Metadata

_RESERVED = ("grpc-", ":")
_CACHE_MAX = 1024  # keys a backend may invent are unbounded; the decisions kept are not


class MetadataFilter:
    """`passes(key)` under an allow-list (`allow=True`) or a deny-list of keys and patterns."""

    def __init__(self, keys: Iterable[str], *, allow: bool) -> None:
        listed = [key.lower() for key in keys]
        self._exact = frozenset(k for k in listed if not _is_pattern(k))
        self._patterns = tuple(k for k in listed if _is_pattern(k))
        self._allow = allow
        self._decided: dict[str, bool] = {}

    @property
    def passes_nothing(self) -> bool:
        return self._allow and not self._exact and not self._patterns

    def passes(self, key: str) -> bool:
        decided = self._decided.get(key)
        if decided is None:
            listed = key in self._exact or any(fnmatchcase(key, p) for p in self._patterns)
            decided = listed is self._allow and not key.startswith(_RESERVED)
            if len(self._decided) < _CACHE_MAX:
                self._decided[key] = decided
        return decided

    def apply(self, metadata: Metadata) -> Metadata:
        """The pairs whose key passes, in order."""
        if not metadata or self.passes_nothing:
            return ()
        return tuple((k, v) for k, v in metadata if self.passes(k))


def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")
