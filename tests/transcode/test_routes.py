"""Route table: google.api.http rules read from descriptors, validated, matched by precedence."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, empty_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ConfigError, InvalidArgument, MethodNotAllowed, NotFound
from gateway.transcode.route import Route
from gateway.transcode.routes import RouteTable, compile_route_table, compile_routes
from gateway.transcode.schema import Schema, load_schema
from gateway.transcode.template import (
    DeepWildcard,
    Literal,
    Template,
    Variable,
    compile_template,
    parse_template,
)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def table(schema: Schema) -> RouteTable:
    return compile_routes(schema)


def _short(route: Route) -> str:
    """ "/testing.v1.Echo/GetBook" -> "Echo/GetBook"."""
    return route.method.rpartition(".")[2]


def case(request: str, method: str, test_id: str, /, **bindings: str) -> Any:
    http_method, _, path = request.partition(" ")
    return pytest.param(http_method, path, method, bindings, id=test_id)


BOOK = "shelves/s/books/b"


@pytest.mark.parametrize(
    ("http_method", "path", "method", "bindings"),
    [
        # literal segments beat variables: /v1/shelves/stats is not GetShelf("shelves/stats")
        case("GET /v1/shelves/stats", "Echo/GetShelfStats", "literal-precedence"),
        case("GET /v1/shelves/s1", "Echo/GetShelf", "backtrack", name="shelves/s1"),
        case("GET /v1/shelves/s/books/b", "Echo/GetBook", "multi", name="shelves/s/books/b"),
        case("GET /v1/books/a/b/c", "Echo/GetBook", "additional-deep", name="a/b/c"),
        case("DELETE /v1/shelves/s/books/b", "Echo/DeleteBook", "delete", name="shelves/s/books/b"),
        case("PATCH /v1/shelves/s/books/b", "Echo/UpdateBook", "nested-field", **{
            "book.name": "shelves/s/books/b"
        }),
        case("GET /v1/shelves/s/books:batchGet", "Echo/BatchGetBooks", "verb", parent="shelves/s"),
        case("GET /v1/shelves/s/books:stream", "Echo/StreamBooks", "verb-2", parent="shelves/s"),
        case("GET /v1/shelves/s/books/b/author", "Echo/GetBookAuthor", "suffix", name=BOOK),
        case("GET /v1/shelves/s/books/b/cover", "Echo/DownloadCover", "get", name=BOOK),
        case("PUT /v1/shelves/s/books/b/cover", "Echo/UploadCover", "put", name=BOOK),
        case("GET /v1/files/a/b/c.txt", "Echo/GetFile", "deep", path="a/b/c.txt"),
        case("GET /v1/files/a:b", "Echo/GetFile", "deep-keeps-colon", path="a:b"),
        case("GET /v1/files/a%2Fb/c", "Echo/GetFile", "deep-keeps-2F", path="a%2Fb/c"),
        case("GET /v1/files/a%2fb%20c", "Echo/GetFile", "deep-keeps-2f", path="a%2fb c"),
        case("GET /v1/files", "Echo/GetFile", "deep-zero-segments", path=""),
        case("POST /v1/kitchen", "Echo/EchoKitchen", "primary-binding"),
        case("SEARCH /v1/kitchen:search", "Echo/EchoKitchen", "custom-kind"),
        case("GET /v1/kitchen/a%2Fb", "Echo/EchoKitchen", "single-decodes-2F", string_value="a/b"),
        case("GET /v1/kitchen/..%2Fadmin", "Echo/EchoKitchen", "literal", string_value="../admin"),
        case("PATCH /v1/kitchen/k1", "Echo/EchoKitchen", "additional-patch", string_value="k1"),
        case("GET /v1/kitchen/labels/l/deep", "Echo/EchoKitchen", "nested-multi", **{
            "nested.label": "labels/l"
        }),
        case("GET /v1/kitchen/labels", "Echo/EchoKitchen", "not-nested", string_value="labels"),
        case("POST /v1/orders/o-5001:cancel", "Orders/CancelOrder", "verb-after-var", id="o-5001"),
        case("GET /v1/orders/o-5001", "Orders/GetOrder", "get-order", id="o-5001"),
        # grpc-gateway: a ":" that starts no verb of this HTTP method is part of the value
        case("GET /v1/orders/o-5001:cancel", "Orders/GetOrder", "colon-text", id="o-5001:cancel"),
        case("GET /v1/orders/:cancel", "Orders/GetOrder", "only-colon", id=":cancel"),
        case(
            "GET /v1/users/u-1/notifications:countUnread", "Notifications/CountUnread",
            "verb-beats-plain", user_id="u-1",
        ),
        case(
            "GET /v1/users/u-1/notifications", "Notifications/ListNotifications",
            "plain-without-verb", user_id="u-1",
        ),
        case(
            "POST /v1/users/u-1/notifications:markRead", "Notifications/MarkRead", "post-verb",
            user_id="u-1",
        ),
        case("GET /v1/users/u-1/orders:watch", "Orders/WatchOrders", "stream-verb", user_id="u-1"),
        case("POST /v1/users/u-1/orders", "Orders/CreateOrder", "create-order", user_id="u-1"),
        case("GET /v1/users/u-1", "Users/GetUser", "get-user", id="u-1"),
        case("GET /v1/users/%2E%2E", "Users/GetUser", "encoded-dots-bind", id=".."),
        case("GET /v1/users/u-1?view=full", "Users/GetUser", "query-ignored", id="u-1"),
        case("PATCH /v1/users/u-1", "Users/UpdateUser", "update-user", **{"user.id": "u-1"}),
        case("GET /v1/users", "Users/ListUsers", "list-users"),
        case("HEAD /v1/users/u-1", "Users/GetUser", "head-falls-back-to-get", id="u-1"),
    ],
)
def test_match(
    table: RouteTable, http_method: str, path: str, method: str, bindings: dict[str, str]
) -> None:
    route, found = table.match(http_method, path)
    assert (_short(route), found) == (method, bindings)


@pytest.mark.parametrize(
    ("http_method", "path", "allowed"),
    [
        pytest.param("PUT", "/v1/users/u-1", "DELETE GET HEAD PATCH", id="put-user"),
        pytest.param("get", "/v1/users/u-1", "DELETE GET HEAD PATCH", id="case-sensitive"),
        pytest.param("POST", "/v1/shelves/s/books/b/cover", "GET HEAD PUT", id="post-cover"),
        pytest.param("GET", "/v1/kitchen", "POST", id="get-kitchen"),
        pytest.param("GET", "/v1/kitchen:search", "SEARCH", id="get-custom-kind"),
        pytest.param("POST", "/v1/orders/o-1", "GET HEAD", id="post-order"),
        pytest.param("POST", "/v1/orders/o-1:refund", "GET HEAD", id="unknown-verb-is-text"),
        pytest.param("DELETE", "/v1/shelves/stats", "GET HEAD", id="delete-stats"),
    ],
)
def test_method_not_allowed(table: RouteTable, http_method: str, path: str, allowed: str) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        table.match(http_method, path)
    assert caught.value.allowed == tuple(allowed.split()) == table.allowed(path)
    assert caught.value.http_status == 405
    assert repr(path) in caught.value.message and ", ".join(allowed.split()) in caught.value.message


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/nope", id="unknown"),
        pytest.param("/v1/users/", id="trailing-slash"),
        pytest.param("//v1/users", id="empty-segment"),
        pytest.param("/v1/users/u-1/../admin", id="raw-dot-dot"),
        pytest.param("/v1/users/.", id="raw-dot"),
        pytest.param("/v1/shelves/s1/books", id="too-short"),
        pytest.param("/v1/shelves/s1/books/b1/x", id="too-long"),
        pytest.param("/V1/users", id="literals-case-sensitive"),
        pytest.param("v1/users", id="relative"),
        pytest.param("/", id="root"),
    ],
)
def test_not_found(table: RouteTable, path: str) -> None:
    with pytest.raises(NotFound) as caught:
        table.match("GET", path)
    assert caught.value.message == f"no route for path {path!r}"
    assert table.allowed(path) == ()


def test_not_found_message_is_bounded(table: RouteTable) -> None:
    with pytest.raises(NotFound) as caught:
        table.match("GET", "/x" * 1000)
    assert len(caught.value.message) < 260


def test_bad_encoding_in_a_value_is_invalid_argument(table: RouteTable) -> None:
    with pytest.raises(InvalidArgument, match="not percent-encoded UTF-8"):
        table.match("GET", "/v1/kitchen/%FF")


def _sample_path(template: Template) -> tuple[str, dict[str, str]]:
    """Expand a template with "x<i>" for each "*"; "**" takes two segments."""
    counter = iter(range(100))
    parts: list[str] = []
    expected: dict[str, str] = {}
    for segment in template.segments:
        inner = segment.segments if isinstance(segment, Variable) else (segment,)
        texts: list[str] = []
        for part in inner:
            if isinstance(part, Literal):
                texts.append(part.text)
            else:
                count = 2 if isinstance(part, DeepWildcard) else 1
                texts.extend(f"x{next(counter)}" for _ in range(count))
        parts.extend(texts)
        if isinstance(segment, Variable):
            expected[segment.field_path] = "/".join(texts)
    verb = f":{template.verb}" if template.verb else ""
    return "/" + "/".join(parts) + verb, expected


def test_every_binding_resolves_to_its_own_route(table: RouteTable) -> None:
    assert len(table.routes) == 31
    for route in table.routes:
        path, expected = _sample_path(route.template)
        assert table.match(route.http_method, path) == (route, expected), str(route)
        assert route.http_method in table.allowed(path)


@pytest.mark.parametrize(
    ("binding", "body", "response_body", "idempotent", "server_streaming"),
    [
        pytest.param("POST /v1/kitchen", "*", None, False, False, id="body-star"),
        pytest.param("PATCH /v1/kitchen/{string_value}", "nested", None, False, False, id="field"),
        pytest.param("GET /v1/kitchen/{string_value}", None, None, True, False, id="get-is-safe"),
        pytest.param(
            "GET /v1/{name=shelves/*/books/*}/author", None, "author", True, False,
            id="response-body",
        ),
        pytest.param("DELETE /v1/{name=shelves/*/books/*}", None, None, True, False, id="level"),
        pytest.param(
            "POST /v1/users/{user_id}/notifications:markRead", "*", None, True, False,
            id="idempotent-post",
        ),
        pytest.param("POST /v1/orders/{id}:cancel", "*", None, False, False, id="not-idempotent"),
        pytest.param(
            "GET /v1/{parent=shelves/*}/books:stream", None, None, True, True, id="server-stream"
        ),
    ],
)
def test_route_values(
    table: RouteTable,
    binding: str,
    body: str | None,
    response_body: str | None,
    idempotent: bool,
    server_streaming: bool,
) -> None:
    (route,) = [r for r in table.routes if f"{r.http_method} {r.template}" == binding]
    assert (route.body, route.response_body, route.idempotent) == (body, response_body, idempotent)
    assert (route.client_streaming, route.server_streaming) == (False, server_streaming)


def test_route_descriptors_and_fields(table: RouteTable) -> None:
    route, _ = table.match("PATCH", "/v1/shelves/s/books/b")
    assert route.path_fields == ("book.name",)
    assert (route.service, route.input.full_name, route.output.full_name) == (
        "testing.v1.Echo", "testing.v1.UpdateBookRequest", "testing.v1.Book",
    )


def test_services_selects_routes(schema: Schema) -> None:
    table = compile_routes(schema, services={"users.v1.Users"})
    assert sorted(_short(r) for r in table.routes) == [
        "Users/CreateUser", "Users/DeleteUser", "Users/GetUser", "Users/ListUsers",
        "Users/UpdateUser",
    ]
    assert {r.service for r in table.routes} == {"users.v1.Users"}
    with pytest.raises(NotFound):
        table.match("GET", "/v1/orders/o-1")
    assert _short(table.match("GET", "/v1/users/u-1")[0]) == "Users/GetUser"


def test_unknown_service_is_config_error(schema: Schema) -> None:
    with pytest.raises(ConfigError, match=r"not in the descriptor set: nope\.v1\.Nope"):
        compile_routes(schema, services={"users.v1.Users", "nope.v1.Nope"})


def test_rules_are_found_whatever_was_imported_first() -> None:
    """The rule is an extension: options parsed before google.api.annotations_pb2 was imported
    keep it as unknown fields. compile_routes must find it anyway."""
    probe = (
        "import sys\n"
        "from gateway.transcode.schema import load_schema\n"
        "schema = load_schema(open('generated/descriptors.binpb', 'rb').read())\n"
        "assert 'google.api.annotations_pb2' not in sys.modules\n"
        "from gateway.transcode.routes import compile_routes\n"
        "print(len(compile_routes(schema).routes))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "31"), result.stderr


# --- rules built by hand: invalid rules and conflicts ---------------------------------------

R = http_pb2.HttpRule
C = http_pb2.CustomHttpPattern
F = descriptor_pb2.FieldDescriptorProto


def _schema(*rules: tuple[str, http_pb2.HttpRule]) -> Schema:
    """One file, package bad.v1: service Svc with one method per rule, Req -> Reply."""
    file = descriptor_pb2.FileDescriptorProto(
        name="bad/v1/bad.proto", package="bad.v1", syntax="proto3"
    )
    file.enum_type.add(name="Color").value.add(name="COLOR_UNSPECIFIED", number=0)
    messages = {
        "Inner": [("label", F.TYPE_STRING, ""), ("deeper", F.TYPE_MESSAGE, ".bad.v1.Inner")],
        "Req": [
            ("name", F.TYPE_STRING, ""),
            ("count", F.TYPE_INT64, ""),
            ("tags", F.TYPE_STRING, "repeated"),
            ("inner", F.TYPE_MESSAGE, ".bad.v1.Inner"),
            ("color", F.TYPE_ENUM, ".bad.v1.Color"),
        ],
        "Reply": [("items", F.TYPE_STRING, "repeated")],
    }
    for name, fields in messages.items():
        message = file.message_type.add(name=name)
        for number, (field, kind, extra) in enumerate(fields, start=1):
            added = message.field.add(name=field, number=number, type=kind, label=F.LABEL_OPTIONAL)
            if extra == "repeated":
                added.label = F.LABEL_REPEATED
            elif extra:
                added.type_name = extra
    service = file.service.add(name="Svc")
    for name, rule in rules:
        method = service.method.add(name=name, input_type=".bad.v1.Req")
        method.output_type = ".bad.v1.Reply"
        method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return load_schema(descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString())


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        pytest.param(R(get="/v1/{nope}"), "{nope}: bad.v1.Req has no field 'nope'", id="field"),
        pytest.param(R(get="/v1/{inner.nope}"), "bad.v1.Inner has no field 'nope'", id="nested"),
        pytest.param(R(get="/v1/{tags}"), "'tags' is repeated", id="repeated-path-field"),
        pytest.param(R(get="/v1/{inner}"), "'inner' is a message", id="message-path-field"),
        pytest.param(R(get="/v1/{inner.deeper}"), "'inner.deeper' is a message", id="nested-msg"),
        pytest.param(R(get="/v1/{name.x}"), "'name' is not a message", id="through-a-scalar"),
        pytest.param(R(get="/v1/{name}/{name}"), "'name' is bound twice", id="bound-twice"),
        pytest.param(R(post="/x", body="nope"), "body 'nope' is not a field of bad.v1", id="body"),
        pytest.param(R(post="/x", body="tags"), "body 'tags' is repeated", id="repeated-body"),
        pytest.param(R(post="/x", body="inner.label"), "'inner.label' is not a field", id="deep"),
        pytest.param(R(post="/{name}", body="name"), "'name' is also bound by the path", id="both"),
        pytest.param(R(get="/x", body="*"), "a GET binding must not have a body", id="get-body"),
        pytest.param(
            R(custom=C(kind="HEAD", path="/x"), body="*"), "a HEAD binding must not have a body",
            id="head-body",
        ),
        pytest.param(
            R(get="/x", response_body="nope"),
            "response_body 'nope' is not a field of bad.v1.Reply",
            id="response-body",
        ),
        pytest.param(R(body="*"), "sets no pattern", id="no-pattern"),
        pytest.param(R(custom=C(kind="A B", path="/x")), "'A B' is not an HTTP method", id="kind"),
        pytest.param(R(custom=C(kind="", path="/x")), "'' is not an HTTP method", id="empty-kind"),
        pytest.param(R(get="/v1//x"), "(GET /v1//x): path template '/v1//x': empty", id="tpl"),
        pytest.param(R(get=""), "path template '': must start with '/'", id="empty-template"),
        pytest.param(
            R(get="/x", additional_bindings=[R(get="/y", additional_bindings=[R(get="/z")])]),
            "additional_bindings must not nest additional_bindings",
            id="nested-additional-bindings",
        ),
        pytest.param(
            R(get="/x", additional_bindings=[R(post="/y", body="nope")]), "(POST /y): body 'nope'",
            id="bad-additional-binding",
        ),
    ],
)
def test_invalid_rules_are_config_errors(rule: http_pb2.HttpRule, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_routes(_schema(("Broken", rule)))
    assert "/bad.v1.Svc/Broken" in str(caught.value)
    assert problem in str(caught.value)


def test_edge_rules_that_are_valid_load() -> None:
    table = compile_routes(_schema(
        ("M0", R(delete="/v1/{name}", body="*")),  # http.proto does not forbid it; Envoy allows it
        ("M1", R(get="/v1/a/{inner.label}/{color}/{count}", response_body="items")),  # repeated
        ("M2", R(custom=C(kind="SEARCH", path="/v1/s"), body="inner")),
        ("M3", R(patch="/v1/{inner.deeper.label=x/**}:set", body="inner")),
    ))
    assert [str(r) for r in table.routes] == [
        "DELETE /v1/{name} -> /bad.v1.Svc/M0",
        "GET /v1/a/{inner.label}/{color}/{count} -> /bad.v1.Svc/M1",
        "SEARCH /v1/s -> /bad.v1.Svc/M2",
        "PATCH /v1/{inner.deeper.label=x/**}:set -> /bad.v1.Svc/M3",
    ]
    assert table.match("GET", "/v1/a/l/COLOR_UNSPECIFIED/7")[1] == {
        "inner.label": "l", "color": "COLOR_UNSPECIFIED", "count": "7",
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(R(get="/v1/{name=shelves/*}"), R(get="/v1/shelves/{count}"), id="variables"),
        pytest.param(R(get="/v1/{name}"), R(get="/v1/*"), id="bare-wildcard"),
        pytest.param(R(get="/v1/{name=**}"), R(get="/v1/**"), id="deep"),
        pytest.param(R(post="/v1/{name}:go", body="*"), R(post="/v1/{count}:go"), id="same-verb"),
        pytest.param(R(custom=C(kind="S", path="/x")), R(custom=C(kind="S", path="/x")), id="kind"),
    ],
)
def test_conflicts_name_both_methods(first: http_pb2.HttpRule, second: http_pb2.HttpRule) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_routes(_schema(("First", first), ("Second", second)))
    message = str(caught.value)
    assert "/bad.v1.Svc/First" in message and "/bad.v1.Svc/Second" in message
    assert "same HTTP method and path shape" in message


def test_conflict_between_bindings_of_one_method() -> None:
    rule = R(get="/v1/{name}", additional_bindings=[R(get="/v1/{count}")])
    with pytest.raises(ConfigError, match=r"Svc/Twice and GET /v1/\{count\} -> /bad\.v1\.Svc/"):
        compile_routes(_schema(("Twice", rule)))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(R(get="/v1/{name}"), R(post="/v1/{count}"), id="other-method"),
        pytest.param(R(get="/v1/{name}"), R(get="/v1/{count}:go"), id="other-verb"),
        pytest.param(R(get="/v1/{name}"), R(get="/v1/{count=**}"), id="star-vs-deep"),
        pytest.param(R(get="/v1/{name}"), R(get="/v1/x"), id="literal-vs-star"),
    ],
)
def test_overlapping_distinct_bindings_load(
    first: http_pb2.HttpRule, second: http_pb2.HttpRule
) -> None:
    assert len(compile_routes(_schema(("First", first), ("Second", second))).routes) == 2


# --- precedence: the trie against a brute-force reference -----------------------------------

METHODS = ("GET", "POST")
SEGMENT = st.sampled_from(["a", "a", "b", "*", "*", "**", "{v=a/*}", "{w=*}"])
RAW = st.sampled_from(["a", "a", "b", "c", "a:x", "b:z", "c:y:z", "a:y:z", ":x", "%61"])


@st.composite
def route_sets(draw: st.DrawFn) -> list[Route]:
    routes: list[Route] = []
    shapes: set[tuple[str, tuple[str, ...], str | None]] = set()
    for _ in range(draw(st.integers(1, 8))):
        segments = draw(st.lists(SEGMENT, min_size=1, max_size=4))
        deep = [i for i, s in enumerate(segments) if "**" in s]
        segments = segments[: deep[0] + 1] if deep else segments
        segments = [s.replace("=", f"{i}=") for i, s in enumerate(segments)]
        verb = draw(st.sampled_from([None, None, "x", "z", "y:z"]))
        template = parse_template("/" + "/".join(segments) + (f":{verb}" if verb else ""))
        http_method = draw(st.sampled_from(METHODS))
        shape = (http_method, tuple(map(str, compile_template(template).parts)), verb)
        if shape not in shapes:  # same shape is a conflict, tested above
            shapes.add(shape)
            routes.append(_route(http_method, template, f"/t.S/M{len(routes)}"))
    return routes


@st.composite
def paths(draw: st.DrawFn, routes: list[Route]) -> str:
    """Mostly a path made for one of the routes (so that several compete), else any path."""
    if draw(st.integers(0, 3)) == 0:
        return "/" + "/".join(draw(st.lists(RAW, max_size=4)))
    template = draw(st.sampled_from(routes)).template
    raw: list[str] = []
    for part in compile_template(template).parts:
        if isinstance(part, Literal):
            raw.append(part.text)
        elif isinstance(part, DeepWildcard):
            raw.extend(draw(st.lists(RAW, max_size=2)))
        else:
            raw.append(draw(RAW))
    return "/" + "/".join(raw) + (f":{template.verb}" if template.verb else "")


def _route(http_method: str, template: Template, method: str) -> Route:
    empty = empty_pb2.Empty.DESCRIPTOR
    return Route(
        http_method=http_method, template=template, method=method, service="t.S", input=empty,
        output=empty, body=None, response_body=None, client_streaming=False,
        server_streaming=False, idempotent=False,
        path_fields=tuple(v.field_path for v in template.variables),
    )


def _reference(routes: list[Route], http_method: str, path: str) -> Route | None:
    """The documented precedence by brute force: a matching verb (longest first) beats no verb;
    then segment by segment from the left, literal < "*" < "**"."""
    mine = [r for r in routes if r.http_method == http_method]
    verbs = sorted({r.template.verb for r in mine if r.template.verb}, key=lambda v: (-len(v), v))
    rank = {Literal: 0, DeepWildcard: 2}

    def key(route: Route) -> tuple[int, list[int]]:
        verb = route.template.verb
        ranks = [rank.get(type(p), 1) for p in compile_template(route.template).parts]
        return (verbs.index(verb) if verb else len(verbs), ranks)

    found = [r for r in mine if compile_template(r.template).match(path) is not None]
    return min(found, key=key) if found else None


@settings(max_examples=400)
@given(st.data(), route_sets(), st.sampled_from((*METHODS, "HEAD")))
def test_trie_agrees_with_reference(data: st.DataObject, routes: list[Route], method: str) -> None:
    table = compile_route_table(routes)
    path = data.draw(paths(routes))
    expected = _reference(routes, "GET" if method == "HEAD" else method, path)
    allowed = {m for m in METHODS if _reference(routes, m, path)}
    allowed |= {"HEAD"} if "GET" in allowed else set()
    assert table.allowed(path) == tuple(sorted(allowed))
    if expected is not None:
        route, bindings = table.match(method, path)
        assert route is expected
        assert bindings == compile_template(route.template).match(path)
    else:
        with pytest.raises(MethodNotAllowed if allowed else NotFound):
            table.match(method, path)
