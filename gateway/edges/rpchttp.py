"""RPC over the REST listener: Connect and gRPC-Web at `/<pkg>.<Service>/<Method>`.

Both are thin edges over the same Call as REST and gRPC: this module holds what they share
(the method table, headers -> metadata, the Call, the capped body read, reply headers) and
edges/protocols.py picks the protocol by content type; edges/connect.py and edges/grpcweb.py
do the framing with the pure rules of gateway.transcode.rpcwire.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace

from aiohttp import web
from google.protobuf.descriptor_pb2 import MethodOptions

from gateway.call import Call, Handler, Kind, Metadata, Reply, StreamEnd
from gateway.config import Transcoding
from gateway.edges.cors import CorsPolicy
from gateway.edges.errortext import generic_message, hides, log_hidden
from gateway.edges.headers import HOP_BY_HOP, headers_from_metadata
from gateway.edges.metadata_filter import MetadataFilter
from gateway.errors import GatewayError, InvalidArgument, PayloadTooLarge
from gateway.policies.client_ip import Network, client_ip
from gateway.policies.request_id import request_id_from
from gateway.transcode.rpccodec import JsonCodecs
from gateway.transcode.schema import Schema

# Request headers that are the protocol's, the browser's or HTTP's own, never call metadata.
# Everything else goes on, as on the gRPC edge; the chain strips gateway-owned keys (spoofed
# identity headers) before anything reads them.
_NOT_METADATA = frozenset({
    *HOP_BY_HOP, "accept", "accept-language", "cache-control", "pragma", "cookie", "origin",
    "referer", "user-agent", "x-user-agent", "x-grpc-web", "dnt", "priority",
    "upgrade-insecure-requests", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
})
_NOT_METADATA_PREFIXES = ("connect-", "grpc-", "sec-", "access-control-", ":")


@dataclass(frozen=True, slots=True)
class RpcMethod:
    name: str  # "/pkg.Service/Method"
    kind: Kind
    idempotent: bool
    no_side_effects: bool  # idempotency_level = NO_SIDE_EFFECTS: Connect GET allowed


@dataclass(frozen=True, slots=True, eq=False)
class RpcHttpTables:
    """What one config gives Connect and gRPC-Web; part of the REST edge's tables."""

    methods: Mapping[str, RpcMethod]
    codecs: JsonCodecs
    pipeline: Handler
    max_message: int  # transcoding.max_body_bytes: the body and each message
    trusted_proxies: tuple[Network, ...]


def rpc_http_tables(schema: Schema, kinds: Mapping[str, tuple[Kind, bool]], pipeline: Handler,
                    transcoding: Transcoding, trusted_proxies: tuple[Network, ...]
                    ) -> RpcHttpTables:
    """`kinds`: method -> (shape, idempotent), the gRPC edge's method table. Browsers are on
    the far side of the perimeter, as for REST: the pipeline is seen through `perimeter`."""
    methods = {}
    for name, (kind, idempotent) in kinds.items():
        descriptor = schema.method(name)
        level = descriptor.GetOptions().idempotency_level if descriptor is not None else 0
        methods[name] = RpcMethod(name, kind, idempotent, level == MethodOptions.NO_SIDE_EFFECTS)
    guarded = perimeter(pipeline, MetadataFilter(transcoding.response_headers, allow=True),
                        transcoding.error_messages)
    return RpcHttpTables(methods, JsonCodecs(schema), guarded, transcoding.max_body_bytes,
                         trusted_proxies)


def perimeter(pipeline: Handler, exposed: MetadataFilter, error_messages: str) -> Handler:
    """The pipeline as Connect and gRPC-Web clients may see it (docs/security.md): the
    backend's metadata and trailers only where `transcoding.response_headers` allows (the REST
    edge's allow-list), and INTERNAL / UNKNOWN / DATA_LOSS messages replaced under
    `transcoding.error_messages: generic` (the original logged), in replies, failures and
    failures in the middle of a stream alike. Done once here, so no renderer can forget it."""

    def visible(exc: GatewayError, request_id: str) -> GatewayError:
        if hasattr(exc, "headers"):
            exc.headers = exposed.apply(exc.headers)
        if hasattr(exc, "trailers"):
            exc.trailers = exposed.apply(exc.trailers)
        if hides(exc, error_messages):
            log_hidden(exc, request_id, "rpc-http")
            exc.message, exc.details = generic_message(exc, request_id), ()
        return exc

    async def stream(messages: AsyncIterator[bytes], inner: StreamEnd | None, outer: StreamEnd,
                     request_id: str) -> AsyncIterator[bytes]:
        try:
            async for message in messages:
                yield message
        except GatewayError as exc:
            raise visible(exc, request_id) from None
        finally:
            await messages.aclose()  # type: ignore[attr-defined]
        outer.trailers = exposed.apply(inner.trailers) if inner is not None else ()

    async def guarded(call: Call) -> Reply:
        try:
            reply = await pipeline(call)
        except GatewayError as exc:
            raise visible(exc, call.request_id) from None
        payload, end = reply.payload, reply.stream_end
        if not isinstance(payload, bytes):
            end = StreamEnd()
            payload = stream(payload, reply.stream_end, end, call.request_id)
        return replace(reply, payload=payload, metadata=exposed.apply(reply.metadata),
                       trailers=exposed.apply(reply.trailers), stream_end=end)

    return guarded


def cors_headers(request: web.BaseRequest, cors: CorsPolicy | None) -> list[tuple[str, str]]:
    origin = request.headers.get("Origin")
    if cors is None or origin is None:
        return []
    return cors.reply_headers(origin)


def call_metadata(headers: Iterable[tuple[str, str]]) -> Metadata:
    """The request's own headers as metadata; InvalidArgument names a hostile one."""
    metadata: list[tuple[str, str | bytes]] = []
    for name, value in headers:
        key = name.lower()
        if key in _NOT_METADATA or key.startswith(_NOT_METADATA_PREFIXES):
            continue
        if "_" in key:  # as the REST edge: some upstreams treat "_" and "-" alike
            raise InvalidArgument(f"header {name[:64]!r}: underscores are not allowed in names")
        if not value.isascii() or not value.isprintable():
            raise InvalidArgument(
                f"header {name[:64]!r}: value has control or non-ASCII characters")
        if key.endswith("-bin"):
            try:
                text = value.strip()
                metadata.append((key, base64.b64decode(text + "=" * (-len(text) % 4),
                                                       validate=True)))
            except (binascii.Error, ValueError):
                raise InvalidArgument(f"header {name[:64]!r}: -bin value is not base64") from None
        else:
            metadata.append((key, value))
    return tuple(metadata)


def build_call(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
               payload: bytes, deadline: float | None, edge: str) -> Call:
    metadata = call_metadata(request.headers.items())
    return Call(
        method=method.name,
        payload=payload,
        kind=method.kind,
        metadata=metadata,
        peer=client_ip(request.remote or "", request.headers.getall("X-Forwarded-For", ()),
                       tables.trusted_proxies),
        deadline=deadline,
        idempotent=method.idempotent,
        request_id=request_id_from(metadata),
        edge=edge,
    )


async def read_body(request: web.BaseRequest, max_body: int) -> bytes:
    """The whole body, refused past max_body before it is all read (T-35); the REST edge's
    bodies too. A declared length over it is refused unread; chunked bodies are counted as
    they come."""
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(
            f"request body of {request.content_length} bytes exceeds the {max_body}-byte limit")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_body:
            raise PayloadTooLarge(f"request body exceeds the {max_body}-byte limit")
    return bytes(body)


# Everything: what reaches the renderers was filtered by `perimeter` already.
_FILTERED = MetadataFilter(("*",), allow=True)


def metadata_headers(metadata: Metadata, prefix: str = "") -> list[tuple[str, str]]:
    return headers_from_metadata(metadata, prefix, _FILTERED)


def error_headers(exc: GatewayError) -> list[tuple[str, str]]:
    """The response headers of a failed call: the backend's initial metadata; when it sent none
    (gRPC's trailers-only answer, headers and trailers delivered as one set, not told apart),
    its trailers, which then go out as trailers too (what a gRPC client sees as well)."""
    sent: Metadata = getattr(exc, "headers", ())
    return metadata_headers(sent or getattr(exc, "trailers", ()))


async def first_message(reply: Reply) -> tuple[bytes | None, GatewayError | None,
                                              list[tuple[str, str]]]:
    """(first message, error, response headers) of a reply stream, pulled before the headers go
    out: a stream that ends or fails before its first message (gRPC's trailers-only answer)
    then still shows the backend's metadata as headers."""
    assert not isinstance(reply.payload, bytes)
    try:
        return await anext(reply.payload), None, metadata_headers(reply.metadata)
    except StopAsyncIteration:
        ended = reply.stream_end.trailers if reply.stream_end is not None else ()
        return None, None, metadata_headers(reply.metadata or ended)
    except GatewayError as exc:
        return None, exc, metadata_headers(reply.metadata) or error_headers(exc)


def gateway_headers(request_id: str, backend: str) -> list[tuple[str, str]]:
    headers = [("X-Request-ID", request_id)] if request_id else []
    if backend:
        headers.append(("X-Gateway-Backend", backend))
    return headers


def monotonic() -> float:
    return time.monotonic()
