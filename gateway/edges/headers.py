"""HTTP headers <-> gRPC metadata for the REST edge (T-33), as grpc-gateway's conventions.

In: an allow-list of headers, plus `Grpc-Metadata-<name>`; hop-by-hop and grpc-owned keys never.
Out: the backend metadata keys `transcoding.response_headers` names (none by default,
edges/metadata_filter.py): initial metadata as `Grpc-Metadata-<name>`, trailers as
`Grpc-Trailer-<name>`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from gateway.call import Metadata
from gateway.edges.metadata_filter import MetadataFilter
from gateway.errors import InvalidArgument

PREFIX = "grpc-metadata-"
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "content-type",
    "accept-encoding", "content-encoding", "expect",
})
_KEY = re.compile(r"[0-9a-z.-]+")
_VALUE = re.compile(r"[\x20-\x7e\t]*")  # visible ASCII: no CR, LF, NUL or non-ASCII


def metadata_from_headers(headers: Iterable[tuple[str, str]], forward: frozenset[str]
                          ) -> Metadata:
    """The metadata a REST request sends on. Raises InvalidArgument naming a hostile header."""
    metadata: list[tuple[str, str | bytes]] = []
    for name, value in headers:
        lower = name.lower()
        if "_" in lower:  # Envoy edge practice: some upstreams treat "_" and "-" alike
            raise InvalidArgument(f"header {name[:64]!r}: underscores are not allowed in names")
        if lower.startswith(PREFIX):
            key = lower[len(PREFIX):]
        elif lower in forward:
            key = lower
        else:
            continue
        if key in HOP_BY_HOP or key.startswith("grpc-") or not _KEY.fullmatch(key):
            continue
        if not _VALUE.fullmatch(value):
            raise InvalidArgument(
                f"header {name[:64]!r}: value has control or non-ASCII characters"
            )
        metadata.append((key, _decode_binary(name, value) if key.endswith("-bin") else value))
    return tuple(metadata)


def headers_from_metadata(metadata: Metadata, prefix: str, allowed: MetadataFilter
                          ) -> list[tuple[str, str]]:
    """The allowed backend metadata as response headers: `Grpc-Metadata-<k>` or
    `Grpc-Trailer-<k>`; hop-by-hop keys never, whatever the allow-list says."""
    headers = []
    for key, value in allowed.apply(metadata):
        if key in HOP_BY_HOP:
            continue
        if isinstance(value, bytes):
            text = base64.b64encode(value).decode("ascii")
        else:
            text = value
        if _VALUE.fullmatch(text):
            headers.append((prefix + key, text))
    return headers


def _decode_binary(name: str, value: str) -> bytes:
    text = value.strip()
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"header {name[:64]!r}: -bin value is not base64") from None
