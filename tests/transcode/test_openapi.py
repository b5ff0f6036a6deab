"""OpenAPI 3.1 document: concrete operations and schemas of the demo protos, and a structural
validator (refs resolve, path parameters match, operationIds are unique) run over all of it,
besides openapi-spec-validator."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, json_format
from openapi_spec_validator import validate as validate_spec

from gateway.errors import ConfigError
from gateway.transcode.jsonrender import RenderOptions, compile_renderer
from gateway.transcode.openapi import OpenApiOptions, build_openapi
from gateway.transcode.request import compile_request_decoder
from gateway.transcode.routes import compile_routes
from gateway.transcode.schema import Schema, load_schema
from gateway.transcode.values import NO_CONTROL_PATTERN as NO_CONTROL

Json = dict[str, Any]
REF = "#/components/schemas/"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}
DELETE_204 = OpenApiOptions(success_status={"/users.v1.Users/DeleteUser": 204})
# the gateway's own error statuses on a public operation (401/403 only where a caller is needed)
INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}  # proto3 JSON: a string
UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
ERRORS = ["400", "404", "409", "413", "415", "429", "500", "501", "503", "504"]
# A path segment's pattern: anything but "/" and the control characters values.py refuses.
SEGMENT = r"[^/\x00-\x1f\x7f-\x9f]+"
SEGMENTS = r"[^\x00-\x1f\x7f-\x9f]*"  # "**": any number of segments
DOT_NOTE = "A value that is `.` or `..` (or has one between `/`) is refused."


# -- a small structural validator --------------------------------------------------------------


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _check_schema(schema: Json, where: str) -> None:
    assert isinstance(schema, dict), where
    if "$ref" in schema:  # tools that read OpenAPI 3.0 ignore siblings of $ref: kept bare
        assert set(schema) == {"$ref"}, f"{where}: $ref with siblings {sorted(schema)}"
        return
    assert "nullable" not in schema, f"{where}: OpenAPI 3.1 has a null type instead"
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert kinds and set(kinds) <= TYPES, where
    else:
        assert "format" not in schema, where
    if schema.get("type") == "array":
        _check_schema(schema["items"], f"{where}[]")
    for name, value in schema.get("properties", {}).items():
        _check_schema(value, f"{where}.{name}")
    for name in schema.get("required", []):
        assert name in schema.get("properties", {}), f"{where}: required {name} is no property"
    if isinstance(schema.get("additionalProperties"), dict):
        _check_schema(schema["additionalProperties"], f"{where}{{}}")
    for combinator in ("allOf", "anyOf"):
        for index, part in enumerate(schema.get(combinator, [])):
            _check_schema(part, f"{where}.{combinator}[{index}]")
    if "enum" in schema:
        assert schema["enum"], where
    if "pattern" in schema:
        re.compile(schema["pattern"])


def validate(doc: Json) -> None:
    """Structural checks of an OpenAPI 3.1 document, then openapi-spec-validator's."""
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith(REF) and ref.removeprefix(REF) in schemas, f"dangling $ref {ref}"
    for name, schema in schemas.items():
        assert re.fullmatch(r"[A-Za-z0-9.\-_]+", name), name
        _check_schema(schema, name)
    operation_ids: list[str] = [c["operationId"] for c in doc.get("x-custom-methods", [])]
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        in_path = re.findall(r"\{([^{}]+)\}", path)
        assert len(in_path) == len(set(in_path)), f"{path}: a parameter twice"
        assert item, path
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert method in METHODS, where
            operation_ids.append(operation["operationId"])
            params = operation.get("parameters", [])
            assert len({(p["name"], p["in"]) for p in params}) == len(params), where
            declared = [p["name"] for p in params if p["in"] == "path"]
            assert sorted(declared) == sorted(in_path), f"{where}: {declared} vs {in_path}"
            for param in params:
                assert param["in"] in {"path", "query"}, where
                assert param["in"] != "path" or param.get("required") is True, where
                _check_schema(param["schema"], f"{where} {param['name']}")
            responses = operation["responses"]
            assert "default" in responses, where
            assert [s for s in responses if s != "default" and 200 <= int(s) < 300], where
            body = operation.get("requestBody", {"content": {"*/*": {"schema": {}}}})
            for response in (*responses.values(), body):
                assert "description" in response or response is body, where
                for media, content in response.get("content", {}).items():
                    _check_schema(content["schema"], f"{where} {media}")
    assert len(operation_ids) == len(set(operation_ids)), "operationIds are not unique"
    validate_spec(doc)


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc(schema: Schema) -> Json:
    return build_openapi(schema, compile_routes(schema), DELETE_204)


def op(doc: Json, method: str, path: str) -> Json:
    operation: Json = doc["paths"][path][method]
    return operation


def params(operation: Json, where: str = "query") -> dict[str, Json]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


def json_schema(response_or_body: Json, media: str = "application/json") -> Json:
    schema: Json = response_or_body["content"][media]["schema"]
    return schema


def component(doc: Json, name: str) -> Json:
    schema: Json = doc["components"]["schemas"][name]
    return schema


def prop(doc: Json, message: str, key: str) -> Json:
    """A property's schema as the proto3 JSON mapping has it, without the JSON null that a
    field which may hold its default also takes (test_null_where_the_parser_takes_it)."""
    return non_null(component(doc, message)["properties"][key])


def non_null(schema: Json) -> Json:
    if "anyOf" in schema and schema["anyOf"][-1] == {"type": "null"}:
        inner = dict(schema["anyOf"][0])
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if "$ref" in inner:
            return {"allOf": [inner], **rest} if rest else inner
        return {**inner, **rest}
    kinds = schema.get("type")
    if isinstance(kinds, list) and "null" in kinds and len(kinds) == 2:
        schema = {**schema, "type": next(k for k in kinds if k != "null")}
        if "enum" in schema:
            schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema


def unwrap(schema: Json) -> Json:
    """A described $ref is {"allOf": [{"$ref": ...}], "description": ...}."""
    found: Json = schema["allOf"][0] if "allOf" in schema else schema
    return found


def ref(name: str) -> Json:
    return {"$ref": REF + name}


# -- the whole document ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(OpenApiOptions(), id="defaults"),
        pytest.param(DELETE_204, id="delete-204"),
        pytest.param(OpenApiOptions(title="Demo", version="2", use_proto_names=True,
                                    emit_unpopulated=True,
                                    success_status={"/users.v1.Users/CreateUser": 201}),
                     id="proto-names-emit-201"),
    ],
)
def test_document_is_structurally_valid(schema: Schema, options: OpenApiOptions) -> None:
    table = compile_routes(schema)
    doc = build_openapi(schema, table, options)
    validate(doc)
    assert doc["info"] == {"title": options.title, "version": options.version}
    # nothing clobbered: every route is an operation, or a listed custom method
    operations = sum(len(item) for item in doc["paths"].values())
    assert operations + len(doc["x-custom-methods"]) == len(table.routes)


def _break_ref(doc: Json) -> None:
    op(doc, "get", "/v1/users/{id}")["responses"]["200"]["content"]["application/json"][
        "schema"
    ] = ref("users.v1.Nobody")


def _drop_path_param(doc: Json) -> None:
    op(doc, "get", "/v1/users/{id}")["parameters"] = []


def _extra_path_param(doc: Json) -> None:
    op(doc, "get", "/v1/users")["parameters"].append(
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    )


def _duplicate_id(doc: Json) -> None:
    op(doc, "get", "/v1/users")["operationId"] = "Users_GetUser"


def _ref_with_sibling(doc: Json) -> None:
    component(doc, "users.v1.User")["properties"]["address"] = {
        **ref("users.v1.Address"), "description": "lost in OpenAPI 3.0"
    }


@pytest.mark.parametrize(
    "damage", [_break_ref, _drop_path_param, _extra_path_param, _duplicate_id, _ref_with_sibling]
)
def test_validator_rejects_broken_documents(doc: Json, damage: Any) -> None:
    broken = copy.deepcopy(doc)
    damage(broken)
    with pytest.raises(AssertionError):
        validate(broken)


def test_output_is_deterministic_and_json_serializable(schema: Schema) -> None:
    first = json.dumps(build_openapi(schema, compile_routes(schema), DELETE_204))
    reloaded = load_schema(schema_bytes(schema))
    second = json.dumps(build_openapi(reloaded, compile_routes(reloaded), DELETE_204))
    assert first == second
    names = list(json.loads(first)["components"]["schemas"])
    assert names == sorted(names)


def schema_bytes(schema: Schema) -> bytes:
    return descriptor_pb2.FileDescriptorSet(file=schema.files).SerializeToString()


SAMPLES = {"date-time": "2024-01-02T03:04:05Z", "byte": "AA==", "float": "1.5", "double": "1.5",
           "boolean": "true", "integer": "7", "int64": "7", "uint64": "7"}


def _sample(schema: Json) -> str:
    """A text value that the schema of a path or query parameter admits."""
    if schema.get("type") == "array":
        return _sample(schema["items"])
    if "enum" in schema:
        return str(schema["enum"][-1])
    if "pattern" in schema and schema["pattern"].endswith("s$"):
        return "1.5s"  # a Duration
    return SAMPLES.get(schema.get("format", ""), SAMPLES.get(schema["type"], "x"))


def _concrete(path: str, operation: Json) -> str:
    for param in params(operation, "path").values():
        pattern = param["schema"].get("pattern", "^x$")[1:-1]
        for segments in (SEGMENT, SEGMENTS, ".*"):
            pattern = pattern.replace(segments, "x")
        value = re.sub(r"\\(.)", r"\1", pattern)
        path = path.replace("{" + param["name"] + "}", value)
    return path


@pytest.mark.parametrize("use_proto_names", [False, True])
def test_documented_paths_and_query_parameters_reach_the_decoder(
    schema: Schema, use_proto_names: bool
) -> None:
    """Each operation's path, filled in, routes to its RPC, and the decoder takes each of its
    query parameters (one at a time: oneof members exclude each other)."""
    table = compile_routes(schema)
    doc = build_openapi(schema, table, OpenApiOptions(use_proto_names=use_proto_names))
    checked = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            route, bindings = table.match(method.upper(), _concrete(path, operation))
            rpc = route.method.rpartition("/")[2]
            assert operation["operationId"].partition("_")[2].startswith(rpc), path
            decoder = compile_request_decoder(schema, route)
            decoder.decode(bindings, [], b"", "")
            for name, param in params(operation).items():
                decoder.decode(bindings, [(name, _sample(param["schema"]))], b"", "")
                checked += 1
    assert checked > 100


def test_tags_are_services_with_their_comments(doc: Json) -> None:
    tags = {tag["name"]: tag.get("description") for tag in doc["tags"]}
    assert tags["users.v1.Users"] == "Users owns user accounts: profile, role and lifecycle state."
    assert set(tags) == {"users.v1.Users", "orders.v1.Orders", "notifications.v1.Notifications",
                         "testing.v1.Echo", "dashboard.v1.Dashboard"}


# -- users.v1 ----------------------------------------------------------------------------------


def test_get_user(doc: Json) -> None:
    get = op(doc, "get", "/v1/users/{id}")
    assert get["operationId"] == "Users_GetUser"
    assert get["tags"] == ["users.v1.Users"]
    assert get["summary"] == (
        "GetUser returns one user by id; NOT_FOUND names the id when it does not exist."
    )
    assert params(get, "path") == {"id": {
        "name": "id", "in": "path", "required": True,
        "description": f"The user's id.\n\n{DOT_NOTE}",
        # its buf.validate rule, and no control character (values.py refuses them)
        "schema": {"type": "string", "maxLength": 64, "pattern": NO_CONTROL},
    }}
    assert params(get) == {}
    assert "requestBody" not in get
    assert json_schema(get["responses"]["200"]) == ref("users.v1.User")
    assert json_schema(get["responses"]["default"]) == ref("google.rpc.Status")


@pytest.mark.parametrize(
    ("use_proto_names", "names"),
    [(False, ["pageSize", "pageToken", "filter"]), (True, ["page_size", "page_token", "filter"])],
)
def test_list_users_query_parameters(schema: Schema, use_proto_names: bool,
                                     names: list[str]) -> None:
    doc = build_openapi(schema, compile_routes(schema),
                        OpenApiOptions(use_proto_names=use_proto_names))
    query = params(op(doc, "get", "/v1/users"))
    assert list(query) == names
    assert query[names[0]]["schema"] == {"type": "integer", "format": "int32",
                                         "minimum": 0, "maximum": 100}  # buf.validate
    assert query[names[1]]["description"] == (
        "The next_page_token of a previous reply, or empty for the first page."
    )
    assert all("required" not in p for p in query.values())
    response = component(doc, "users.v1.ListUsersResponse")
    assert ("next_page_token" if use_proto_names else "nextPageToken") in response["properties"]


def test_create_user_body_is_the_user_field(doc: Json) -> None:
    create = op(doc, "post", "/v1/users")
    assert "parameters" not in create  # the only other field is the body
    assert json_schema(create["requestBody"]) == ref("users.v1.User")
    assert create["requestBody"]["description"] == (
        "The user to create; id, state and times are set by the service."
    )
    assert list(create["responses"]) == ["200", *ERRORS, "default"]


def test_update_user_patch_binds_user_id(doc: Json) -> None:
    # one path item per URL shape, so the item lists every method the URL allows; a nested
    # field's variable takes the item's name (or, alone, a name without dots: RFC 6570)
    update = op(doc, "patch", "/v1/users/{id}")
    user_id = params(update, "path")["id"]
    assert user_id["schema"] == {"type": "string", "pattern": NO_CONTROL}
    assert "Sets field `user.id`." in user_id["description"]
    assert set(doc["paths"]["/v1/users/{id}"]) == {"get", "patch", "delete"}
    # the update_mask is filled from the body's keys: not offered in the query (a mask naming
    # a field the body leaves out is a rule across query and body that no schema states)
    assert "updateMask" not in params(update)
    body = json_schema(update["requestBody"])
    # the decoder rejects user.id in the body as well as the path: the body schema leaves it out
    assert "id" not in body["properties"]
    assert body["properties"]["email"]["type"] == "string"
    assert "`id`" in update["requestBody"]["description"]


def test_delete_user_with_204_has_no_content(doc: Json, schema: Schema) -> None:
    delete = op(doc, "delete", "/v1/users/{id}")
    assert delete["responses"]["204"] == {"description": "Success: no content."}
    assert "200" not in delete["responses"]
    assert params(delete)["force"]["schema"] == {"type": "boolean"}
    default = build_openapi(schema, compile_routes(schema), OpenApiOptions())
    responses = op(default, "delete", "/v1/users/{id}")["responses"]
    assert json_schema(responses["200"]) == {"type": "object", "description": (
        "An empty JSON object."
    )}


def test_configured_201(schema: Schema) -> None:
    options = OpenApiOptions(success_status={"/users.v1.Users/CreateUser": 201})
    doc = build_openapi(schema, compile_routes(schema), options)
    responses = op(doc, "post", "/v1/users")["responses"]
    assert list(responses) == ["201", *ERRORS, "default"]
    assert json_schema(responses["201"]) == ref("users.v1.User")


def test_user_schema(doc: Json) -> None:
    user = component(doc, "users.v1.User")
    assert user["type"] == "object"
    assert user["description"] == "User is one account."
    assert list(user["properties"]) == [
        "id", "email", "displayName", "state", "roles", "tags", "address", "labels",
        "createTime", "updateTime",
    ]
    assert user["required"] == ["email"]  # google.api.field_behavior REQUIRED
    create_time = prop(doc, "users.v1.User", "createTime")
    assert (create_time["type"], create_time["format"]) == ("string", "date-time")
    assert create_time["description"].startswith("When the user was created.")
    roles = prop(doc, "users.v1.User", "roles")
    assert roles["type"] == "array" and unwrap(roles["items"]) == ref("users.v1.Role")
    assert roles["items"]["enum"] == ["ROLE_MEMBER", "ROLE_ADMIN"]  # not_in: [0]
    assert component(doc, "users.v1.Role")["enum"] == ["ROLE_UNSPECIFIED", "ROLE_MEMBER",
                                                       "ROLE_ADMIN"]
    assert prop(doc, "users.v1.User", "labels") == {  # with its buf.validate map rules
        "type": "object", "additionalProperties": {"type": "string", "maxLength": 256},
        "maxProperties": 20, "propertyNames": {"minLength": 1, "maxLength": 63},
        "description": "Arbitrary key/value labels.",
    }
    address = prop(doc, "users.v1.User", "address")
    assert unwrap(address) == ref("users.v1.Address")
    assert address["description"] == "Postal address, if known."
    assert prop(doc, "users.v1.User", "email") == {
        "type": "string", "format": "email", "maxLength": 254,
        "minLength": 1,  # REQUIRED: the empty string is missing
        "description": "Unique sign-in email.",
    }


def test_enum_component_lists_value_comments(doc: Json) -> None:
    state = component(doc, "users.v1.UserState")
    assert state["type"] == "string"
    assert state["enum"] == ["USER_STATE_UNSPECIFIED", "USER_STATE_ACTIVE", "USER_STATE_SUSPENDED"]
    assert state["description"].splitlines() == [
        "UserState is where an account is in its lifecycle.",
        "",
        "- `USER_STATE_UNSPECIFIED`: Never set by the service.",
        "- `USER_STATE_ACTIVE`: May sign in.",
        "- `USER_STATE_SUSPENDED`: Blocked by an administrator; may be deleted.",
    ]


def test_multi_line_comment_joins_into_the_summary(doc: Json) -> None:
    delete = op(doc, "delete", "/v1/users/{id}")
    assert delete["summary"] == (
        "DeleteUser removes a user; FAILED_PRECONDITION while the user is still active unless "
        "force is set."
    )


# -- orders.v1 ---------------------------------------------------------------------------------


def test_int64_is_a_string(doc: Json) -> None:
    amount = prop(doc, "orders.v1.Money", "amountMinor")
    assert (amount["type"], amount["format"]) == ("string", "int64")
    assert amount["description"] == "Amount in minor units: 1999 is 19.99 EUR."


def test_custom_verb_stays_in_the_path(doc: Json) -> None:
    cancel = op(doc, "post", "/v1/orders/{id}:cancel")
    assert cancel["operationId"] == "Orders_CancelOrder"
    assert "parameters" in cancel and list(params(cancel)) == []  # body "*": no query
    body = json_schema(cancel["requestBody"])
    assert list(body["properties"]) == ["reason"]  # id is bound by the path


def test_watch_orders_streams_ndjson_and_sse(doc: Json) -> None:
    watch = op(doc, "get", "/v1/users/{user_id}/orders:watch")
    content = watch["responses"]["200"]["content"]
    assert set(content) == {"application/x-ndjson", "text/event-stream"}
    ndjson = content["application/x-ndjson"]["schema"]
    assert ndjson["properties"] == {
        "result": ref("orders.v1.WatchOrdersResponse"), "error": ref("google.rpc.Status"),
    }
    assert content["text/event-stream"]["schema"]["type"] == "string"
    kind = prop(doc, "orders.v1.WatchOrdersResponse", "kind")
    assert unwrap(kind) == ref("orders.v1.WatchOrdersResponse.Kind")


def test_status_and_any_components(doc: Json) -> None:
    status = component(doc, "google.rpc.Status")
    assert status["properties"]["code"]["type"] == "integer"
    assert status["properties"]["message"]["type"] == "string"
    assert status["properties"]["details"]["items"] == ref("google.protobuf.Any")
    any_type = component(doc, "google.protobuf.Any")
    assert any_type["properties"]["@type"]["type"] == "string"
    assert any_type["required"] == ["@type"]


# -- testing.v1: every proto3 JSON kind --------------------------------------------------------

KITCHEN = "testing.v1.EchoKitchenRequest"
NON_FINITE = 'NaN and infinities are the JSON strings "NaN", "Infinity", "-Infinity".'


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("int32Value", {"type": "integer", "format": "int32"}),
        ("int64Value", INT64),
        ("uint32Value", {"type": "integer", "format": "uint32", "minimum": 0}),
        ("uint64Value", UINT64),
        ("sint64Value", INT64),
        ("fixed32Value", {"type": "integer", "format": "uint32"}),
        ("fixed64Value", UINT64),
        ("sfixed32Value", {"type": "integer", "format": "int32"}),
        ("sfixed64Value", INT64),
        ("floatValue", {"type": "number", "format": "float"}),
        ("doubleValue", {"type": "number", "format": "double"}),
        ("boolValue", {"type": "boolean"}),
        ("bytesValue", {"type": "string", "format": "byte"}),
        ("timestamp", {"type": "string", "format": "date-time"}),
        ("duration", {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"}),
        ("fieldMask", {"type": "string"}),
        ("structValue", {"type": "object"}),
        ("listValue", {"type": "array", "items": {}}),
        ("wrappedString", {"type": "string"}),
        ("wrappedInt64", INT64),
        ("wrappedUint64", UINT64),
        ("wrappedInt32", {"type": "integer", "format": "int32"}),
        ("wrappedUint32", {"type": "integer", "format": "uint32"}),
        ("wrappedBool", {"type": "boolean"}),
        ("wrappedDouble", {"type": "number", "format": "double"}),
        ("wrappedFloat", {"type": "number", "format": "float"}),
        ("wrappedBytes", {"type": "string", "format": "byte"}),
        ("customJSON", {"type": "string"}),
        ("optionalInt32", {"type": "integer", "format": "int32"}),
        ("repeatedInt64", {"type": "array", "items": INT64}),
        ("repeatedColor", {"type": "array", "items": ref("testing.v1.Color")}),
        ("repeatedNested", {"type": "array", "items": ref("testing.v1.Nested")}),
        ("stringMap", {"type": "object", "additionalProperties": {"type": "string"}}),
        ("nestedMap", {"type": "object", "additionalProperties": ref("testing.v1.Nested")}),
        ("boolMap", {"type": "object",
                     "additionalProperties": INT64}),
    ],
)
def test_kitchen_field_follows_the_proto3_json_mapping(doc: Json, key: str,
                                                       expected: Json) -> None:
    schema = prop(doc, KITCHEN, key)
    assert {k: schema[k] for k in expected if k in schema} == expected


def test_kitchen_special_values(doc: Json) -> None:
    assert NON_FINITE in prop(doc, KITCHEN, "doubleValue")["description"]
    assert NON_FINITE in prop(doc, KITCHEN, "wrappedFloat")["description"]
    value = prop(doc, KITCHEN, "value")
    assert "type" not in value and set(value) == {"description"}  # any JSON value
    assert unwrap(prop(doc, KITCHEN, "any")) == ref("google.protobuf.Any")
    assert unwrap(prop(doc, KITCHEN, "color")) == ref("testing.v1.Color")
    assert "int32" in prop(doc, KITCHEN, "nestedMap")["description"]  # keys are strings
    timestamps = prop(doc, KITCHEN, "repeatedTimestamp")["items"]
    assert (timestamps["type"], timestamps["format"]) == ("string", "date-time")
    assert "stringValue" in component(doc, KITCHEN)["properties"]
    assert "custom_json" not in component(doc, KITCHEN)["properties"]


def test_oneof_members_are_documented_and_optional_is_not(doc: Json) -> None:
    for key in ("choiceText", "choiceNumber", "choiceNested"):
        assert "Member of oneof `choice`: set at most one of `choiceText`, `choiceNumber`, " \
            "`choiceNested`." in prop(doc, KITCHEN, key)["description"]
    assert prop(doc, KITCHEN, "optionalInt32")["description"] == "Explicit presence."


def test_recursive_message_refers_to_itself(doc: Json) -> None:
    child = prop(doc, "testing.v1.Nested", "child")
    assert unwrap(child) == ref("testing.v1.Nested")
    assert child["description"] == "Recursion, for depth limits."


def test_query_parameters_of_a_get_binding(doc: Json) -> None:
    get = op(doc, "get", "/v1/kitchen/{string_value}")
    assert get["operationId"] == "Echo_EchoKitchen2"
    query = params(get)
    assert "string_value" in params(get, "path") and "stringValue" not in query
    # nested singular messages by dotted name; the recursion stops at the cycle
    assert {"nested.label", "nested.count", "choiceNested.label"} <= set(query)
    assert not [name for name in query if name.startswith("nested.child")]
    # maps, repeated messages and Struct/Value/ListValue/Any have no query form
    for absent in ("stringMap", "nestedMap", "boolMap", "repeatedNested", "structValue",
                   "value", "listValue", "any"):
        assert absent not in query
    assert query["repeatedString"]["schema"] == {
        "type": "array", "items": {"type": "string", "pattern": NO_CONTROL}}
    assert (query["repeatedString"]["style"], query["repeatedString"]["explode"]) == ("form", True)
    assert query["color"]["schema"] == {
        "type": "string", "enum": ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN", "COLOR_BLUE"]
    }
    assert query["int64Value"]["schema"] == INT64
    assert query["timestamp"]["schema"]["format"] == "date-time"
    assert query["wrappedInt32"]["schema"] == {"type": "integer", "format": "int32"}
    assert query["repeatedTimestamp"]["schema"]["items"]["format"] == "date-time"
    assert query["customJSON"]["description"] == "A field with its own JSON name."


def test_nested_path_variable_with_a_pattern(doc: Json) -> None:
    deep = op(doc, "get", "/v1/kitchen/{nested_label}/deep")
    label = params(deep, "path")["nested_label"]
    assert label["schema"] == {"type": "string", "pattern": f"^labels/{SEGMENT}$"}
    assert "`labels/*`" in label["description"]
    query = params(deep)
    assert "nested.count" in query and "nested.label" not in query


def test_body_star_takes_everything(doc: Json) -> None:
    post = op(doc, "post", "/v1/kitchen")
    assert "parameters" not in post
    assert json_schema(post["requestBody"]) == ref(KITCHEN)


def test_body_field_is_not_a_query_parameter(doc: Json) -> None:
    patch = op(doc, "patch", "/v1/kitchen/{string_value}")
    assert json_schema(patch["requestBody"]) == ref("testing.v1.Nested")
    query = params(patch)
    assert "int32Value" in query
    assert not [name for name in query if name.startswith("nested")]


def test_search_is_listed_not_a_path(doc: Json) -> None:
    assert doc["x-custom-methods"] == [{
        "method": "SEARCH", "path": "/v1/kitchen:search", "rpc": "/testing.v1.Echo/EchoKitchen",
        "operationId": "Echo_EchoKitchen5",
    }]
    assert "/v1/kitchen:search" not in doc["paths"]
    assert all("search" not in item for item in doc["paths"].values())


def test_multi_segment_variable_becomes_one_parameter_with_a_pattern(doc: Json) -> None:
    get = op(doc, "get", "/v1/{name}")
    assert get["operationId"] == "Echo_GetBook"
    name = params(get, "path")["name"]
    assert name["schema"] == {"type": "string",
                              "pattern": f"^shelves/{SEGMENT}/books/{SEGMENT}$"}
    assert "`shelves/*/books/*`" in name["description"]
    deep = op(doc, "get", "/v1/books/{name}")
    assert deep["operationId"] == "Echo_GetBook2"
    assert params(deep, "path")["name"]["schema"]["pattern"] == f"^{SEGMENTS}$"
    assert op(doc, "delete", "/v1/{name}")["operationId"] == "Echo_DeleteBook"
    assert op(doc, "patch", "/v1/{name}")["operationId"] == "Echo_UpdateBook"


def test_same_path_and_method_are_kept_apart(doc: Json) -> None:
    # GetBook "/v1/{name=shelves/*/books/*}" and GetShelf "/v1/{name=shelves/*}" both render to
    # GET /v1/{name}: the second gets its first parameter renamed, as grpc-gateway does.
    shelf = op(doc, "get", "/v1/{name_1}")
    assert shelf["operationId"] == "Echo_GetShelf"
    renamed = params(shelf, "path")["name_1"]
    assert renamed["schema"]["pattern"] == f"^shelves/{SEGMENT}$"
    assert renamed["description"].startswith("Sets field `name`.")
    assert op(doc, "get", "/v1/{name}")["operationId"] == "Echo_GetBook"


def test_http_body_is_raw_bytes_both_ways(doc: Json) -> None:
    download = op(doc, "get", "/v1/{name}/cover")
    assert json_schema(download["responses"]["200"], "*/*") == {
        "type": "string", "format": "binary"
    }
    upload = op(doc, "put", "/v1/{name}/cover")
    assert json_schema(upload["requestBody"], "*/*") == {"type": "string", "format": "binary"}
    assert "google.api.HttpBody" not in doc["components"]["schemas"]


def test_response_body_field(doc: Json) -> None:
    author = op(doc, "get", "/v1/{name}/author")
    assert json_schema(author["responses"]["200"]) == {"type": "string"}
    assert "Author." in author["responses"]["200"]["description"]


def test_stream_of_books(doc: Json) -> None:
    stream = op(doc, "get", "/v1/{parent}/books:stream")
    ndjson = json_schema(stream["responses"]["200"], "application/x-ndjson")
    assert ndjson["properties"]["result"] == ref("testing.v1.Book")
    assert set(params(stream)) == {"count", "failCode"}


def test_grpc_only_methods_are_absent(doc: Json) -> None:
    ids = {o["operationId"] for item in doc["paths"].values() for o in item.values()}
    assert not {"Echo_CollectBooks", "Echo_ChatBooks"} & ids


KITCHEN_JSON: Json = {
    "stringValue": "s", "int32Value": -1, "int64Value": "-2", "uint32Value": 3,
    "uint64Value": "18446744073709551615", "sint32Value": -4, "sint64Value": "-5",
    "fixed32Value": 6, "fixed64Value": "7", "sfixed32Value": -8, "sfixed64Value": "-9",
    "floatValue": "NaN", "doubleValue": "-Infinity", "boolValue": True, "bytesValue": "AAE=",
    "color": "COLOR_RED", "nested": {"label": "l", "child": {"count": 2}},
    "repeatedString": ["a"], "repeatedInt64": ["1"], "repeatedColor": ["COLOR_BLUE"],
    "repeatedNested": [{"label": "r"}], "stringMap": {"k": "v"},
    "nestedMap": {"1": {"count": 1}}, "choiceNested": {"label": "c"},
    "timestamp": "2024-01-02T03:04:05.678Z", "duration": "-1.5s", "fieldMask": "a.b,c",
    "structValue": {"a": [1, "x", None]}, "value": {"k": True}, "listValue": [1, "y"],
    "any": {"@type": "type.googleapis.com/testing.v1.Nested", "label": "any"},
    "wrappedString": "w", "wrappedInt64": "10", "wrappedBool": False, "wrappedDouble": 1.5,
    "wrappedBytes": "AA==", "wrappedInt32": 11, "wrappedUint32": 12, "wrappedUint64": "13",
    "wrappedFloat": "Infinity", "customJSON": "c", "optionalInt32": 0,
    "repeatedTimestamp": ["2024-01-02T03:04:05Z"], "boolMap": {"true": "1"},
}


def conforms(value: object, schema: Json, doc: Json, where: str = "$") -> None:
    """`value` (rendered proto3 JSON) is an instance of `schema`, as far as these docs say."""
    if "$ref" in schema:
        return conforms(value, component(doc, schema["$ref"].removeprefix(REF)), doc, where)
    for part in schema.get("allOf", []):
        conforms(value, part, doc, where)
    for part in schema.get("anyOf", []):  # (x or null): the rendered value is x's
        if part != {"type": "null"}:
            conforms(value, part, doc, where)
    kind, fmt = schema.get("type"), schema.get("format")
    kinds = kind if isinstance(kind, list) else [kind]
    if value is None:
        assert "null" in kinds or "type" not in schema, where
        return
    if "enum" in schema:
        assert value in schema["enum"], where
    kind = next((k for k in kinds if k != "null"), None)
    if kind == "string" and fmt in ("int64", "uint64"):
        assert isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value), where
    elif kind == "string" and fmt == "date-time":
        assert isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", value), where
    elif kind == "string":
        assert isinstance(value, str) and re.search(schema.get("pattern", ""), value), where
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "number":
        assert isinstance(value, int | float) or value in ("NaN", "Infinity", "-Infinity"), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind == "array":
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            conforms(item, schema["items"], doc, f"{where}[{index}]")
    elif kind == "object":
        assert isinstance(value, dict), where
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", {} if "properties" not in schema else None)
        for key, item in value.items():
            assert key in properties or extra is not None, f"{where}.{key} is not in the schema"
            conforms(item, properties.get(key, extra or {}), doc, f"{where}.{key}")
        for key in schema.get("required", []):
            assert key in value, f"{where}.{key} is required"


@pytest.mark.parametrize("use_proto_names", [False, True])
def test_rendered_replies_conform_to_their_schemas(schema: Schema, use_proto_names: bool) -> None:
    """The gateway's own renderer and the document agree on every proto3 JSON kind."""
    options = RenderOptions(use_proto_names=use_proto_names)
    doc = build_openapi(schema, compile_routes(schema),
                        OpenApiOptions(use_proto_names=use_proto_names))
    descriptor = schema.pool.FindMessageTypeByName(KITCHEN)
    message = json_format.ParseDict(KITCHEN_JSON, schema.message_class(descriptor)(),
                                    descriptor_pool=schema.pool)
    rendered = compile_renderer(schema, descriptor, options).to_dict(message)
    assert len(rendered) == len(KITCHEN_JSON)
    conforms(rendered, ref(KITCHEN), doc)
    with pytest.raises(AssertionError):  # and the check can fail
        conforms({**rendered, "int64Value" if not use_proto_names else "int64_value": 5},
                 ref(KITCHEN), doc)


def test_emit_unpopulated_required_fields_are_what_the_renderer_prints(schema: Schema) -> None:
    doc = build_openapi(schema, compile_routes(schema), OpenApiOptions(emit_unpopulated=True))
    twins = [name for name in doc["components"]["schemas"] if name.endswith("-Reply")]
    assert "testing.v1.EchoKitchenRequest-Reply" in twins and len(twins) > 10
    for name in twins:
        descriptor = schema.pool.FindMessageTypeByName(name.removesuffix("-Reply"))
        renderer = compile_renderer(schema, descriptor, RenderOptions(emit_unpopulated=True))
        empty = renderer.to_dict(schema.message_class(descriptor)())
        assert sorted(empty) == sorted(component(doc, name).get("required", [])), name
        conforms(empty, ref(name), doc)


# -- options -----------------------------------------------------------------------------------


def test_emit_unpopulated_replies_list_always_printed_fields(schema: Schema) -> None:
    options = OpenApiOptions(emit_unpopulated=True)
    doc = build_openapi(schema, compile_routes(schema, {"users.v1.Users"}), options)
    validate(doc)
    get = op(doc, "get", "/v1/users/{id}")
    assert json_schema(get["responses"]["200"]) == ref("users.v1.User-Reply")
    reply = component(doc, "users.v1.User-Reply")
    # fields without presence are always printed; message fields only when set
    assert reply["required"] == ["id", "email", "displayName", "state", "roles", "tags",
                                 "labels"]
    assert unwrap(reply["properties"]["address"]) == ref("users.v1.Address-Reply")
    # requests still take any subset of fields
    create = op(doc, "post", "/v1/users")
    assert json_schema(create["requestBody"]) == ref("users.v1.User")
    assert component(doc, "users.v1.User")["required"] == ["email"]  # REQUIRED only


def test_success_status_must_be_2xx() -> None:
    with pytest.raises(ConfigError, match="2xx"):
        OpenApiOptions(success_status={"/users.v1.Users/DeleteUser": 404})


# -- edge cases on a synthetic descriptor set --------------------------------------------------

F = descriptor_pb2.FieldDescriptorProto


def _file(package: str, rules: dict[str, list[http_pb2.HttpRule]],
          deprecated: frozenset[str] = frozenset()) -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}/svc.proto", package=package, syntax="proto3"
    )
    request = file.message_type.add(name="Req")
    request.field.add(name="id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    file.dependency.append("google/protobuf/struct.proto")
    request.field.add(name="nothing", number=3, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                      type_name=".google.protobuf.NullValue")
    old = request.field.add(name="old", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    old.options.deprecated = True
    reply = file.message_type.add(name="Reply")
    reply.options.deprecated = True
    reply.field.add(name="count", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    service = file.service.add(name="Svc")
    for name, (rule, *more) in rules.items():
        method = service.method.add(name=name, input_type=f".{package}.Req")
        method.output_type = f".{package}.Reply"
        rule.additional_bindings.extend(more)
        method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
        method.options.deprecated = name in deprecated
    return file


def test_edge_cases(schema: Schema) -> None:
    files = [
        _file("a.v1", {
            "Get": [http_pb2.HttpRule(get="/v1/things/{id}"),
                    http_pb2.HttpRule(get="/v1/*/things/{id}/**")],
            "Get2": [http_pb2.HttpRule(get="/v1/other/{id}")],
            "Peek": [http_pb2.HttpRule(custom=http_pb2.CustomHttpPattern(kind="HEAD",
                                                                          path="/v1/things"))],
            "Put": [http_pb2.HttpRule(post="/v1/things", body="*")],
        }, deprecated=frozenset({"Get"})),
        _file("b.v1", {"Get": [http_pb2.HttpRule(get="/v2/things/{id}")]}),
    ]
    struct = [f for f in schema.files if f.name == "google/protobuf/struct.proto"]
    loaded = load_schema(descriptor_pb2.FileDescriptorSet(file=struct + files).SerializeToString())
    doc = build_openapi(loaded, compile_routes(loaded), OpenApiOptions())
    validate(doc)
    get = op(doc, "get", "/v1/things/{id}")
    assert get["operationId"] == "Svc_Get" and get["deprecated"] is True
    assert params(get)["old"]["deprecated"] is True
    assert component(doc, "a.v1.Reply")["deprecated"] is True
    # Get's second binding and the method Get2 would share "Svc_Get2", and b.v1's Svc.Get
    # would share "Svc_Get": the later one takes its full service name
    anonymous = op(doc, "get", "/v1/{wildcard1}/things/{id}/{wildcard2}")
    assert anonymous["operationId"] == "Svc_Get2"
    assert op(doc, "get", "/v1/other/{id}")["operationId"] == "a_v1_Svc_Get2"
    assert params(anonymous, "path")["wildcard2"]["schema"]["pattern"] == "^.*$"
    assert op(doc, "get", "/v2/things/{id}")["operationId"] == "b_v1_Svc_Get"
    # a custom kind that OpenAPI can name is an ordinary operation
    assert op(doc, "head", "/v1/things")["operationId"] == "Svc_Peek"
    assert "x-custom-methods" not in doc
    assert "deprecated" not in op(doc, "get", "/v1/other/{id}")
    # a google.protobuf.NullValue field is JSON null
    body = json_schema(op(doc, "post", "/v1/things")["requestBody"])
    assert body == ref("a.v1.Req")
    nothing = prop(doc, "a.v1.Req", "nothing")
    assert nothing["type"] == "null"


# -- the request contract in the document (docs/validation.md) ---------------------------------


def test_field_behavior_in_the_schemas(doc: Json) -> None:
    user = component(doc, "users.v1.User")
    assert user["required"] == ["email"]  # REQUIRED
    assert user["properties"]["createTime"]["readOnly"] is True  # OUTPUT_ONLY
    assert "readOnly" not in user["properties"]["id"]  # IDENTIFIER: the path binds it
    assert user["additionalProperties"] is False  # unknown body fields are a 400
    create_order = op(doc, "post", "/v1/users/{user_id}/orders")
    assert json_schema(create_order["requestBody"]) == ref("orders.v1.Order")
    assert component(doc, "orders.v1.LineItem")["required"] == ["sku", "quantity", "unitPrice"]
    # an update: the mask says what is written, so the body requires nothing
    update = json_schema(op(doc, "patch", "/v1/users/{id}")["requestBody"])
    assert "required" not in update and update["additionalProperties"] is False
    assert params(op(doc, "get", "/v1/users/{user_id}/notifications"), "path")["user_id"][
        "required"] is True


def test_buf_validate_rules_become_keywords(doc: Json) -> None:
    user = component(doc, "users.v1.User")["properties"]
    assert (user["email"]["format"], user["email"]["maxLength"]) == ("email", 254)
    assert user["tags"]["maxItems"] == 20
    assert user["tags"]["items"] == {"type": "string", "minLength": 1, "maxLength": 40}
    country = prop(doc, "users.v1.Address", "countryCode")
    assert country["pattern"] == "^[A-Z]{2}$"
    quantity = prop(doc, "orders.v1.LineItem", "quantity")
    assert (quantity["minimum"], quantity["maximum"]) == (1, 1000)


def test_null_where_the_parser_takes_it(doc: Json) -> None:
    """proto3 JSON reads null as the default value: declared where that default is valid."""
    user = component(doc, "users.v1.User")["properties"]
    assert user["displayName"]["type"] == ["string", "null"]
    assert user["tags"]["type"] == ["array", "null"]  # null for a repeated field: empty
    assert user["address"]["anyOf"][-1] == {"type": "null"}
    # not_in [0]: the zero value (and so null) is refused where the field is written
    assert user["state"]["enum"] == ["USER_STATE_ACTIVE", "USER_STATE_SUSPENDED"]
    assert user["email"]["type"] == "string"  # REQUIRED: null would be refused
    # a rule the default breaks (pattern without IGNORE_IF_ZERO_VALUE): no null either
    assert component(doc, "orders.v1.Money")["properties"]["currencyCode"]["type"] == "string"
    kitchen = component(doc, KITCHEN)["properties"]
    assert kitchen["wrappedString"]["type"] == ["string", "null"]


def test_unknown_fields_ignored_leave_objects_open(schema: Schema) -> None:
    doc = build_openapi(schema, compile_routes(schema), OpenApiOptions(closed_bodies=False))
    assert "additionalProperties" not in component(doc, "users.v1.User")


def test_security_schemes_and_per_operation_security(schema: Schema) -> None:
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    doc = build_openapi(schema, compile_routes(schema), OpenApiOptions(
        security_schemes={"bearerAuth": bearer},
        security={"/users.v1.Users/CreateUser": ("bearerAuth",)},
    ))
    validate(doc)
    assert doc["components"]["securitySchemes"] == {"bearerAuth": bearer}
    create = op(doc, "post", "/v1/users")
    assert create["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(create["responses"])
    get = op(doc, "get", "/v1/users/{id}")  # public: no security, no 401
    assert "security" not in get and "401" not in get["responses"]
    for status in ("400", "401", "429", "503", "default"):
        assert json_schema(create["responses"][status]) == ref("google.rpc.Status")
