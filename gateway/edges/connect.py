"""The Connect protocol (connectrpc.com/docs/protocol) on the REST listener: aiohttp glue.

Unary: POST with `application/proto` or `application/json` (the bare message as the body), or
GET on a NO_SIDE_EFFECTS method (`?message=...&encoding=...[&base64=1][&compression=gzip]`);
errors as Connect's JSON with the status of Connect's table. Server streaming: POST with
`application/connect+proto|json`, envelopes out, then the end-of-stream message (always 200).
`Connect-Timeout-Ms` is the client's deadline; gzip both ways. Client and bidi streaming need
full duplex, which Connect over HTTP/1.1 does not give: refused as unimplemented.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from gateway.call import Metadata, Reply
from gateway.edges.rpchttp import (
    RpcHttpTables,
    RpcMethod,
    build_call,
    error_headers,
    first_message,
    gateway_headers,
    metadata_headers,
    monotonic,
    read_body,
)
from gateway.errors import (
    GatewayError,
    InvalidArgument,
    MethodNotAllowed,
    Unimplemented,
    UnsupportedMediaType,
)
from gateway.transcode import rpcwire

EDGE = "connect"
UNARY_TYPES = {"application/proto": "proto", "application/json": "json"}
STREAM_TYPES = {"application/connect+proto": "proto", "application/connect+json": "json"}
COMPRESS_MIN = 1024  # replies smaller than this go uncompressed: gzip would not pay
# A GET answer may be stored; one that carried a credential only by the browser and only to
# revalidate, so authorization runs on every call (the gateway itself caches nothing).
CACHE_ANONYMOUS = "public, max-age=60"
CACHE_CREDENTIALED = "private, no-cache"
_CREDENTIAL_HEADERS = ("Authorization", "X-API-Key", "Cookie")

Headers = list[tuple[str, str]]


async def handle(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
                 extra: Headers) -> web.StreamResponse:
    streaming = method.kind.streams_replies
    codec = "json"
    try:
        if method.kind.streams_requests:
            raise Unimplemented(
                f"{method.name} streams requests: Connect needs full duplex for that, which "
                "this HTTP/1.1 listener does not offer; use the gRPC listener")
        version = request.headers.get("Connect-Protocol-Version")
        if version is not None and version != "1":
            raise InvalidArgument(
                f"connect-protocol-version {version[:16]!r} is not supported (want 1)")
        if request.method == "GET":
            codec, payload = _get_message(tables, method, request)
        elif request.method == "POST":
            codec = _codec(request.headers.get("Content-Type", ""), streaming)
            payload = await _post_message(tables, method, request, codec, streaming)
        else:
            return web.Response(status=405, text=f"{request.method[:16]} is not a Connect method",
                                headers=[*extra, ("Allow", "GET, POST" if method.no_side_effects
                                                  else "POST")])
        timeout = request.headers.get("Connect-Timeout-Ms")
        started = monotonic()
        deadline = None if timeout is None else started + rpcwire.connect_timeout(timeout)
        call = build_call(tables, method, request, payload, deadline, EDGE)
    except GatewayError as exc:
        if streaming and request.method == "POST" and not isinstance(exc, UnsupportedMediaType):
            return await _stream_error(request, codec, exc, extra)
        return _unary_error(exc, extra)
    try:
        reply = await tables.pipeline(call)
    except GatewayError as exc:
        headers = [*extra, *gateway_headers(call.request_id, exc.backend)]
        if streaming:
            return await _stream_error(request, codec, exc, headers)
        return _unary_error(exc, headers)
    headers = [*extra, *gateway_headers(call.request_id, reply.backend)]
    if request.method == "GET":  # only a success may be stored
        headers += [("Cache-Control", _cache_control(request)), ("Vary", "Authorization")]
    if streaming:
        return await _stream(tables, method, request, codec, reply, headers)
    return _unary(tables, method, request, codec, reply, headers)


def _codec(content_type: str, streaming: bool) -> str:
    media = content_type.partition(";")[0].strip().lower()
    types = STREAM_TYPES if streaming else UNARY_TYPES
    codec = types.get(media)
    if codec is None:
        raise UnsupportedMediaType(
            f"content type {media[:64]!r} is not one of {', '.join(types)} for this "
            f"{'server-streaming' if streaming else 'unary'} method")
    return codec


async def _post_message(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
                        codec: str, streaming: bool) -> bytes:
    body = await read_body(request, tables.max_message)
    if streaming:
        encoding = rpcwire.check_encoding(request.headers.get("Connect-Content-Encoding", ""),
                                          "connect-content-encoding")
        frames = rpcwire.split_envelopes(body, tables.max_message)
        message = rpcwire.single_message(frames, encoding, tables.max_message, "connect")
    else:
        # aiohttp has inflated a Content-Encoding body already, counted by read_body as it came
        rpcwire.check_encoding(request.headers.get("Content-Encoding", ""), "content-encoding")
        message = body
    return tables.codecs.get(method.name).decode_request(message) if codec == "json" else message


def _get_message(tables: RpcHttpTables, method: RpcMethod,
                 request: web.BaseRequest) -> tuple[str, bytes]:
    if method.kind.streams_replies or not method.no_side_effects:
        raise MethodNotAllowed(
            f"{method.name} has side effects (idempotency_level is not NO_SIDE_EFFECTS): "
            "call it with POST", ("POST",))
    raw = request.raw_path.partition("?")[2]
    if len(raw) > tables.max_message * 2:
        raise InvalidArgument("query string exceeds the message size limit")
    query = parse_qs(raw, keep_blank_values=True)

    def one(name: str) -> str | None:
        values = query.get(name)
        if values is not None and len(values) != 1:
            raise InvalidArgument(f"query parameter {name!r} given {len(values)} times")
        return values[0] if values else None

    codec = one("encoding")
    if codec not in ("proto", "json"):
        raise InvalidArgument(f"query parameter encoding {str(codec)[:16]!r}: want proto or json")
    text = one("message") or ""
    if one("base64") == "1":
        try:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidArgument("query parameter message is not base64url") from None
    else:
        data = text.encode("utf-8")
    encoding = rpcwire.check_encoding(one("compression") or "", "compression")
    data = rpcwire.decompress(data, encoding, tables.max_message)
    return codec, (tables.codecs.get(method.name).decode_request(data) if codec == "json"
                   else data)


def _cache_control(request: web.BaseRequest) -> str:
    if any(name in request.headers for name in _CREDENTIAL_HEADERS):
        return CACHE_CREDENTIALED
    return CACHE_ANONYMOUS


def _unary(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest, codec: str,
           reply: Reply, headers: Headers) -> web.Response:
    assert isinstance(reply.payload, bytes)
    try:
        body = (tables.codecs.get(method.name).encode_reply(reply.payload) if codec == "json"
                else reply.payload)
    except GatewayError as exc:
        return _unary_error(exc, headers)
    headers = [*headers, *metadata_headers(reply.metadata),
               *metadata_headers(reply.trailers, "Trailer-"),
               ("Content-Type", f"application/{codec}")]
    if len(body) >= COMPRESS_MIN and rpcwire.accepts(request.headers.get("Accept-Encoding", ""),
                                                     "gzip"):
        body = rpcwire.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return web.Response(status=200, body=body, headers=headers)


def _unary_error(exc: GatewayError, headers: Headers) -> web.Response:
    if isinstance(exc, UnsupportedMediaType):
        # Not a Connect request at all: 415, as the protocol asks, and a plain-text reason (a
        # Connect client derives code unknown from the status; a person reads the text).
        return web.Response(status=415, text=exc.message, headers=[
            *headers, ("Accept-Post", ", ".join((*UNARY_TYPES, *STREAM_TYPES)))])
    status = rpcwire.connect_http_status(exc)
    headers = list(headers)
    if isinstance(exc, MethodNotAllowed):
        status = 405
        headers.append(("Allow", ", ".join(exc.allowed)))
    headers.extend(error_headers(exc))
    headers.extend(metadata_headers(getattr(exc, "trailers", ()), "Trailer-"))
    headers.append(("Content-Type", "application/json"))
    return web.Response(status=status, body=orjson.dumps(rpcwire.connect_error(exc)),
                        headers=headers)


async def _stream(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
                  codec: str, reply: Reply, headers: Headers) -> web.StreamResponse:
    assert not isinstance(reply.payload, bytes)
    messages = reply.payload
    gzip_out = rpcwire.accepts(request.headers.get("Connect-Accept-Encoding", ""), "gzip")
    encode = tables.codecs.get(method.name).encode_reply if codec == "json" else None

    async def send(message: bytes) -> None:
        data = encode(message) if encode is not None else message
        if gzip_out and len(data) >= COMPRESS_MIN:
            await response.write(rpcwire.envelope(rpcwire.compress(data),
                                                  rpcwire.FLAG_COMPRESSED))
        else:
            await response.write(rpcwire.envelope(data))

    try:
        first, error, sent = await first_message(reply)
        headers = [*headers, *sent, ("Content-Type", f"application/connect+{codec}")]
        if gzip_out:
            headers.append(("Connect-Content-Encoding", "gzip"))
        response = web.StreamResponse(status=200, headers=headers)
        await response.prepare(request)
        if first is not None:
            await send(first)
            async for message in messages:
                await send(message)
    except GatewayError as exc:
        error = exc
    finally:
        await messages.aclose()  # type: ignore[attr-defined]
    trailers = reply.stream_end.trailers if reply.stream_end is not None and error is None else ()
    await response.write(_end_stream(error, trailers))
    await response.write_eof()
    return response


async def _stream_error(request: web.BaseRequest, codec: str, exc: GatewayError,
                        headers: Headers) -> web.StreamResponse:
    """A streaming call that failed before its first message: still 200 and an end-stream."""
    response = web.StreamResponse(
        status=200, headers=[*headers, ("Content-Type", f"application/connect+{codec}")])
    await response.prepare(request)
    await response.write(_end_stream(exc))
    await response.write_eof()
    return response


def _end_stream(error: GatewayError | None, trailers: Metadata = ()) -> bytes:
    """The end-of-stream message: the error, and the backend's trailers (or the error's)."""
    if error is not None:
        trailers = getattr(error, "trailers", ())
    return rpcwire.envelope(
        orjson.dumps(rpcwire.end_stream(error, metadata_headers(trailers))),
        rpcwire.FLAG_END_STREAM)
