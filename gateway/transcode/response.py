"""The REST reply of a route: proto3 JSON of the reply (or of its response_body field), or a
raw google.api.HttpBody; compiled once per route. Also renders google.rpc.Status details.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import any_pb2, descriptor_pool, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2

from gateway.errors import BadGateway, ConfigError
from gateway.transcode.jsonrender import RenderOptions, compile_field_renderer, compile_renderer
from gateway.transcode.jsonwkt import b64
from gateway.transcode.route import Route
from gateway.transcode.schema import Schema
from gateway.transcode.strictparse import WireTypeMismatch, compile_strict_parser

__all__ = [
    "HTTP_BODY", "JSON_TYPE", "RAW_TYPE", "RenderOptions", "ReplyEncoder",
    "compile_reply_encoder", "render_status_details",
]

JSON_TYPE = "application/json"
RAW_TYPE = "application/octet-stream"  # an HttpBody reply that names no content type
HTTP_BODY = "google.api.HttpBody"
# google.rpc.BadRequest, ErrorInfo, RetryInfo, ...: resolvable even when the schema lacks them.
_RPC_POOL: descriptor_pool.DescriptorPool = error_details_pb2.DESCRIPTOR.pool

Render = Callable[[Message], tuple[str, bytes]]


@dataclass(frozen=True, slots=True, eq=False)
class ReplyEncoder:
    """Turns the serialized replies of one route into (content type, body); see compile."""

    route: Route
    parse: Callable[[bytes], Message]
    render: Render

    def encode(self, payload: bytes) -> tuple[str, bytes]:
        """(content type, body) of one serialized reply message.

        Raises BadGateway (502) when the payload is not strictly a reply message (wire-type
        mismatches included, strictparse.py) or holds a value proto3 JSON cannot print (an
        out-of-range Timestamp, an Any of an unknown type).
        """
        name = self.route.output.full_name
        try:
            message = self.parse(payload)
        except DecodeError as exc:
            why = f": {exc}" if isinstance(exc, WireTypeMismatch) else ""
            raise BadGateway(f"backend reply is not a valid {name}{why}") from exc
        try:
            return self.render(message)
        except (json_format.Error, ValueError, TypeError) as exc:
            raise BadGateway(f"backend reply {name} cannot be rendered as JSON: {exc}") from exc


def compile_reply_encoder(schema: Schema, route: Route, options: RenderOptions) -> ReplyEncoder:
    """Compile how `route` answers over REST (google/api/http.proto, HttpRule.response_body).

    The whole reply as proto3 JSON; with `response_body: "author"` the JSON of that field's
    value alone (a scalar, an object or a list); a google.api.HttpBody reply, or a
    response_body naming an HttpBody field, passes through raw with its own content type:

        encoder = compile_reply_encoder(schema, route, RenderOptions())
        encoder.encode(book.SerializeToString())  # ("application/json", b'{"name":...}')
        # response_body "author":                   ("application/json", b'"Le Guin"')
        # HttpBody(content_type="image/png", data=png) -> ("image/png", png)

    Raises ConfigError when response_body names no field of the reply.
    """
    output = route.output
    parse = compile_strict_parser(schema.message_class(output))
    if output.full_name == HTTP_BODY:
        return ReplyEncoder(route, parse, _raw)
    if route.response_body is None:
        return ReplyEncoder(route, parse, _json(compile_renderer(schema, output, options).convert))
    field = output.fields_by_name.get(route.response_body)
    if field is None:
        raise ConfigError(
            f"{route}: response_body {route.response_body!r} is not a field of {output.full_name}"
        )
    raw = field.message_type is not None and field.message_type.full_name == HTTP_BODY
    if raw and not field.is_repeated:
        name = field.name
        return ReplyEncoder(route, parse, lambda message: _raw(getattr(message, name)))
    return ReplyEncoder(route, parse, _json(compile_field_renderer(schema, field, options)))


def _json(convert: Callable[[Message], Any]) -> Render:
    return lambda message: (JSON_TYPE, orjson.dumps(convert(message)))


def _raw(body: Any) -> tuple[str, bytes]:
    return body.content_type or RAW_TYPE, body.data


def render_status_details(
    schema: Schema, details: Sequence[bytes], options: RenderOptions | None = None
) -> list[dict[str, Any]]:
    """google.rpc.Status.details (serialized google.protobuf.Any) as proto3 JSON Anys.

    Per the mapping an Any is {"@type": url, ...fields} ({"@type", "value"} for a
    well-known type). Types resolve through the schema, then google.rpc.*; an unresolvable
    or undecodable detail renders as {"@type": url, "value": base64 of the bytes}:

        render_status_details(schema, [Any.Pack(BadRequest(...)).SerializeToString()])
        # [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [...]}]
    """
    options = options or RenderOptions()
    return [_detail(schema.pool, raw, options) for raw in details]


def _detail(
    pool: descriptor_pool.DescriptorPool, raw: bytes, options: RenderOptions
) -> dict[str, Any]:
    try:
        packed = any_pb2.Any.FromString(raw)
    except DecodeError:
        return {"@type": "", "value": b64(raw)}
    type_name = packed.type_url.rpartition("/")[2]
    for candidate in (pool, _RPC_POOL):
        try:
            candidate.FindMessageTypeByName(type_name)
        except KeyError:
            continue
        try:
            return dict(
                json_format.MessageToDict(
                    packed,
                    preserving_proto_field_name=options.use_proto_names,
                    always_print_fields_with_no_presence=options.emit_unpopulated,
                    descriptor_pool=candidate,
                )
            )
        except (json_format.Error, DecodeError, ValueError, TypeError):
            break  # the type is known but the bytes are not one of it
    return {"@type": packed.type_url, "value": b64(packed.value)}
