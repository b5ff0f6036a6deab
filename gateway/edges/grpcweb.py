"""gRPC-Web (grpc/grpc PROTOCOL-WEB.md) on the REST listener: aiohttp glue.

`application/grpc-web[+proto|+json]` carries envelopes; `application/grpc-web-text[+proto]`
the same bytes in base64. Unary and server streaming: the reply messages as envelopes, then
the trailers (grpc-status, grpc-message, grpc-status-details-bin, the backend's trailers) as
the final 0x80 frame, so a browser that cannot read HTTP trailers still gets the status. The
answer is 200 once the request is gRPC-Web; every failure is in the trailers frame.
"""

from __future__ import annotations

import base64

from aiohttp import web

from gateway.call import Reply
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
from gateway.errors import GatewayError, Unimplemented, UnsupportedMediaType
from gateway.policies.deadline import parse_grpc_timeout
from gateway.transcode import rpcwire

EDGE = "grpc-web"
# media type -> (codec, base64 text)
TYPES = {
    "application/grpc-web": ("proto", False),
    "application/grpc-web+proto": ("proto", False),
    "application/grpc-web+json": ("json", False),
    "application/grpc-web-text": ("proto", True),
    "application/grpc-web-text+proto": ("proto", True),
}
COMPRESS_MIN = 1024

Headers = list[tuple[str, str]]


async def handle(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
                 extra: Headers) -> web.StreamResponse:
    media = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    found = TYPES.get(media)
    if found is None:
        return _refused(UnsupportedMediaType(
            f"content type {media[:64]!r} is not one of {', '.join(TYPES)}"), extra)
    codec, text = found
    content_type = media if media.endswith(("+proto", "+json")) else f"{media}+proto"
    try:
        if request.method != "POST":
            raise Unimplemented(f"gRPC-Web calls are POST, not {request.method[:16]}")
        if method.kind.streams_requests:
            raise Unimplemented(
                f"{method.name} streams requests, which gRPC-Web does not carry; "
                "use the gRPC listener")
        body = await read_body(request, tables.max_message * (2 if text else 1))
        if text:
            body = rpcwire.decode_base64_text(body)
        encoding = rpcwire.check_encoding(request.headers.get("Grpc-Encoding", ""),
                                          "grpc-encoding")
        frames = rpcwire.split_envelopes(body, tables.max_message)
        message = rpcwire.single_message(frames, encoding, tables.max_message, "grpc-web")
        if codec == "json":
            message = tables.codecs.get(method.name).decode_request(message)
        timeout = request.headers.get("Grpc-Timeout")
        started = monotonic()
        deadline = None if timeout is None else started + parse_grpc_timeout(timeout)
        call = build_call(tables, method, request, message, deadline, EDGE)
    except GatewayError as exc:
        return await _ended(request, content_type, text, exc, extra)
    try:
        reply = await tables.pipeline(call)
    except GatewayError as exc:
        return await _ended(request, content_type, text, exc,
                            [*extra, *gateway_headers(call.request_id, exc.backend)])
    headers = [*extra, *gateway_headers(call.request_id, reply.backend)]
    return await _answer(tables, method, request, content_type, text, codec, reply, headers)


async def _answer(tables: RpcHttpTables, method: RpcMethod, request: web.BaseRequest,
                  content_type: str, text: bool, codec: str, reply: Reply,
                  headers: Headers) -> web.StreamResponse:
    gzip_out = rpcwire.accepts(request.headers.get("Grpc-Accept-Encoding", ""), "gzip")
    first: bytes | None = None
    error: GatewayError | None = None
    if isinstance(reply.payload, bytes):
        sent = metadata_headers(reply.metadata)
    else:
        first, error, sent = await first_message(reply)
    headers = [*headers, *sent, ("Content-Type", content_type)]
    if gzip_out:
        headers.append(("Grpc-Encoding", "gzip"))
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    encode = tables.codecs.get(method.name).encode_reply if codec == "json" else None

    async def send(data: bytes, flags: int = 0) -> None:
        frame = rpcwire.envelope(data, flags)
        await response.write(base64.b64encode(frame) if text else frame)

    async def send_message(payload: bytes) -> None:
        data = encode(payload) if encode is not None else payload
        if gzip_out and len(data) >= COMPRESS_MIN:
            await send(rpcwire.compress(data), rpcwire.FLAG_COMPRESSED)
        else:
            await send(data)

    try:
        if isinstance(reply.payload, bytes):
            await send_message(reply.payload)
        else:
            try:
                if first is not None:
                    await send_message(first)
                    async for message in reply.payload:
                        await send_message(message)
            finally:
                await reply.payload.aclose()  # type: ignore[attr-defined]
    except GatewayError as exc:
        error = exc
    fields = rpcwire.grpc_status_fields(error)
    if error is not None:
        trailers = getattr(error, "trailers", ())
    elif reply.stream_end is not None:
        trailers = reply.stream_end.trailers
    else:
        trailers = reply.trailers
    fields.extend((k.lower(), v) for k, v in metadata_headers(trailers))
    frame = rpcwire.grpc_web_trailers(fields)
    await response.write(base64.b64encode(frame) if text else frame)
    await response.write_eof()
    return response


async def _ended(request: web.BaseRequest, content_type: str, text: bool, exc: GatewayError,
                 headers: Headers) -> web.StreamResponse:
    """A call that failed before any reply: 200, no message, the status in the trailers frame.

    Headers: what the backend sent before failing (see rpchttp.error_headers)."""
    response = web.StreamResponse(
        status=200, headers=[*headers, *error_headers(exc), ("Content-Type", content_type)])
    await response.prepare(request)
    fields = rpcwire.grpc_status_fields(exc)
    fields.extend((k.lower(), v) for k, v in metadata_headers(getattr(exc, "trailers", ())))
    frame = rpcwire.grpc_web_trailers(fields)
    await response.write(base64.b64encode(frame) if text else frame)
    await response.write_eof()
    return response


def _refused(exc: GatewayError, headers: Headers) -> web.Response:
    """Not gRPC-Web at all (an unknown grpc-web-ish content type): 415 and the status headers,
    as a gRPC server answers a content type it cannot read."""
    return web.Response(status=exc.http_status, headers=[
        *headers, *rpcwire.grpc_status_fields(exc), ("Content-Type", "text/plain")],
        text=exc.message)



