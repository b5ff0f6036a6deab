"""Upstream.forward: the terminal Handler that makes the gRPC call on the chosen backend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from gateway.call import Call, Reply
from gateway.errors import DeadlineExceeded, Unimplemented
from gateway.upstream.pool import BackendPool
from gateway.upstream.status import from_rpc_error, to_metadata


class Upstream:
    """Routes a Call to the pool serving its service and returns the backend's Reply."""

    def __init__(self, pools: Mapping[str, BackendPool], default_timeout_s: Mapping[str, float]
                 ) -> None:
        self._pools = pools  # proto service full name -> pool
        self._default_timeout_s = default_timeout_s  # proto service full name -> seconds

    async def __call__(self, call: Call) -> Reply:
        service = call.method[1:].partition("/")[0]
        pool = self._pools.get(service)
        if pool is None:
            raise Unimplemented(f"no backend serves {service!r}")
        timeout = self._timeout(call, service)
        instance = pool.pick()
        invoke = instance.multicallable(call.method, call.kind)
        rpc = invoke(call.payload, timeout=timeout, metadata=call.metadata or None)
        if call.kind.streams_replies:
            try:
                initial = to_metadata(await rpc.initial_metadata())
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc, pool.name) from None
            return Reply(_replies(rpc, pool.name), initial, backend=pool.name)
        try:
            payload = await rpc
            initial = to_metadata(await rpc.initial_metadata())
            trailers = to_metadata(await rpc.trailing_metadata())
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, pool.name) from None
        return Reply(payload, initial, trailers, backend=pool.name)

    def _timeout(self, call: Call, service: str) -> float:
        if call.deadline is None:
            return self._default_timeout_s[service]
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"deadline exceeded before calling {call.method}")
        return remaining

    async def close(self) -> None:
        for pool in {id(p): p for p in self._pools.values()}.values():
            await pool.close()

async def _replies(rpc: Any, backend: str) -> AsyncIterator[bytes]:
    """The reply stream; closing it early (client gone) cancels the backend call."""
    try:
        async for message in rpc:
            yield message
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc, backend) from None
    finally:
        rpc.cancel()

