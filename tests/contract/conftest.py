"""A contract proto compiled for the tests: field_behavior and buf.validate on every shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Descriptors
from gateway.protoset import load_descriptors
from gateway.transcode.schema import Schema

CONTRACT_PROTO = """
syntax = "proto3";
package contract.v1;
import "buf/validate/validate.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/timestamp.proto";

service Things {
  rpc CreateThing(CreateThingRequest) returns (Thing);
  rpc UpdateThing(UpdateThingRequest) returns (Thing);
  rpc Plain(PlainRequest) returns (Thing);
  rpc Stream(stream CreateThingRequest) returns (Thing);
}

enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; }

message Part {
  string sku = 1 [(google.api.field_behavior) = REQUIRED];
  int32 count = 2 [(buf.validate.field).int32 = {gte: 1, lte: 9}];
}

message Thing {
  string name = 1 [(google.api.field_behavior) = IDENTIFIER];
  string display_name = 2 [(google.api.field_behavior) = REQUIRED,
                           (buf.validate.field).string = {min_len: 2, max_len: 8}];
  string email = 3 [(buf.validate.field).string.email = true,
                    (buf.validate.field).ignore = IGNORE_IF_ZERO_VALUE];
  repeated Part parts = 4;
  map<string, Part> named_parts = 5;
  Color color = 6 [(buf.validate.field).enum.defined_only = true];
  string owner = 7 [(google.api.field_behavior) = IMMUTABLE];
  google.protobuf.Timestamp create_time = 8 [(google.api.field_behavior) = OUTPUT_ONLY];
  string etag = 9 [(google.api.field_behavior) = OUTPUT_ONLY];
  Part main = 10;
}

message CreateThingRequest {
  Thing thing = 1 [(google.api.field_behavior) = REQUIRED];
  string parent = 2 [(google.api.field_behavior) = REQUIRED];
}

message UpdateThingRequest {
  Thing thing = 1 [(google.api.field_behavior) = REQUIRED];
  google.protobuf.FieldMask update_mask = 2;
}

message PlainRequest { string text = 1; }
"""


@pytest.fixture(scope="session")
def contract_schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    """Compiled at start (descriptors.proto_files), the way an operator's protos can be;
    buf/validate/validate.proto is built in (from the protovalidate package's descriptor)."""
    root = tmp_path_factory.mktemp("contract")
    (root / "contract" / "v1").mkdir(parents=True)
    (root / "contract" / "v1" / "contract.proto").write_text(CONTRACT_PROTO, encoding="utf-8")
    return load_descriptors(Descriptors(
        proto_files=(Path("contract/v1/contract.proto"),),
        import_paths=(root,),
    ))
