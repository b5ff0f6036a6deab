"""The codecs of Connect and gRPC-Web: proto passes through as bytes, JSON <-> proto per method.

The proto codec never decodes a message: the gateway forwards bytes. The JSON codec parses a
request with json_format (unknown fields ignored, as connect-go's JSON codec does, so a newer
client keeps working) and renders replies with the compiled proto3 JSON renderer. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from gateway.errors import GatewayError, InvalidArgument
from gateway.transcode.jsonrender import Renderer, RenderOptions, compile_renderer
from gateway.transcode.schema import Schema


@dataclass(frozen=True, slots=True, eq=False)
class JsonCodec:
    """JSON for one method: its request parsed into bytes, its replies rendered from bytes."""

    method: MethodDescriptor
    request: type[Message]
    reply: type[Message]
    renderer: Renderer

    def decode_request(self, body: bytes) -> bytes:
        message = self.request()
        try:
            json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidArgument(
                f"request is not a valid JSON {self.method.input_type.full_name}: "
                f"{str(exc)[:200]}") from None
        return message.SerializeToString()

    def encode_reply(self, payload: bytes) -> bytes:
        name = self.method.output_type.full_name
        try:
            message = self.reply.FromString(payload)
        except DecodeError:
            raise GatewayError(f"backend reply is not a valid {name}") from None
        try:
            return self.renderer.to_json(message)
        except (json_format.Error, ValueError, TypeError) as exc:
            raise GatewayError(f"backend reply {name} cannot be rendered as JSON: {exc}") from None

    def encode_request(self, payload: bytes) -> bytes:
        """A request's JSON (for tests and tools: what a Connect JSON client would send)."""
        return json_format.MessageToJson(self.request.FromString(payload), indent=None).encode()


@dataclass(frozen=True, slots=True, eq=False)
class JsonCodecs:
    """One JsonCodec per method of a schema, compiled on first use and kept for the config."""

    schema: Schema
    options: RenderOptions = RenderOptions()
    _made: dict[str, JsonCodec] = field(default_factory=dict)

    def get(self, method: str) -> JsonCodec:
        codec = self._made.get(method)
        if codec is None:
            descriptor = self.schema.method(method)
            if descriptor is None:
                raise KeyError(method)
            codec = self._made[method] = JsonCodec(
                descriptor,
                self.schema.message_class(descriptor.input_type),
                self.schema.message_class(descriptor.output_type),
                compile_renderer(self.schema, descriptor.output_type, self.options),
            )
        return codec
