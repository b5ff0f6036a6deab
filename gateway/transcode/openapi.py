"""The OpenAPI 3.1 document of a route table: paths, operations, parameters and bodies from
google.api.http (schemas in openapi_schemas, comments in openapi_comments). Pure: stdlib,
protobuf, gateway.errors and gateway.transcode only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.errors import ConfigError
from gateway.transcode.coerce import compile_coercer
from gateway.transcode.openapi_comments import source_comments
from gateway.transcode.openapi_rules import (
    IDENTIFIER,
    OUTPUT_ONLY,
    REQUIRED,
    RuleReader,
    behaviors,
    repeated_keywords,
    value_keywords,
)
from gateway.transcode.openapi_schemas import ANY, STATUS, WKT, Json, JsonSchemas, join, ref
from gateway.transcode.route import Route
from gateway.transcode.routes import RouteTable
from gateway.transcode.schema import Schema
from gateway.transcode.template import DeepWildcard, Literal, Part, Variable, Wildcard
from gateway.transcode.values import NO_CONTROL_PATTERN

__all__ = ["OpenApiOptions", "build_openapi"]

_HTTP_BODY: Final = "google.api.HttpBody"
_FIELD_MASK: Final = "google.protobuf.FieldMask"
_OPERATIONS: Final = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH",
                                "TRACE"})  # the methods an OpenAPI path item can hold
_NDJSON: Final = "application/x-ndjson"
_SSE: Final = "text/event-stream"
_BINARY: Final[Json] = {"type": "string", "format": "binary"}
_TEMPLATED: Final = re.compile(r"\{([^{}]+)\}")
_REGEX_SPECIAL: Final = re.compile(r"([\\^$.|?*+()\[\]{}/])")


@dataclass(frozen=True, slots=True)
class OpenApiOptions:
    """What the document shows: the info block, the JSON names the edge renders (as its
    RenderOptions) and the success status per method ("/pkg.Service/Method" -> 2xx)."""

    title: str = "API"
    version: str = "v1"
    use_proto_names: bool = False
    emit_unpopulated: bool = False
    success_status: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    closed_bodies: bool = True  # unknown body fields are refused (additionalProperties false)
    # components.securitySchemes, and per method the schemes that may call it (none: public)
    security_schemes: Mapping[str, Json] = field(default_factory=lambda: MappingProxyType({}))
    security: Mapping[str, Sequence[str]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for method, status in self.success_status.items():
            if not 200 <= status < 300:
                raise ConfigError(f"success status of {method}: {status} is not a 2xx status")


def build_openapi(schema: Schema, table: RouteTable, options: OpenApiOptions) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, as a JSON-serializable dict.

    Paths follow google/api/http.proto: `/v1/{name=shelves/*}` becomes `/v1/{name}` with the
    segment pattern in the parameter (as grpc-gateway's openapiv2); a second route on the same
    path and method renames its first parameter (`{name_1}`); custom kinds OpenAPI cannot name
    (SEARCH) are listed under `x-custom-methods`. Fields the path and body leave free are query
    parameters (`a.b` for nested fields, repeated parameters for repeated fields). Schemas follow
    the proto3 JSON mapping: lowerCamelCase keys (proto names with `use_proto_names`), 64-bit
    integers as strings, enums by name, well-known types in their JSON form; one component per
    message, named by its full proto name. With `emit_unpopulated`, replies use "-Reply" twins
    that list the always-printed fields as required. Errors are google.rpc.Status.

    >>> doc = build_openapi(schema, compile_routes(schema), OpenApiOptions())
    >>> doc["paths"]["/v1/users/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
    {'schema': {'$ref': '#/components/schemas/users.v1.User'}}
    """
    return _Builder(schema, options).document(table.routes)


class _Builder:
    """Mutable while one document is built; never shared."""

    def __init__(self, schema: Schema, options: OpenApiOptions) -> None:
        self.schema = schema
        self.options = options
        self.schemas = JsonSchemas(source_comments(schema.files),
                                   use_proto_names=options.use_proto_names,
                                   rules=RuleReader(schema.pool), closed=options.closed_bodies)
        self.comments = self.schemas.comments

    # -- document, paths, operations -------------------------------------------------------

    def document(self, routes: Sequence[Route]) -> Json:
        paths: dict[str, dict[str, Json]] = {}
        custom: list[Json] = []
        used_ids: set[str] = set()
        bindings: dict[str, int] = {}
        tags: dict[str, None] = {}
        for route in routes:
            index = bindings[route.method] = bindings.get(route.method, 0) + 1
            operation_id = _operation_id(route, index, used_ids)
            tags[route.service] = None
            if route.http_method not in _OPERATIONS:
                custom.append({"method": route.http_method, "path": str(route.template),
                               "rpc": route.method, "operationId": operation_id})
                continue
            path, params = _openapi_path(route, paths)
            paths.setdefault(path, {})[route.http_method.lower()] = self.operation(
                route, operation_id, params
            )
        components: Json = {"schemas": dict(sorted(self.schemas.components.items()))}
        if self.options.security_schemes:
            components["securitySchemes"] = dict(self.options.security_schemes)
        document: Json = {
            "openapi": "3.1.0",
            "info": {"title": self.options.title, "version": self.options.version},
            "tags": [self.tag(name) for name in tags],
            "paths": paths,
            "components": components,
        }
        if custom:
            document["x-custom-methods"] = custom
        return document

    def tag(self, service: str) -> Json:
        comment = self.comments.get(service)
        return {"name": service, "description": comment} if comment else {"name": service}

    def operation(self, route: Route, operation_id: str, params: Sequence[_Param]) -> Json:
        operation: Json = {"operationId": operation_id, "tags": [route.service]}
        service, _, method = route.method.lstrip("/").partition("/")
        summary, _, description = self.comments.get(f"{service}.{method}", "").partition("\n\n")
        if summary:
            operation["summary"] = " ".join(summary.split())
        if description.strip():
            operation["description"] = description.strip()
        parameters = [
            self.path_parameter(route, segment, name) if isinstance(segment, Variable)
            else _anonymous(segment, name)
            for segment, name in params
        ]
        if route.body != "*":  # http.proto: with body "*" no field is left for the query
            skip = frozenset((*route.path_fields, *((route.body,) if route.body else ()),
                              *_filled_mask(route)))
            parameters += self.query(route.input, "", "", skip, (route.input.full_name,))
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = self.request_body(route)
        schemes = self.options.security.get(route.method, ())
        operation["responses"] = self.responses(route, secured=bool(schemes))
        if schemes:  # any one of them (public operations have none)
            operation["security"] = [{name: []} for name in schemes]
        found = self.schema.method(route.method)
        if found is not None and found.GetOptions().deprecated:
            operation["deprecated"] = True
        return operation

    def path_parameter(self, route: Route, variable: Variable, name: str) -> Json:
        leaf = _leaf(route.input, variable.field_path)
        schema = _without_control(self.schemas.text_schema(leaf),
                                  value_keywords(self.schemas.field_rules(leaf)))
        notes = [self.comments.get(leaf.full_name, "")]
        if name != variable.field_path:
            notes.insert(0, f"Sets field `{variable.field_path}`.")
        if variable.segments != (Wildcard(),):
            schema["pattern"] = "^" + "/".join(map(_regex, variable.segments)) + "$"
            notes.append(f"Pattern: `{'/'.join(map(str, variable.segments))}`.")
            if variable.multi_segment:
                notes.append("Its `/` separate path segments: send them as they are, not as %2F.")
        notes.append(_DOT_NOTE)
        return _parameter(name, "path", schema, notes, leaf)

    def query(
        self, message: Descriptor, proto_prefix: str, key_prefix: str,
        skip: frozenset[str], chain: tuple[str, ...],
    ) -> list[Json]:
        """Query parameters for the fields of `message` (google/api/http.proto rule 3): the
        leaves that the decoder reads from text, by dotted name; a type already on `chain`
        (recursion) is not entered again."""
        found: list[Json] = []
        for item in message.fields:
            proto_path = proto_prefix + item.name
            key = key_prefix + self.schemas.key(item)
            if proto_path in skip:
                continue
            if compile_coercer(item) is not None:  # the decoder reads it from text
                rules = self.schemas.field_rules(item)
                text = self.schemas.text_schema(item)
                if item.is_repeated:
                    keywords, item_rules = repeated_keywords(rules)
                    schema = {"type": "array",
                              "items": _without_control(text, value_keywords(item_rules)),
                              **keywords}
                else:
                    schema = _without_control(text, value_keywords(rules))
                if item.name == "update_mask" and _type_name(item) == _FIELD_MASK:
                    schema.update(self.mask_pattern(message, item))
                notes = [self.comments.get(item.full_name, "")]
                parameter = _parameter(key, "query", schema, notes, item)
                if item.is_repeated:
                    parameter.update(style="form", explode=True)
                found.append(parameter)
            elif (  # a singular message read field by field (maps are repeated)
                item.message_type is not None
                and not item.is_repeated
                and item.message_type.full_name not in (*WKT, ANY, *chain)
            ):
                found += self.query(item.message_type, proto_path + ".", key + ".", skip,
                                    (*chain, item.message_type.full_name))
        return found

    def mask_pattern(self, request: Descriptor, mask: FieldDescriptor) -> Json:
        """An update's mask names the resource's writable fields (not OUTPUT_ONLY or
        IDENTIFIER), comma-separated, as JSON names: a pattern says so."""
        resources = [f for f in request.fields if f is not mask and f.message_type is not None
                     and not f.is_repeated]
        if len(resources) != 1 or resources[0].message_type is None:
            return {}
        names = [self.schemas.key(f) if not self.options.use_proto_names else f.json_name
                 for f in resources[0].message_type.fields
                 if not behaviors(f) & {OUTPUT_ONLY, IDENTIFIER}]
        one = "(" + "|".join(re.escape(n) for n in names) + ")"
        # at least one: an empty mask in the query would replace the whole resource
        return {"pattern": f"^{one}(,{one})*$"}

    def request_body(self, route: Route) -> Json:
        """http.proto `body`: "*" is the request, else one top-level field; either way without
        the fields the path binds (the decoder rejects a field that both set)."""
        name = route.body or "*"
        item = None if name == "*" else route.input.fields_by_name[name]
        prefix = "" if item is None else name + "."
        inside = frozenset(p.removeprefix(prefix) for p in route.path_fields
                           if p.startswith(prefix))
        description = self.comments.get((item or route.input).full_name, "")
        message = route.input if item is None else item.message_type
        if message is not None and message.full_name == _HTTP_BODY:
            return {"content": {"*/*": {"schema": dict(_BINARY)}}}
        partial = route.http_method == "PATCH" and "update_mask" in route.input.fields_by_name
        if message is not None and (inside or partial):
            # an update's resource: the mask (filled from the body's keys) says what is written
            schema = self.schemas.message_schema(message, inside, twin=False, partial=partial)
            if inside:
                bound = ", ".join(f"`{path}`" for path in sorted(inside))
                description = join(description, f"The fields the path binds ({bound}) are "
                                   "taken from the path.")
        elif item is None:
            schema = self.schemas.message_value(route.input, twin=False)
        else:
            schema = self.schemas.field_schema(item, twin=False, described=False)
        body: Json = {"content": {"application/json": {"schema": schema}}}
        free = [f for f in ((item,) if item is not None else route.input.fields)
                if f.name not in route.path_fields]
        if any(REQUIRED in behaviors(f) for f in free):
            body["required"] = True  # no body leaves a REQUIRED field missing
        return {"description": description, **body} if description else body

    def responses(self, route: Route, secured: bool) -> Json:
        def error(description: str) -> Json:
            return {"description": description,
                    "content": {"application/json": {"schema": ref(STATUS)}}}

        errors = {str(status): error(text) for status, text in _ERRORS
                  if secured or status not in (401, 403)}
        errors["default"] = error("Any other failure: a google.rpc.Status; the HTTP status "
                                  "follows from its code.")
        status = 200 if route.server_streaming else self.options.success_status.get(
            route.method, 200
        )
        if status == 204:
            return {"204": {"description": "Success: no content."}, **errors}
        twin = self.options.emit_unpopulated
        description = "Success."
        schema: Json | None = None  # None: a raw google.api.HttpBody
        if route.response_body is not None:
            item = route.output.fields_by_name[route.response_body]
            description = join(description, self.comments.get(item.full_name, ""))
            if item.is_repeated or _type_name(item) != _HTTP_BODY:
                schema = self.schemas.field_schema(item, twin=twin, described=False)
        elif route.output.full_name != _HTTP_BODY:
            schema = self.schemas.message_value(route.output, twin=twin)
        if schema is None:
            content: Json = {"*/*": {"schema": dict(_BINARY)}}
        else:
            content = {"application/json": {"schema": schema}}
        if route.server_streaming:
            content = {
                _NDJSON: {"schema": {
                    "type": "object",
                    "description": 'One JSON object per line: {"result": <message>} per reply '
                    'message; a failure ends the stream with {"error": <google.rpc.Status>}.',
                    "properties": {"result": schema or dict(_BINARY), "error": ref(STATUS)},
                }},
                _SSE: {"schema": {
                    "type": "string",
                    "description": "Sent when the request accepts text/event-stream: "
                    '"data: <message JSON>" per reply message; a failure ends the stream with '
                    '"event: error" and "data: <google.rpc.Status JSON>".',
                }},
            }
        return {str(status): {"description": description, "content": content}, **errors}


_Param = tuple[Variable | Wildcard | DeepWildcard, str]  # a path segment and its parameter name
# Every status the gateway itself may answer with (google/rpc/code.proto's table), each with
# a google.rpc.Status body; 401/403 only on operations that need a caller.
_ERRORS: Final = (
    (400, "INVALID_ARGUMENT (the request breaks the contract: a google.rpc.BadRequest names "
          "each field and rule), FAILED_PRECONDITION or OUT_OF_RANGE."),
    (401, "UNAUTHENTICATED: no valid credential."),
    (403, "PERMISSION_DENIED: the caller lacks a role or scope."),
    (404, "NOT_FOUND."),
    (409, "ALREADY_EXISTS or ABORTED."),
    (413, "The request body is larger than the gateway accepts."),
    (415, "The request body is not application/json."),
    (429, "RESOURCE_EXHAUSTED: rate limited (Retry-After says when to come back)."),
    (500, "INTERNAL, UNKNOWN or DATA_LOSS."),
    (501, "UNIMPLEMENTED."),
    (503, "UNAVAILABLE: no healthy backend, or the circuit is open."),
    (504, "DEADLINE_EXCEEDED."),
)


def _openapi_path(
    route: Route, paths: Mapping[str, Mapping[str, Json]]
) -> tuple[str, list[_Param]]:
    """`/v1/{name=shelves/*}:get` -> `/v1/{name}:get`; anonymous `*`/`**` become parameters.

    When another route already has this path and method, the first parameter is renamed
    `{name_1}` (then `_2`, ...), as grpc-gateway's openapiv2 does. A nested field's
    variable is named without dots (`{user.id}` -> `{user_id}`; its description names the field).
    """
    taken = {v.field_path for v in route.template.variables}
    parts: list[str] = []
    params: list[_Param] = []
    where: list[int] = []  # index in parts of each parameter
    for segment in route.template.segments:
        if isinstance(segment, Literal):
            parts.append(segment.text)
            continue
        if isinstance(segment, Variable):
            name = _parameter_name(segment.field_path, taken)
        else:
            name = _fresh("wildcard", taken)
        params.append((segment, name))
        where.append(len(parts))
        parts.append("{" + name + "}")
    verb = f":{route.template.verb}" if route.template.verb else ""
    path = "/" + "/".join(parts) + verb
    method = route.http_method.lower()
    # One path item per URL shape (OpenAPI: templated paths that differ only in their
    # parameter names are the same path), so that it lists every method the URL allows.
    shape = _TEMPLATED.sub("{}", path)
    same = next((p for p in paths if p != path and _TEMPLATED.sub("{}", p) == shape
                 and method not in paths[p]), None)
    if same is not None:
        names = _TEMPLATED.findall(same)
        for index, ((segment, _), name) in enumerate(zip(params, names, strict=True)):
            params[index] = (segment, name)
            parts[where[index]] = "{" + name + "}"
        path = same
    if method in paths.get(path, {}):
        if not params:
            raise ConfigError(f"{route}: another route has the same OpenAPI path {path}")
        segment, first = params[0]
        count, renamed = 0, first
        while method in paths.get(path, {}) or renamed in taken:
            count += 1
            renamed = f"{first}_{count}"
            parts[where[0]] = "{" + renamed + "}"
            path = "/" + "/".join(parts) + verb
        params[0] = (segment, renamed)
    return path, params


def _filled_mask(route: Route) -> tuple[str, ...]:
    """A PATCH whose update_mask the gateway fills from the body's keys: the document leaves
    the mask out of the query (still accepted), since a mask naming a field the body does not
    set is a rule across query and body that a schema cannot state."""
    if (route.http_method == "PATCH" and route.body not in (None, "*")
            and "update_mask" in route.input.fields_by_name
            and "update_mask" not in route.path_fields):
        return ("update_mask",)
    return ()


def _parameter_name(field_path: str, taken: set[str]) -> str:
    """A nested field's parameter without dots (`{user.id}` -> `{user_id}`): RFC 6570 reads
    a dot as an operator, and URI-template tools (schemathesis among them) trip over it."""
    if "." not in field_path:
        return field_path
    name = field_path.replace(".", "_")
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _fresh(stem: str, taken: set[str]) -> str:
    count = 1
    while f"{stem}{count}" in taken:
        count += 1
    taken.add(f"{stem}{count}")
    return f"{stem}{count}"


def _operation_id(route: Route, binding: int, used: set[str]) -> str:
    """grpc-gateway's `Service_Method`, `Service_Method2` for the second binding; the full
    service name (dots as `_`) when another package has a service of the same name."""
    method = route.method.rpartition("/")[2]
    suffix = str(binding) if binding > 1 else ""
    candidate = f"{route.service.rpartition('.')[2]}_{method}{suffix}"
    if candidate in used:
        candidate = f"{route.service.replace('.', '_')}_{method}{suffix}"
    unique, count = candidate, 1
    while unique in used:
        count += 1
        unique = f"{candidate}_{count}"
    used.add(unique)
    return unique


def _anonymous(segment: Variable | Wildcard | DeepWildcard, name: str) -> Json:
    deep = isinstance(segment, DeepWildcard)
    schema: Json = {"type": "string", "pattern": "^.*$"} if deep else {"type": "string"}
    what = "Any number of path segments (`**`)" if deep else "Any one path segment (`*`)"
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": f"{what}; the gateway does not read its value."}


_DOT_NOTE = "A value that is `.` or `..` (or has one between `/`) is refused."


def _without_control(text: Json, keywords: Json) -> Json:
    """A text parameter's schema (its type's, then its field rules' keywords) that also says
    what values.py refuses: no control character (C0, DEL, C1). A type's own pattern (int64
    digits, a duration) admits none already; a rule's pattern stays, and both must hold."""
    schema = {**text, **keywords}
    if schema.get("type") == "string" and "enum" not in schema:
        if "pattern" in keywords:
            schema["allOf"] = [{"pattern": NO_CONTROL_PATTERN}]
        elif "pattern" not in text:
            schema["pattern"] = NO_CONTROL_PATTERN
    return schema


def _parameter(name: str, where: str, schema: Json, notes: Sequence[str],
               item: FieldDescriptor) -> Json:
    parameter: Json = {"name": name, "in": where}
    if where == "path" or REQUIRED in behaviors(item):
        parameter["required"] = True
    description = join(*notes)
    if description:
        parameter["description"] = description
    if item.GetOptions().deprecated:
        parameter["deprecated"] = True
    parameter["schema"] = schema
    return parameter


_ONE_SEGMENT = r"[^/\x00-\x1f\x7f-\x9f]+"
_SEGMENTS = r"[^\x00-\x1f\x7f-\x9f]*"


def _regex(part: Part) -> str:
    # ECMA 262, as OpenAPI's "pattern"; "*" is one segment, "**" any number of them.
    if isinstance(part, Literal):
        return _REGEX_SPECIAL.sub(r"\\\1", part.text)
    # Neither takes a control character (values.py refuses them in any decoded value).
    return _ONE_SEGMENT if isinstance(part, Wildcard) else _SEGMENTS


def _leaf(message: Descriptor, field_path: str) -> FieldDescriptor:
    names = field_path.split(".")
    for name in names[:-1]:  # compile_routes checked the path: singular messages to a leaf
        inner = message.fields_by_name[name].message_type
        assert inner is not None
        message = inner
    return message.fields_by_name[names[-1]]


def _type_name(item: FieldDescriptor) -> str | None:
    return None if item.message_type is None else item.message_type.full_name

