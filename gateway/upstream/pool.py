"""Backend pools: one grpc.aio channel per instance, reused multicallables, round-robin pick."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from gateway.call import Kind

# Channel options for a proxy: no per-RPC tracing of channel args, keepalive so dead peers are
# noticed, and no message size cap below the edge's own limits.
CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),  # retries are the gateway's policy, not the channel's
)


@dataclass(eq=False)
class Instance:
    """One address of a backend, with its channel and cached multicallables."""

    address: str
    channel: grpc.aio.Channel
    _callables: dict[tuple[str, Kind], Callable[..., Any]] = field(default_factory=dict)

    def multicallable(self, method: str, kind: Kind) -> Callable[..., Any]:
        key = (method, kind)
        found = self._callables.get(key)
        if found is None:
            # No (de)serializers: payloads pass through as the serialized bytes they are.
            factory = getattr(self.channel, kind.value)
            found = factory(method, _registered_method=True)
            self._callables[key] = found
        return found


class BackendPool:
    """The instances of one backend; pick() chooses the next one round-robin."""

    def __init__(self, name: str, addresses: Sequence[str]) -> None:
        self.name = name
        self.instances = tuple(
            Instance(address, grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS))
            for address in addresses
        )
        self._cycle = itertools.cycle(self.instances)

    def pick(self) -> Instance:
        return next(self._cycle)

    async def close(self) -> None:
        for instance in self.instances:
            await instance.channel.close()
