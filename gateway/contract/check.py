"""The contract of each method, compiled at load: which requests are decoded at all, the
field_behavior checks and the buf.validate rules of its request type.

A method with neither keeps raw passthrough (its bytes are never parsed). Pure: imports
protobuf, protovalidate and gateway.contract only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf.message import DecodeError, Message

from gateway.contract.fieldbehavior import (
    OutputOnlyMode,
    RequestBehavior,
    compile_request_behavior,
)
from gateway.contract.rules import Rules, has_rules
from gateway.contract.violation import Violation, invalid_request
from gateway.errors import InvalidArgument
from gateway.transcode.schema import Schema


@dataclass(frozen=True, slots=True)
class ContractOptions:
    field_behavior: bool = True  # REQUIRED and OUTPUT_ONLY (and IMMUTABLE if asked)
    output_only: OutputOnlyMode = "clear"
    immutable_in_mask: bool = False
    protovalidate: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class MethodContract:
    message_class: type[Message]
    behavior: RequestBehavior | None
    rules: Rules | None

    def check(self, payload: bytes, json_names: bool) -> bytes:
        """The request bytes to send on (rewritten only if OUTPUT_ONLY fields were cleared);
        InvalidArgument with a google.rpc.BadRequest naming every violation."""
        type_name = self.message_class.DESCRIPTOR.full_name
        try:
            message = self.message_class.FromString(payload)
        except DecodeError:
            raise InvalidArgument(f"the request is not a valid {type_name}") from None
        violations: list[Violation] = []
        changed = self.behavior.apply(message, violations) if self.behavior else False
        if self.rules is not None:
            # a field reported missing is not reported again for the rules its default breaks
            missing = {v.field for v in violations if v.reason == "REQUIRED"}
            violations.extend(v for v in self.rules.violations(message) if v.field not in missing)
        if violations:
            raise invalid_request(type_name, violations, json_names)
        return message.SerializeToString() if changed else payload


def compile_contracts(schema: Schema, methods: Iterable[str], options: ContractOptions
                      ) -> Mapping[str, MethodContract]:
    """Contracts of the methods (by "/pkg.Service/Method") that have something to check.
    ConfigError (naming the message) when a request type's buf.validate rules do not compile."""
    rules = Rules() if options.protovalidate else None
    contracts: dict[str, MethodContract] = {}
    for method in methods:
        descriptor = schema.method(method)
        if descriptor is None or descriptor.client_streaming:
            continue  # request streams pass through: there is no one message to check
        request = descriptor.input_type
        behavior = None
        if options.field_behavior:
            behavior = compile_request_behavior(request, options.output_only,
                                                options.immutable_in_mask)
        checked = rules if rules is not None and has_rules(request) else None
        if behavior is None and checked is None:
            continue
        message_class = schema.message_class(request)
        if checked is not None:
            checked.compile(message_class, method)
        contracts[method] = MethodContract(message_class, behavior, checked)
    return MappingProxyType(contracts)
