"""The naive grpc.aio byte proxy: a generic handler that forwards any unary-unary call as raw bytes
over one insecure channel, deadline passed on. What you'd write in 30 lines; no policies.
`python -m bench.baselines.byteproxy --port 0 --backend 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
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


async def run(port: int, backend: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    channel = grpc.aio.insecure_channel(backend)
    server = grpc.aio.server(handlers=[ByteProxy(channel)])
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    await server.start()
    print(f"byteproxy listening on {LOOPBACK}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(None)
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    parser.add_argument("--backend", required=True, help="HOST:PORT of the gRPC backend")
    args = parser.parse_args()
    uvloop.run(run(args.port, args.backend))


if __name__ == "__main__":
    main()
