"""google.api.field_behavior compiled per method and applied to request bytes (AIP-203)."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from gateway.contract.check import ContractOptions, MethodContract, compile_contracts
from gateway.errors import InvalidArgument
from gateway.transcode.schema import Schema

CREATE = "/contract.v1.Things/CreateThing"
UPDATE = "/contract.v1.Things/UpdateThing"
METHODS = (CREATE, UPDATE, "/contract.v1.Things/Plain", "/contract.v1.Things/Stream")
NO_RULES = ContractOptions(protovalidate=False)


def _contracts(schema: Schema, options: ContractOptions = NO_RULES) -> Any:
    return compile_contracts(schema, METHODS, options)


def _request(schema: Schema, method: str, **fields: Any) -> Any:
    descriptor = schema.method(method)
    assert descriptor is not None
    return schema.message_class(descriptor.input_type)(**fields)


def _refusal(contract: MethodContract, message: Any, json_names: bool = True
             ) -> tuple[str, list[tuple[str, str]]]:
    with pytest.raises(InvalidArgument) as caught:
        contract.check(message.SerializeToString(), json_names)
    (detail,) = caught.value.details
    packed = any_pb2.Any.FromString(detail)
    bad = error_details_pb2.BadRequest()
    assert packed.Unpack(bad)
    return caught.value.message, [(v.field, v.reason) for v in bad.field_violations]


def test_only_methods_with_something_to_check_are_decoded(contract_schema: Schema) -> None:
    contracts = _contracts(contract_schema)
    # Plain has no behaviour: raw passthrough; a request stream is never one message
    assert set(contracts) == {CREATE, UPDATE}


def test_every_missing_required_field_is_listed_by_json_name(contract_schema: Schema) -> None:
    contract = _contracts(contract_schema)[CREATE]
    message, violations = _refusal(contract, _request(contract_schema, CREATE))
    assert violations == [("thing", "REQUIRED"), ("parent", "REQUIRED")]
    assert "thing: is required" in message and "parent: is required" in message
    request = _request(contract_schema, CREATE, parent="p")
    request.thing.parts.add(count=2)
    request.thing.named_parts["k"].count = 1
    _, violations = _refusal(contract, request)
    assert violations == [("thing.displayName", "REQUIRED"), ("thing.parts[0].sku", "REQUIRED"),
                          ("thing.namedParts['k'].sku", "REQUIRED")]
    _, violations = _refusal(contract, request, json_names=False)  # the gRPC edge
    assert violations[0] == ("thing.display_name", "REQUIRED")


def test_a_valid_request_passes_unchanged(contract_schema: Schema) -> None:
    contract = _contracts(contract_schema)[CREATE]
    payload = _request(contract_schema, CREATE, parent="p",
                       thing={"display_name": "ok"}).SerializeToString()
    assert contract.check(payload, True) is payload


def test_output_only_fields_are_cleared_or_refused(contract_schema: Schema) -> None:
    request = _request(contract_schema, CREATE, parent="p",
                       thing={"display_name": "ok", "etag": "x", "name": "things/1"})
    request.thing.create_time.seconds = 5
    cleared = _contracts(contract_schema)[CREATE].check(request.SerializeToString(), True)
    sent = type(request).FromString(cleared)
    assert not sent.thing.HasField("create_time") and sent.thing.etag == ""
    assert sent.thing.name == "things/1"  # IDENTIFIER: kept
    reject = _contracts(contract_schema, ContractOptions(output_only="reject",
                                                         protovalidate=False))[CREATE]
    _, violations = _refusal(reject, request)
    assert violations == [("thing.createTime", "OUTPUT_ONLY"), ("thing.etag", "OUTPUT_ONLY")]


def test_update_mask_limits_required_and_drops_output_only_paths(contract_schema: Schema) -> None:
    contract = _contracts(contract_schema)[UPDATE]
    request = _request(contract_schema, UPDATE, thing={"email": "a@b.co", "etag": "e"})
    request.update_mask.paths.extend(["email", "etag"])
    sent = type(request).FromString(contract.check(request.SerializeToString(), True))
    # display_name is REQUIRED, but the mask does not write it; etag is output only
    assert list(sent.update_mask.paths) == ["email"] and sent.thing.etag == ""
    del request.update_mask.paths[:]  # an empty mask writes every field: REQUIRED applies
    _, violations = _refusal(contract, request)
    assert violations == [("thing.displayName", "REQUIRED")]


def test_immutable_fields_in_the_mask_are_refused_when_configured(contract_schema: Schema) -> None:
    request = _request(contract_schema, UPDATE, thing={"owner": "o"})
    request.update_mask.paths.append("owner")
    allowed = _contracts(contract_schema)[UPDATE]
    assert allowed.check(request.SerializeToString(), True) == request.SerializeToString()
    refused = _contracts(contract_schema, ContractOptions(immutable_in_mask=True,
                                                          protovalidate=False))[UPDATE]
    message, violations = _refusal(refused, request)
    assert violations == [("updateMask", "IMMUTABLE")] and '"owner"' in message


def test_field_behavior_off_decodes_nothing(contract_schema: Schema) -> None:
    assert _contracts(contract_schema, ContractOptions(field_behavior=False,
                                                       protovalidate=False)) == {}


def test_bytes_that_are_not_the_request_type_are_refused(contract_schema: Schema) -> None:
    with pytest.raises(InvalidArgument, match="not a valid contract.v1.CreateThingRequest"):
        _contracts(contract_schema)[CREATE].check(b"\xff\xff", False)


def test_a_required_field_the_mask_writes_must_have_a_value(contract_schema: Schema) -> None:
    # AIP-134: the mask says display_name is written, so it cannot be written empty
    request = _request(contract_schema, UPDATE, thing={"email": "a@b.co"})
    request.update_mask.paths.extend(["email", "display_name"])
    _, violations = _refusal(_contracts(contract_schema)[UPDATE], request)
    assert violations == [("thing.displayName", "REQUIRED")]
