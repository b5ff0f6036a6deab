"""buf.validate rules through protovalidate's native validator, on the private pool's messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pb2
from google.rpc import error_details_pb2

from gateway.config import Descriptors
from gateway.contract.check import ContractOptions, compile_contracts
from gateway.errors import ConfigError, InvalidArgument
from gateway.protoset import _validate_descriptors, load_descriptors
from gateway.transcode.schema import Schema

ROOT = Path(__file__).resolve().parents[2]
CREATE = "/contract.v1.Things/CreateThing"
UPDATE = "/contract.v1.Things/UpdateThing"


def _violations(schema: Schema, method: str, fields: dict[str, Any], json_names: bool = True,
                options: ContractOptions | None = None) -> list[tuple[str, str, str]]:
    contract = compile_contracts(schema, (method,), options or ContractOptions())[method]
    descriptor = schema.method(method)
    assert descriptor is not None
    message = schema.message_class(descriptor.input_type)(**fields)
    with pytest.raises(InvalidArgument) as caught:
        contract.check(message.SerializeToString(), json_names)
    bad = error_details_pb2.BadRequest()
    assert any_pb2.Any.FromString(caught.value.details[0]).Unpack(bad)
    return [(v.field, v.reason, v.description) for v in bad.field_violations]


def test_rule_violations_name_the_field_and_the_rule(contract_schema: Schema) -> None:
    found = _violations(contract_schema, CREATE, {"parent": "p", "thing": {
        "display_name": "far too long", "email": "nope", "color": 7,
        "parts": [{"sku": "s", "count": 10}], "named_parts": {"k": {"sku": "s", "count": 0}},
    }})
    # the order is the validator's; the set of (field, rule) is the contract
    assert {(f, r) for f, r, _ in found} == {
        ("thing.displayName", "string.max_len"), ("thing.email", "string.email"),
        ("thing.parts[0].count", "int32.gte_lte"), ("thing.namedParts['k'].count",
                                                    "int32.gte_lte"),
        ("thing.color", "enum.defined_only"),
    }
    assert ("thing.email", "string.email", "must be a valid email address") in found


def test_proto_names_on_the_grpc_edge(contract_schema: Schema) -> None:
    found = _violations(contract_schema, CREATE, {"parent": "p", "thing": {"display_name": "x"}},
                        json_names=False)
    assert [(f, r) for f, r, _ in found] == [("thing.display_name", "string.min_len")]


def test_a_missing_required_field_is_reported_once(contract_schema: Schema) -> None:
    found = _violations(contract_schema, CREATE, {"parent": "p", "thing": {"email": "a@b.co"}})
    assert [(f, r) for f, r, _ in found] == [("thing.displayName", "REQUIRED")]


def test_rules_off_by_the_switch(contract_schema: Schema) -> None:
    contracts = compile_contracts(contract_schema, (CREATE,),
                                  ContractOptions(field_behavior=False, protovalidate=False))
    assert contracts == {}


def test_rules_that_do_not_compile_are_a_load_error_naming_the_message(tmp_path: Path) -> None:
    (tmp_path / "bad.proto").write_text('''
syntax = "proto3";
package bad.v1;
import "buf/validate/validate.proto";
service Bad { rpc Do(DoRequest) returns (DoRequest); }
message DoRequest { int32 n = 1 [(buf.validate.field).string.min_len = 2]; }
''')
    schema = load_descriptors(Descriptors(proto_files=(Path("bad.proto"),),
                                          import_paths=(tmp_path,)))
    with pytest.raises(ConfigError, match=r"rules of bad\.v1\.DoRequest \(the request of "
                                          r"/bad\.v1\.Bad/Do\) do not compile"):
        compile_contracts(schema, ("/bad.v1.Bad/Do",), ContractOptions())


def test_the_vendored_validate_proto_matches_the_packaged_descriptor() -> None:
    """third_party/protovalidate is the source of the descriptor protovalidate ships: the
    same messages, fields, options and rules (only file-level language options differ)."""
    packaged = descriptor_pb2.FileDescriptorSet.FromString(_validate_descriptors()).file[-1]
    schema = load_descriptors(Descriptors(proto_files=(Path("buf/validate/validate.proto"),),
                                          import_paths=(ROOT / "third_party" / "protovalidate",)))
    vendored = next(f for f in schema.files if f.name == "buf/validate/validate.proto")
    vendored = descriptor_pb2.FileDescriptorProto.FromString(vendored.SerializeToString())
    for file in (packaged, vendored):
        file.ClearField("options")
        file.ClearField("source_code_info")
    assert vendored == packaged
