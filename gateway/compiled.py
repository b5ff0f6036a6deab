"""Compile a config once: schema, routes, per-route transcoders, gRPC methods. Swapped whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from gateway.bff.spec import AggregatePlan, compile_aggregates
from gateway.call import Kind
from gateway.config import GatewayConfig
from gateway.configcheck import check_names
from gateway.contract.check import ContractOptions, MethodContract, compile_contracts
from gateway.edges.rest import Endpoint
from gateway.edges.rpc import MethodInfo
from gateway.errors import ConfigError
from gateway.openapi_security import operation_security, security_schemes
from gateway.protoset import load_descriptors
from gateway.transcode.openapi import OpenApiOptions, build_openapi
from gateway.transcode.request import DecodeOptions, compile_request_decoder
from gateway.transcode.response import RenderOptions, compile_reply_encoder
from gateway.transcode.route import Route
from gateway.transcode.routes import RouteTable, compile_routes
from gateway.transcode.schema import Schema


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """Everything built from one config at load (and, later, reload); swapped as a whole."""

    config: GatewayConfig
    schema: Schema
    services: Mapping[str, str]  # proto service -> backend name
    table: RouteTable
    endpoints: Mapping[Route, Endpoint]
    methods: Mapping[str, MethodInfo]
    openapi: Mapping[str, object] | None
    aggregates: Mapping[str, AggregatePlan]  # served by the BFF executor, not a backend
    contracts: Mapping[str, MethodContract] = field(default_factory=dict)  # methods with checks

    @property
    def served_services(self) -> tuple[str, ...]:
        """Every proto service the gateway answers: backends' and aggregates' (reflection and
        grpc.health.v1 list these)."""
        aggregate_services = {method[1:].partition("/")[0] for method in self.aggregates}
        return (*self.services, *sorted(aggregate_services - set(self.services)))


def compile_config(config: GatewayConfig) -> Compiled:
    schema = load_descriptors(config.descriptors)
    services: dict[str, str] = {}
    for service in schema.services:
        backend_name = config.backend_for(service)
        if backend_name is not None:
            services[service] = backend_name
    for name, backend in config.backends.items():
        if not any(backend.serves(s) for s in schema.services):
            raise ConfigError(
                f"backends.{name}.services: {', '.join(backend.services)} matches no service "
                f"of the loaded descriptors ({', '.join(sorted(schema.services)) or 'none'})"
            )
    check_names(config, schema, services)  # every method name and pattern names something
    methods = {
        f"/{service}/{method.name}": MethodInfo(_kind(method), _idempotent(method))
        for service in services
        for method in schema.services[service].methods
    }
    timeouts = {service: config.backends[backend].timeout_s
                for service, backend in services.items()}
    aggregates = compile_aggregates(config.aggregates, schema, methods, timeouts)
    aggregate_services = set()
    for method in aggregates:
        service, _, name = method[1:].partition("/")
        descriptor = schema.services[service].methods_by_name[name]
        methods[method] = MethodInfo(Kind.UNARY, _idempotent(descriptor))
        aggregate_services.add(service)
    table = compile_routes(schema, services=frozenset({*services, *aggregate_services}))
    transcoding = config.transcoding
    decode = DecodeOptions(
        ignore_unknown_query=transcoding.ignore_unknown_query,
        ignore_unknown_body_fields=transcoding.ignore_unknown_body_fields,
        max_json_depth=transcoding.max_json_depth,
        allow_dot_segments=transcoding.allow_dot_segments,
        path_body_conflict=transcoding.path_body_conflict,
    )
    render = RenderOptions(
        use_proto_names=transcoding.use_proto_names,
        emit_unpopulated=transcoding.emit_unpopulated,
    )
    endpoints = {
        route: Endpoint(
            route=route,
            decoder=compile_request_decoder(schema, route, decode),
            encoder=compile_reply_encoder(schema, route, render),
            success_status=transcoding.success_status.get(route.method, 200),
        )
        for route in table.routes
    }
    openapi = None
    if transcoding.openapi:
        openapi = build_openapi(schema, table, OpenApiOptions(
            title="gateway", use_proto_names=transcoding.use_proto_names,
            emit_unpopulated=transcoding.emit_unpopulated,
            success_status=transcoding.success_status,
            closed_bodies=not transcoding.ignore_unknown_body_fields,
            security_schemes=security_schemes(config),
            security=operation_security(config, methods),
        ))
    checks = transcoding.field_behavior
    contracts = compile_contracts(schema, methods, ContractOptions(
        field_behavior=checks.enabled, output_only=checks.output_only,
        immutable_in_mask=checks.immutable == "reject", protovalidate=transcoding.protovalidate,
    ))
    return Compiled(config, schema, services, table, endpoints, methods, openapi, aggregates,
                    contracts)



def _kind(method: MethodDescriptor) -> Kind:
    if method.client_streaming:
        return Kind.BIDI_STREAM if method.server_streaming else Kind.CLIENT_STREAM
    return Kind.SERVER_STREAM if method.server_streaming else Kind.UNARY


def _idempotent(method: MethodDescriptor) -> bool:
    level = method.GetOptions().idempotency_level
    return level in (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT)
