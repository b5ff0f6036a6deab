"""The byte proxy of bench/baselines/byteproxy.py with pygrpc-native's grpc.aio-compatible server
(HTTP/2 and gRPC framing in Rust, handlers on our event loop) in place of grpc.aio's: the same
grpc.aio client channel, the same raw-bytes forwarding with the deadline passed on, no metadata,
no policies. Its methods are registered per service from the descriptors (a generic handler
would send every call to pygrpc-native's grpcio fallback server). Needs the [bench] extra.
`python -m bench.baselines.nativeproxy --port 0 --backend 127.0.0.1:PORT`.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from bench.baselines.byteproxy import cli, serve
from users.v1 import users_pb2

NO_DEADLINE_S = 1e9  # time_remaining() at or above this: the call has no deadline


def unavailable() -> str | None:
    """Why this baseline cannot run here, if it cannot."""
    try:
        import pygrpc_native.aio  # noqa: F401
    except ImportError:
        return "pygrpc-native is not installed (the [bench] extra: bench/setup.sh)"
    return None


def method_handlers(channel: grpc.aio.Channel, service: ServiceDescriptor
                    ) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """One raw-bytes forwarding handler per unary-unary method of `service`."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue
        upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            f"/{service.full_name}/{method.name}")

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any],
                          upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = upstream
                          ) -> bytes:
            remaining = context.time_remaining()
            # pygrpc-native 0.5.0 says "no deadline" as sys.maxsize seconds, which grpc.aio's
            # client takes for a deadline long past: pass no timeout then.
            reply: bytes = await upstream(
                request, timeout=remaining if remaining < NO_DEADLINE_S else None)
            return reply

        handlers[method.name] = grpc.unary_unary_rpc_method_handler(forward)
    return handlers


async def run(port: int, backend: str) -> None:
    import pygrpc_native.aio

    def make_server(channel: grpc.aio.Channel) -> grpc.aio.Server:
        server: grpc.aio.Server = pygrpc_native.aio.server()
        service = users_pb2.DESCRIPTOR.services_by_name["Users"]
        server.add_registered_method_handlers(service.full_name, method_handlers(channel, service))
        return server

    await serve("nativeproxy", port, backend, make_server)


def main() -> None:
    cli(__doc__, run)


if __name__ == "__main__":
    main()
