"""CheckContract: the proto contract (field_behavior, buf.validate) on both edges' requests.

It runs after authentication, authorization and rate limiting and before the deadline and the
upstream: an unauthenticated or refused caller learns nothing about what a valid request looks
like (it gets 401/403 first), a flood of invalid requests is counted against its limit like any
other, and no backend ever sees a request that breaks the contract. The REST edge has turned
JSON into bytes by then, so one check on the bytes serves both edges; methods with nothing to
check are not in the table and pass through without being parsed.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.call import Call, StepPolicy
from gateway.contract.check import MethodContract


class CheckContract(StepPolicy):
    def __init__(self, contracts: Mapping[str, MethodContract], rest_json_names: bool) -> None:
        self._contracts = contracts
        self._rest_json_names = rest_json_names  # False with transcoding.use_proto_names
        self.inert = not contracts

    def step(self, call: Call) -> Call:
        contract = self._contracts.get(call.method)
        if contract is None or not isinstance(call.payload, bytes):
            return call
        json_names = self._rest_json_names and call.edge == "rest"
        payload = contract.check(call.payload, json_names)
        if payload is call.payload:
            return call
        return Call(call.method, payload, call.kind, call.metadata, call.peer, call.deadline,
                    call.idempotent, call.principal, call.request_id, call.edge)
