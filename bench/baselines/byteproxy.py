"""The naive grpc.aio byte proxy: a generic handler that forwards any unary-unary call as raw bytes
over one insecure channel, deadline passed on. What you'd write in 30 lines; no policies.
`python -m bench.baselines.byteproxy --port 0 --backend 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import uvloop

from bench.procs import LOOPBACK


class ByteProxy(grpc.GenericRpcHandler):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        handler = self._handlers.get(details.method)
        if handler is None:
            # No (de)serializers anywhere: the request and the reply stay bytes.
            upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = \
                self._channel.unary_unary(details.method)

            async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                              ) -> bytes:
                reply: bytes = await upstream(request, timeout=context.time_remaining())
                return reply

            handler = self._handlers[details.method] = grpc.unary_unary_rpc_method_handler(forward)
        return handler


async def serve(name: str, port: int, backend: str,
                make_server: Callable[[grpc.aio.Channel], grpc.aio.Server]) -> None:
    """Serve the proxy `make_server` builds around one insecure channel to `backend` until
    SIGINT/SIGTERM (bench/baselines/nativeproxy.py serves its own server the same way)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    channel = grpc.aio.insecure_channel(backend)
    server = make_server(channel)
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    await server.start()
    print(f"{name} listening on {LOOPBACK}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(None)
        await channel.close()


def cli(description: str | None,
        run_proxy: Callable[[int, str], Coroutine[Any, Any, None]]) -> None:
    """`--port`/`--backend`, then `run_proxy(port, backend)` on uvloop."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    parser.add_argument("--backend", required=True, help="HOST:PORT of the gRPC backend")
    args = parser.parse_args()
    uvloop.run(run_proxy(args.port, args.backend))


async def run(port: int, backend: str) -> None:
    await serve("byteproxy", port, backend,
                lambda channel: grpc.aio.server(handlers=[ByteProxy(channel)]))


def main() -> None:
    cli(__doc__, run)


if __name__ == "__main__":
    main()
