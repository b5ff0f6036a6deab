"""The route table: google.api.http rules of the selected services, validated and indexed at load.

Pure: imports protobuf (with googleapis-common-protos' google.api modules), the stdlib and
gateway.errors / gateway.transcode only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.api import annotations_pb2, http_pb2  # importing annotations registers the extension
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor

from gateway.errors import ConfigError, MethodNotAllowed, NotFound
from gateway.transcode.route import Route
from gateway.transcode.schema import Schema
from gateway.transcode.template import (
    DeepWildcard,
    Literal,
    Matcher,
    Template,
    compile_template,
    parse_template,
    split_path,
    strip_verb,
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 method token
_SAFE_LEVELS = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)


def compile_routes(schema: Schema, services: Collection[str] | None = None) -> RouteTable:
    """Read every google.api.http rule (with additional_bindings) of the services into a table.

    google/api/http.proto, validated once at load (ConfigError names the RPC and binding):
    path variables name existing non-repeated scalar or enum fields, each bound once; `body` is
    "*" or a top-level non-repeated request field not bound by the path, and GET/HEAD take no
    body (DELETE may: http.proto does not forbid it, and Envoy allows it); `response_body` is a
    top-level reply field; custom kinds are HTTP method tokens; and no two bindings share an
    HTTP method and a path shape. Methods without a rule get no route (no auto-mapping).
    `services=None` takes every service of the schema; an unknown name is a ConfigError.

    Example: compile_routes(schema, {"users.v1.Users"}).match("GET", "/v1/users/u-1")
    gives (the GetUser route, {"id": "u-1"}).
    """
    selected = set(schema.services) if services is None else set(services)
    missing = sorted(selected - set(schema.services))
    if missing:
        raise ConfigError(f"services not in the descriptor set: {', '.join(missing)}")
    routes: list[Route] = []
    for file in schema.files:
        for service in file.service:
            full_name = f"{file.package}.{service.name}" if file.package else service.name
            if full_name not in selected:
                continue
            descriptors = schema.services[full_name].methods_by_name
            for method in service.method:
                routes.extend(_method_routes(descriptors[method.name], method.options))
    return compile_route_table(routes)


def compile_route_table(routes: Iterable[Route]) -> RouteTable:
    """Index routes in one segment trie per HTTP method; ConfigError on a conflict.

    Two routes conflict when they share the HTTP method, the verb and the path shape (the
    template with its variables flattened away), e.g. GET "/v1/{name=shelves/*}" and
    GET "/v1/shelves/{id}": no request could tell them apart.

    Example: compile_route_table([]).allowed("/v1/anything") == ().
    """
    kept = tuple(routes)
    tries: dict[str, _Node] = {}
    verbs: dict[str, set[str]] = {}
    for route in kept:
        matcher = compile_template(route.template)
        node = tries.setdefault(route.http_method, _Node())
        for part in matcher.parts:
            if isinstance(part, DeepWildcard):
                ends = node.deep
                break
            if isinstance(part, Literal):
                node = node.literals.setdefault(part.text, _Node())
            else:
                node.wildcard = node.wildcard or _Node()
                node = node.wildcard
        else:
            ends = node.leaves
        verb = route.template.verb
        taken = ends.get(verb)
        if taken is not None:
            raise ConfigError(
                f"routes conflict: {taken.route} and {route} have the same HTTP method and "
                "path shape (variables ignored)"
            )
        ends[verb] = _Entry(route, matcher)
        if verb is not None:
            verbs.setdefault(route.http_method, set()).add(verb)
    return RouteTable(
        routes=kept,
        tries=MappingProxyType({
            method: _Trie(root, tuple(sorted(verbs.get(method, ()), key=lambda v: (-len(v), v))))
            for method, root in tries.items()
        }),
    )


@dataclass(frozen=True, slots=True, eq=False)
class RouteTable:
    """Every route of one load, indexed for the per-request match; immutable once built.

    Precedence, most specific first (as Envoy's path matcher and grpc-gateway's verb suffix):
    1. a template whose verb is the ":verb" suffix of the last segment, longest verb first,
       before templates without a verb (where a ":" is ordinary text of the last segment);
    2. then segment by segment from the left: a literal beats "*", which beats "**";
    3. the walk backtracks, so GET /v1/shelves/s1 still reaches "/v1/{name=shelves/*}" when
       "/v1/shelves/stats" exists. The HTTP method is part of the key: each method has its own
       trie, and a match for another method only turns a 404 into a 405.
    """

    routes: tuple[Route, ...]  # in load order: for OpenAPI and listings
    tries: Mapping[str, _Trie] = field(repr=False)

    def match(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request and its path variables, per google/api/http.proto.

        Routing looks at the raw (still percent-encoded) path; values are decoded afterwards
        (Matcher.bind) and never re-routed. HEAD falls back to the GET route when no HEAD
        binding exists (RFC 9110 9.3.2; the edge sends no body). Raises NotFound when no route
        has the path, MethodNotAllowed (with `allowed`, for the Allow header) when only other
        methods do, InvalidArgument when a bound value is not valid percent-encoded UTF-8.

        Example: match("POST", "/v1/orders/o-1:cancel") -> (CancelOrder's route, {"id": "o-1"}).
        """
        segments = split_path(raw_path)
        if segments is not None:
            found = self._find(http_method, segments)
            if found is None and http_method == "HEAD":
                found = self._find("GET", segments)
            if found is not None:
                entry, matched = found
                return entry.route, entry.matcher.bind(matched)
            allowed = self._allowed(segments)
            if allowed:
                raise MethodNotAllowed(
                    f"method {_shown(http_method)} is not allowed for {_shown(raw_path)}; "
                    f"allowed: {', '.join(allowed)}",
                    allowed,
                )
        raise NotFound(f"no route for path {_shown(raw_path)}")

    def allowed(self, raw_path: str) -> tuple[str, ...]:
        """HTTP methods with a route for this raw path, sorted; HEAD wherever GET is.

        Example: allowed("/v1/users/u-1") == ("DELETE", "GET", "HEAD") for the users.v1 routes.
        """
        segments = split_path(raw_path)
        return () if segments is None else self._allowed(segments)

    def _allowed(self, segments: list[str]) -> tuple[str, ...]:
        methods = {method for method in self.tries if self._find(method, segments) is not None}
        if "GET" in methods:
            methods.add("HEAD")
        return tuple(sorted(methods))

    def _find(self, http_method: str, segments: list[str]) -> tuple[_Entry, list[str]] | None:
        trie = self.tries.get(http_method)
        if trie is None:
            return None
        if segments and ":" in segments[-1]:
            for verb in trie.verbs:
                trimmed = strip_verb(segments, verb)
                if trimmed is not None:
                    entry = _walk(trie.root, trimmed, 0, verb)
                    if entry is not None:
                        return entry, trimmed
        entry = _walk(trie.root, segments, 0, None)
        return None if entry is None else (entry, segments)


@dataclass(frozen=True, slots=True)
class _Entry:
    route: Route
    matcher: Matcher


@dataclass(slots=True)
class _Node:  # mutated only inside compile_route_table, before the table exists
    literals: dict[str, _Node] = field(default_factory=dict)
    wildcard: _Node | None = None
    leaves: dict[str | None, _Entry] = field(default_factory=dict)  # templates ending here, by verb
    deep: dict[str | None, _Entry] = field(default_factory=dict)  # "**" here, to the end, by verb


@dataclass(frozen=True, slots=True)
class _Trie:
    root: _Node
    verbs: tuple[str, ...]  # longest first


def _walk(node: _Node, segments: list[str], i: int, verb: str | None) -> _Entry | None:
    if i == len(segments):
        entry = node.leaves.get(verb)
        if entry is not None:
            return entry
    else:
        child = node.literals.get(segments[i])
        if child is not None and (entry := _walk(child, segments, i + 1, verb)) is not None:
            return entry
        if node.wildcard is not None:
            entry = _walk(node.wildcard, segments, i + 1, verb)
            if entry is not None:
                return entry
    return node.deep.get(verb)  # "**" takes what is left, possibly nothing


def _shown(text: str, limit: int = 200) -> str:
    text = text.partition("?")[0]
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _method_routes(
    method: MethodDescriptor, raw_options: descriptor_pb2.MethodOptions
) -> list[Route]:
    # Options parsed before google.api.annotations_pb2 was imported hold the rule as unknown
    # fields; parsing them again here, with the extension registered, always finds it.
    options = descriptor_pb2.MethodOptions.FromString(raw_options.SerializeToString())
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    name = f"/{method.containing_service.full_name}/{method.name}"
    safe = options.idempotency_level in _SAFE_LEVELS
    routes = [_route(rule, method, name, safe)]
    for binding in rule.additional_bindings:
        if binding.additional_bindings:
            raise ConfigError(f"{name}: additional_bindings must not nest additional_bindings")
        routes.append(_route(binding, method, name, safe))
    return routes


def _route(rule: http_pb2.HttpRule, method: MethodDescriptor, name: str, safe: bool) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise ConfigError(f"{name}: google.api.http rule sets no pattern (get, post, ..., custom)")
    if kind == "custom":
        http_method, path = rule.custom.kind, rule.custom.path
        if _TOKEN.fullmatch(http_method) is None:
            raise ConfigError(f"{name}: custom kind {http_method!r} is not an HTTP method token")
    else:
        http_method, path = kind.upper(), getattr(rule, kind)
    where = f"{name} ({http_method} {path})"
    try:
        template = parse_template(path)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _check_rule(where, rule, http_method, template, method.input_type, method.output_type)
    return Route(
        http_method=http_method,
        template=template,
        method=name,
        service=method.containing_service.full_name,
        input=method.input_type,
        output=method.output_type,
        body=rule.body or None,
        response_body=rule.response_body or None,
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        idempotent=safe or http_method in ("GET", "HEAD"),
        path_fields=tuple(v.field_path for v in template.variables),
    )


def _check_rule(
    where: str,
    rule: http_pb2.HttpRule,
    http_method: str,
    template: Template,
    request: Descriptor,
    reply: Descriptor,
) -> None:
    path_fields = [v.field_path for v in template.variables]
    for field_path in path_fields:
        problem = _path_field_problem(request, field_path)
        if problem:
            raise ConfigError(f"{where}: path variable {{{field_path}}}: {problem}")
    if rule.body:
        if http_method in ("GET", "HEAD"):
            raise ConfigError(f"{where}: a {http_method} binding must not have a body")
        if rule.body != "*":
            body = request.fields_by_name.get(rule.body)
            if body is None:
                raise ConfigError(
                    f"{where}: body {rule.body!r} is not a field of {request.full_name}"
                )
            if body.is_repeated:
                raise ConfigError(f"{where}: body {rule.body!r} is repeated (or a map)")
            if rule.body in path_fields:
                raise ConfigError(f"{where}: body {rule.body!r} is also bound by the path")
    if rule.response_body and rule.response_body not in reply.fields_by_name:
        raise ConfigError(
            f"{where}: response_body {rule.response_body!r} is not a field of {reply.full_name}"
        )


def _path_field_problem(message: Descriptor, field_path: str) -> str | None:
    # http.proto: a path variable must not refer to a repeated or map field; it ends at a leaf.
    names = field_path.split(".")
    for depth, name in enumerate(names):
        found = message.fields_by_name.get(name)
        here = ".".join(names[: depth + 1])
        if found is None:
            return f"{message.full_name} has no field {name!r}"
        if found.is_repeated:
            return f"{here!r} is repeated (or a map)"
        if depth == len(names) - 1:
            if found.message_type is not None:
                return f"{here!r} is a message; a path variable must end at a scalar or enum"
        elif found.message_type is None:
            return f"{here!r} is not a message, so it has no field {names[depth + 1]!r}"
        else:
            message = found.message_type
    return None
