"""Request decoding: path bindings + query + body of an HTTP request -> the serialized gRPC request.

google/api/http.proto and the proto3 JSON mapping (one json_format.ParseDict per request).
Pure: imports the stdlib, protobuf, gateway.errors and gateway.transcode only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

from gateway.errors import ConfigError, InvalidArgument
from gateway.transcode.bindings import (
    PathBodyConflict,
    PathVariable,
    put_path_value,
    put_value,
    resolve_path,
)
from gateway.transcode.coerce import (
    FieldPlan,
    JsonObject,
    MessagePlan,
    compile_message_plans,
    parse_json_body,
    parse_query,
    quote,
)
from gateway.transcode.jsoncheck import check_json
from gateway.transcode.jsontypes import type_error
from gateway.transcode.route import Route
from gateway.transcode.schema import Schema
from gateway.transcode.updatemask import MASK_FIELD, MaskFill, compile_mask_fill, mask_paths
from gateway.transcode.values import check_values

__all__ = ["DecodeOptions", "RequestDecoder", "compile_request_decoder", "parse_query"]

_HTTP_BODY: Final = "google.api.HttpBody"
_MAX_DEPTH_LIMIT: Final = 100  # json_format recurses ~4 Python frames per level of Value nesting


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How strictly requests are read; the defaults are the proto3 JSON parsers' (strict)."""

    ignore_unknown_query: bool = False  # drop query parameters that name no field
    ignore_unknown_body_fields: bool = False  # drop JSON body keys that name no field
    # Nesting of JSON objects and arrays, the top level is 1; levels inside a Struct, Value or
    # ListValue count twice, as they nest twice as deep in the binary message.
    max_json_depth: int = 64
    allow_dot_segments: bool = False  # "." / ".." as path values (values.py)
    path_body_conflict: PathBodyConflict = "path_wins"

    def __post_init__(self) -> None:
        if not 1 <= self.max_json_depth <= _MAX_DEPTH_LIMIT:
            raise ConfigError(
                f"max_json_depth must be between 1 and {_MAX_DEPTH_LIMIT}, "
                f"not {self.max_json_depth}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class RequestDecoder:
    """Turns one route's HTTP requests into serialized request messages. Built once per route.

    Rules (google/api/http.proto, proto3 JSON), and our choices where they leave room:
    - Path variables set (nested) fields from their decoded text, coerced by field type.
      No decoded path or query value may hold a control character, nor a path value a dot
      segment unless `allow_dot_segments` (values.py): a 400 naming the parameter.
    - Query parameters name leaf fields by proto or JSON name per segment (`a.b.c=1`, as
      grpc-gateway); repeated fields take repeated parameters. A parameter naming a message,
      map or Struct/Value/Any field, or sent twice for a singular field, is a 400. Unknown
      names are a 400 unless `ignore_unknown_query`. With `body: "*"` no query parameter
      names a field (http.proto rule 2), so every one is unknown.
    - A query parameter naming a field the path binds or the body carries is a 400, not
      silently dropped as grpc-gateway does. A body field that the path also binds may repeat
      the path's value; another value is replaced by the path's (`path_body_conflict:
      path_wins`, as grpc-gateway and Envoy) or is a 400 naming the field (`reject`).
    - Body: `*` is the whole message, `field` is that field's JSON value; an empty body reads
      as no fields (grpc-gateway, Envoy). A non-empty body on a rule without `body` is a 400
      (grpc-gateway ignores it). google.api.HttpBody takes the raw bytes and Content-Type.
    - JSON: strict UTF-8; NaN/Infinity literals, duplicate keys (also a field given by both
      its names) and nesting deeper than `max_json_depth` are 400s; base64 is checked
      strictly (json_format would drop bad characters). Content-Type must be absent or
      application/json (charset UTF-8) when a JSON body is sent, else 415.
    - PATCH with `body: <message field>` and an `update_mask` FieldMask the query left unset:
      the mask is filled from the body's JSON keys, as grpc-gateway does (objects expand to
      dotted paths; maps, lists, null and well-known types are leaves; empty objects and
      path-bound fields add nothing).
    """

    route: Route
    options: DecodeOptions
    message_class: type[Message]
    pool: DescriptorPool
    messages: Mapping[str, MessagePlan]  # every message type the walk can reach, by full name
    root: MessagePlan
    body_mode: Literal["none", "json", "raw"]
    body_field: FieldPlan | None  # None: the whole request (body "*")
    path: tuple[PathVariable, ...]
    path_bound: frozenset[str]
    mask: MaskFill | None  # None: no update_mask auto-fill on this route
    # Set when the route has no body and binds only top-level string fields: then a request
    # without a query needs no JSON round at all (GET /v1/users/{id}, the common read).
    plain_string_path: tuple[str, ...] | None = None

    def decode(
        self,
        bindings: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        body: bytes,
        content_type: str,
    ) -> bytes:
        """The serialized request message; InvalidArgument (400) or UnsupportedMediaType (415).

        `bindings` are the route's path variables (field path -> decoded text), `query` the
        percent-decoded (name, value) pairs, `content_type` the header value ("" if absent).

        >>> decoder.decode({"string_value": "hi"}, [("int32_value", "7")], b"", "")
        b'\\n\\x02hi\\x10\\x07'
        """
        check_values(bindings, query, self.options.allow_dot_segments)
        if self.plain_string_path is not None and not query and not body.strip(b" \t\r\n"):
            return self._decode_plain_path(bindings)
        root: JsonObject = {}
        parsed: object = None
        if self.body_mode == "json":
            parsed = parse_json_body(body, content_type)
            if self.body_field is not None:
                root = self._body_field_json(parsed)
            elif isinstance(parsed, dict):
                root = parsed
            elif parsed is not None:
                raise InvalidArgument('the body must be a JSON object (body: "*")')
        elif self.body_mode == "none" and body.strip(b" \t\r\n"):
            raise InvalidArgument(
                f"{self.route.http_method} {self.route.template} takes no request body"
            )
        for variable in self.path:
            text = bindings.get(variable.field_path)
            if text is None:
                raise InvalidArgument(f"missing path variable {variable.field_path}")
            put_path_value(root, variable, text, self.options.path_body_conflict)
        query_set = self._merge_query(root, query)
        check_json(root, self.root, self.messages, self.options.max_json_depth)
        message = self.message_class()
        body_name = self.body_field.name if self.body_field is not None else None
        _parse(root, message, self.route.input, body_name, self.pool, self.options)
        if self.body_mode == "raw" and (body or content_type):
            target = message if self.body_field is None else getattr(message, self.body_field.name)
            raw: dict[str, object] = {"content_type": content_type, "data": body}
            for name, raw_value in raw.items():  # a google.api.HttpBody of the private pool
                setattr(target, name, raw_value)
        if self.mask is not None and isinstance(parsed, dict) and MASK_FIELD not in query_set:
            paths = [
                path
                for path in mask_paths(parsed, self.mask.message, self.messages)
                if path not in self.mask.path_bound
            ]
            if paths:
                getattr(message, MASK_FIELD).paths.extend(paths)
        return message.SerializeToString()

    def _decode_plain_path(self, bindings: Mapping[str, str]) -> bytes:
        """Path text straight into string fields: what json_format would do, without it."""
        message = self.message_class()
        for name in self.plain_string_path or ():
            text = bindings.get(name)
            if text is None:
                raise InvalidArgument(f"missing path variable {name}")
            setattr(message, name, text)
        return message.SerializeToString()

    def _body_field_json(self, parsed: object) -> JsonObject:
        field = self.body_field
        if parsed is None or field is None:  # JSON null, like an empty body, sets nothing
            return {}
        if field.message is not None and not isinstance(parsed, dict):
            raise InvalidArgument(f"the body must be a JSON object (body: {field.name})")
        return {field.name: parsed}

    def _merge_query(self, root: JsonObject, query: Sequence[tuple[str, str]]) -> set[str]:
        grouped: dict[str, tuple[PathVariable, list[str]]] = {}
        for name, value in query:
            target = self._resolve_query(name)
            if target is not None:
                grouped.setdefault(target.field_path, (target, []))[1].append(value)
        for path, (target, values) in grouped.items():
            repeated = target.chain[-1].repeated
            if not repeated and len(values) > 1:
                raise InvalidArgument(
                    f"query parameter {path} is given {len(values)} times, "
                    "but the field is not repeated"
                )
            items = [target.coerce(value, path) for value in values]
            put_value(root, target.chain, items if repeated else items[0], path)
        return set(grouped)

    def _resolve_query(self, name: str) -> PathVariable | None:
        if self.body_mode != "none" and self.body_field is None:
            self._unknown(
                f'query parameter {quote(name)} is not allowed: with body "*" every field '
                "not bound by the path is read from the body"
            )
            return None
        segments = name.split(".")
        if len(segments) > self.options.max_json_depth:
            raise InvalidArgument(f"query parameter {quote(name)} nests too deeply")
        message = self.root
        chain: list[FieldPlan] = []
        for segment in segments:
            if chain:
                parent = chain[-1]
                if parent.message is None or parent.repeated or parent.is_map:
                    raise InvalidArgument(
                        f"query parameter {quote(name)}: field {parent.name} "
                        "has no fields that the query can set"
                    )
                message = self.messages[parent.message]
            found = message.fields.get(segment)
            if found is None:
                self._unknown(f"unknown query parameter {quote(name)}")
                return None
            chain.append(found)
        path = ".".join(f.name for f in chain)
        leaf = chain[-1]
        if path in self.path_bound:
            raise InvalidArgument(
                f"query parameter {quote(name)} sets {path}, which the path already binds"
            )
        if self.body_field is not None and chain[0] is self.body_field:
            raise InvalidArgument(
                f"query parameter {quote(name)} sets {path}, "
                f"which the body carries (body: {self.body_field.name})"
            )
        if leaf.is_map:
            raise InvalidArgument(
                f"query parameter {quote(name)} names a map field, which the query cannot set"
            )
        if leaf.coerce is None and leaf.message is not None:
            raise InvalidArgument(
                f"query parameter {quote(name)} names a message field; "
                f"set its fields by name ({path}.<field>=...)"
            )
        if leaf.coerce is None:
            raise InvalidArgument(
                f"query parameter {quote(name)} names a {leaf.type_name} "
                "field, which has no query form"
            )
        return PathVariable(path, tuple(chain), leaf.coerce)

    def _unknown(self, problem: str) -> None:
        if not self.options.ignore_unknown_query:
            raise InvalidArgument(problem)


def compile_request_decoder(
    schema: Schema, route: Route, options: DecodeOptions | None = None
) -> RequestDecoder:
    """Compile the decoder of one route at load: fields resolved by proto and JSON name,
    a text converter per field, the body mode (google/api/http.proto `body`) and the PATCH
    update_mask rule. ConfigError if a path variable or the body names no usable field.

    >>> decoder = compile_request_decoder(schema, route)   # GET /v1/kitchen/{string_value}
    >>> decoder.decode({"string_value": "hi"}, [], b"", "")
    b'\\n\\x02hi'
    """
    options = options or DecodeOptions()
    messages = compile_message_plans(route.input)
    root = messages[route.input.full_name]
    body_field: FieldPlan | None = None
    body_mode: Literal["none", "json", "raw"] = "none"
    if route.body == "*":
        body_mode = "raw" if route.input.full_name == _HTTP_BODY else "json"
    elif route.body is not None:
        found = route.input.fields_by_name.get(route.body)
        if found is None:
            raise ConfigError(f"{route}: body {route.body!r} is not a field of the request")
        body_field = root.fields[found.name]
        raw = body_field.type_name == _HTTP_BODY and not body_field.repeated
        body_mode = "raw" if raw else "json"
    path = tuple(resolve_path(route, fp, root, messages) for fp in route.path_fields)
    mask = compile_mask_fill(route, body_field, messages)
    return RequestDecoder(
        route=route,
        options=options,
        message_class=schema.message_class(route.input),
        pool=schema.pool,
        messages=MappingProxyType(messages),
        root=root,
        body_mode=body_mode,
        body_field=body_field,
        path=path,
        path_bound=frozenset(route.path_fields),
        mask=mask,
        plain_string_path=_plain_string_path(route, path, body_mode),
    )


def _plain_string_path(route: Route, path: tuple[PathVariable, ...], body_mode: str
                       ) -> tuple[str, ...] | None:
    fields = route.input.fields_by_name
    if body_mode != "none" or not path or not all(
        len(v.chain) == 1 and fields[v.chain[0].name].type == FieldDescriptor.TYPE_STRING
        for v in path
    ):
        return None
    return tuple(v.field_path for v in path)


def _parse(
    root: JsonObject, message: Message, descriptor: Descriptor, body_field: str | None,
    pool: DescriptorPool, options: DecodeOptions
) -> None:
    # The one seam for json_format.ParseError; its first line names the field and the problem.
    try:
        json_format.ParseDict(
            root,
            message,
            ignore_unknown_fields=options.ignore_unknown_body_fields,
            descriptor_pool=pool,
            max_recursion_depth=2 * options.max_json_depth + 2,
        )
    except json_format.ParseError as exc:
        # A value of the wrong JSON type: said in plain words, with the whole field path.
        problem = type_error(root, descriptor, body_field) or str(exc).partition("\n")[0]
        raise InvalidArgument(problem) from None
