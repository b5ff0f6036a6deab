"""Request decoding: path bindings + query + body of an HTTP request -> the serialized gRPC request.

google/api/http.proto and the proto3 JSON mapping (one json_format.ParseDict per request).
Pure: imports the stdlib, protobuf, gateway.errors and gateway.transcode only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

from gateway.errors import ConfigError, InvalidArgument
from gateway.transcode.coerce import (
    Coercer,
    FieldPlan,
    JsonNormalizer,
    MessagePlan,
    compile_message_plans,
    parse_json_body,
    parse_query,
    quote,
)
from gateway.transcode.route import Route
from gateway.transcode.schema import Schema

__all__ = ["DecodeOptions", "RequestDecoder", "compile_request_decoder", "parse_query"]

_HTTP_BODY: Final = "google.api.HttpBody"
_FIELD_MASK: Final = "google.protobuf.FieldMask"
_MASK_FIELD: Final = "update_mask"
_MAX_DEPTH_LIMIT: Final = 100  # json_format recurses ~4 Python frames per level of Value nesting
JsonObject = dict[str, object]
# (JSON value, its message plan, field path, depth, depth step of plain JSON below it)
_Pending = tuple[object, MessagePlan | None, str, int, int]
_CONTAINERS: Final = (dict, list)
# A level of these is two levels of the binary message, where decoders stop at 100 by default.
_STRUCTS: Final = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How strictly requests are read; the defaults are the proto3 JSON parsers' (strict)."""

    ignore_unknown_query: bool = False  # drop query parameters that name no field
    ignore_unknown_body_fields: bool = False  # drop JSON body keys that name no field
    # Nesting of JSON objects and arrays, the top level is 1; levels inside a Struct, Value or
    # ListValue count twice, as they nest twice as deep in the binary message.
    max_json_depth: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.max_json_depth <= _MAX_DEPTH_LIMIT:
            raise ConfigError(
                f"max_json_depth must be between 1 and {_MAX_DEPTH_LIMIT}, "
                f"not {self.max_json_depth}"
            )


@dataclass(frozen=True, slots=True)
class _PathVariable:  # a leaf field that path or query text sets
    field_path: str  # proto names, "nested.label"
    chain: tuple[FieldPlan, ...]  # the fields from the request message down to the leaf
    coerce: Coercer


@dataclass(frozen=True, slots=True)
class _MaskFill:  # PATCH update_mask auto-fill
    message: MessagePlan  # the body field's message
    path_bound: frozenset[str]  # its fields that the path sets, relative to it


@dataclass(frozen=True, slots=True, eq=False)
class RequestDecoder:
    """Turns one route's HTTP requests into serialized request messages. Built once per route.

    Rules (google/api/http.proto, proto3 JSON), and our choices where they leave room:
    - Path variables set (nested) fields from their decoded text, coerced by field type.
    - Query parameters name leaf fields by proto or JSON name per segment (`a.b.c=1`, as
      grpc-gateway); repeated fields take repeated parameters. A parameter naming a message,
      map or Struct/Value/Any field, or sent twice for a singular field, is a 400. Unknown
      names are a 400 unless `ignore_unknown_query`. With `body: "*"` no query parameter
      names a field (http.proto rule 2), so every one is unknown.
    - A query parameter naming a field the path binds or the body carries is a 400, not
      silently dropped as grpc-gateway does. A body field that the path also binds is a 400
      naming the field (grpc-gateway lets the path win, Envoy the body).
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
    path: tuple[_PathVariable, ...]
    path_bound: frozenset[str]
    mask: _MaskFill | None  # None: no update_mask auto-fill on this route
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
            _put(
                root,
                variable.chain,
                variable.coerce(text, variable.field_path),
                variable.field_path,
            )
        query_set = self._merge_query(root, query)
        _check(root, self.root, self.messages, self.options.max_json_depth)
        message = self.message_class()
        _parse(root, message, self.pool, self.options)
        if self.body_mode == "raw" and (body or content_type):
            target = message if self.body_field is None else getattr(message, self.body_field.name)
            raw: dict[str, object] = {"content_type": content_type, "data": body}
            for name, raw_value in raw.items():  # a google.api.HttpBody of the private pool
                setattr(target, name, raw_value)
        if self.mask is not None and isinstance(parsed, dict) and _MASK_FIELD not in query_set:
            paths = [
                path
                for path in _mask_paths(parsed, self.mask.message, self.messages)
                if path not in self.mask.path_bound
            ]
            if paths:
                getattr(message, _MASK_FIELD).paths.extend(paths)
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
        grouped: dict[str, tuple[_PathVariable, list[str]]] = {}
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
            _put(root, target.chain, items if repeated else items[0], path)
        return set(grouped)

    def _resolve_query(self, name: str) -> _PathVariable | None:
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
        return _PathVariable(path, tuple(chain), leaf.coerce)

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
    path = tuple(_resolve_path(route, fp, root, messages) for fp in route.path_fields)
    mask_field = route.input.fields_by_name.get(_MASK_FIELD)
    mask: _MaskFill | None = None
    if (
        route.http_method == "PATCH"
        and body_field is not None
        and body_field.message is not None
        and not body_field.repeated
        and not body_field.is_map
        and mask_field is not None
        and mask_field.message_type is not None
        and mask_field.message_type.full_name == _FIELD_MASK
        and _MASK_FIELD not in route.path_fields
    ):
        prefix = body_field.name + "."
        mask = _MaskFill(
            messages[body_field.message],
            frozenset(fp.removeprefix(prefix) for fp in route.path_fields if fp.startswith(prefix)),
        )
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


def _plain_string_path(route: Route, path: tuple[_PathVariable, ...], body_mode: str
                       ) -> tuple[str, ...] | None:
    fields = route.input.fields_by_name
    if body_mode != "none" or not path or not all(
        len(v.chain) == 1 and fields[v.chain[0].name].type == FieldDescriptor.TYPE_STRING
        for v in path
    ):
        return None
    return tuple(v.field_path for v in path)


def _resolve_path(
    route: Route, field_path: str, root: MessagePlan, messages: Mapping[str, MessagePlan]
) -> _PathVariable:
    # http.proto: a path variable names a chain of singular messages ending at a primitive.
    message, chain = root, list[FieldPlan]()
    for segment in field_path.split("."):
        if chain:
            parent = chain[-1]
            if parent.message is None or parent.repeated or parent.is_map:
                raise ConfigError(
                    f"{route}: path variable {field_path}: {parent.name} is not a singular message"
                )
            message = messages[parent.message]
        found = message.fields.get(segment)
        if found is None or found.name != segment:
            raise ConfigError(f"{route}: path variable {field_path} names no field")
        chain.append(found)
    leaf = chain[-1]
    if leaf.repeated or leaf.is_map or leaf.coerce is None:
        raise ConfigError(f"{route}: path variable {field_path} is not a singular primitive")
    return _PathVariable(field_path, tuple(chain), leaf.coerce)


def _put(root: JsonObject, chain: tuple[FieldPlan, ...], value: object, field_path: str) -> None:
    target = root
    for field in chain[:-1]:
        target = _child(target, field, field_path)
    leaf = chain[-1]
    if leaf.name in target or leaf.json_name in target:
        raise InvalidArgument(f"field {field_path} is set by both the path and the body")
    target[leaf.name] = value


def _child(target: JsonObject, field: FieldPlan, field_path: str) -> JsonObject:
    key = field.json_name if field.json_name in target else field.name
    child = target.get(key)
    if child is None:
        child = target[key] = {}
    if not isinstance(child, dict):
        raise InvalidArgument(
            f"field {field.name} of the body must be a JSON object to take path variable "
            f"{field_path}"
        )
    return child


def _check(
    root: JsonObject, message: MessagePlan, messages: Mapping[str, MessagePlan], limit: int
) -> None:
    """Walk the request JSON without recursion, before json_format recurses through it: depth,
    a field given twice (by proto and JSON name), two members of a oneof, bytes and floats."""
    pending: list[_Pending] = [(root, message, "", 1, 1)]
    while pending:
        value, plan, path, depth, step = pending.pop()
        if depth > limit:
            raise InvalidArgument(
                f"JSON nests deeper than {limit} levels (in {path or 'the top level'})"
            )
        if isinstance(value, dict) and plan is not None:
            _check_message(value, plan, messages, path, depth, pending)
        elif isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            pending.extend(
                (v, None, path, depth + step, step) for v in items if isinstance(v, _CONTAINERS)
            )


def _check_message(
    obj: JsonObject,
    message: MessagePlan,
    messages: Mapping[str, MessagePlan],
    path: str,
    depth: int,
    pending: list[_Pending],
) -> None:
    seen: dict[str, str] = {}  # proto name -> the key that set it
    oneofs: dict[str, str] = {}  # oneof name -> the member that set it
    for key, value in obj.items():
        field = message.fields.get(key)
        if field is None:  # json_format reports it, or drops it with ignore_unknown_body_fields
            if isinstance(value, _CONTAINERS):
                pending.append((value, None, path, depth + 1, 1))
            continue
        name = field.name
        if name in seen:
            raise InvalidArgument(
                f"field {_join(path, name)} is given twice "
                f"(as {quote(seen[name])} and {quote(key)})"
            )
        seen[name] = key
        if field.oneof is not None and value is not None:
            other = oneofs.setdefault(field.oneof, name)
            if other != name:
                raise InvalidArgument(
                    f"oneof {_join(path, field.oneof)} has two members set: "
                    f"{_join(path, other)}, {_join(path, name)}"
                )
        if field.normalize is not None:
            _normalize(obj, key, field, field.normalize, _join(path, name))
        if not isinstance(value, _CONTAINERS):
            continue
        here = _join(path, name)
        plan = messages[field.message] if field.message is not None else None
        if plan is None:
            step = 2 if field.type_name in _STRUCTS else 1
            pending.append((value, None, here, depth + step, step))
        elif field.is_map and isinstance(value, dict):
            pending.extend(
                (v, plan, f"{here}[{k}]", depth + 2, 1)
                for k, v in value.items()
                if isinstance(v, _CONTAINERS)
            )
        elif field.repeated and isinstance(value, list):
            pending.extend(
                (v, plan, f"{here}[{i}]", depth + 2, 1)
                for i, v in enumerate(value)
                if isinstance(v, _CONTAINERS)
            )
        else:
            single = not field.repeated and not field.is_map
            pending.append((value, plan if single else None, here, depth + 1, 1))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _normalize(
    obj: JsonObject, key: str, field: FieldPlan, normalize: JsonNormalizer, here: str
) -> None:
    value = obj[key]
    if field.repeated and isinstance(value, list):
        value[:] = [normalize(item, f"{here}[{i}]") for i, item in enumerate(value)]
    elif field.is_map and isinstance(value, dict):
        for k, item in value.items():
            value[k] = normalize(item, f"{here}[{k}]")
    else:
        obj[key] = normalize(value, here)


def _mask_paths(
    body: JsonObject, message: MessagePlan, messages: Mapping[str, MessagePlan]
) -> list[str]:
    # grpc-gateway's FieldMaskFromRequestBody, breadth first, in proto names.
    paths: list[str] = []
    queue: deque[tuple[JsonObject, MessagePlan, str]] = deque([(body, message, "")])
    while queue:
        obj, plan, prefix = queue.popleft()
        for key, value in obj.items():
            field = plan.fields.get(key)
            if field is None:
                continue
            here = prefix + field.name
            single = field.message is not None and not field.repeated and not field.is_map
            if single and isinstance(value, dict) and field.message is not None:
                queue.append((value, messages[field.message], here + "."))
            else:
                paths.append(here)
    return paths


def _parse(
    root: JsonObject, message: Message, pool: DescriptorPool, options: DecodeOptions
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
        raise InvalidArgument(str(exc).partition("\n")[0]) from None
