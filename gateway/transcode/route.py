"""Route: one google.api.http binding of one RPC, compiled at load. Pure value."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor

from gateway.transcode.template import Template


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    http_method: str  # "GET", "POST", "PUT", "PATCH", "DELETE", or a custom kind ("SEARCH")
    template: Template
    method: str  # gRPC method path, "/testing.v1.Echo/GetBook"
    service: str  # "testing.v1.Echo"
    input: Descriptor  # request message, from the Schema's private pool
    output: Descriptor  # reply message
    body: str | None  # None: no body; "*": the whole request; else a top-level field name
    response_body: str | None  # None: the whole reply; else a top-level field of the reply
    client_streaming: bool
    server_streaming: bool
    idempotent: bool  # safe to retry: a GET binding, or idempotency_level set in the proto
    path_fields: tuple[str, ...]  # field paths bound by the template, "book.name"

    def __str__(self) -> str:
        return f"{self.http_method} {self.template} -> {self.method}"
