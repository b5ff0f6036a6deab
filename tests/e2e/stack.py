"""A real gateway (both edges on 127.0.0.1:0) in front of real demo + echo backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc

from gateway import app
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from services.server import RunningBackend, start_backend

SERVICES = {
    "users": "users.v1.Users",
    "orders": "orders.v1.Orders",
    "notifications": "notifications.v1.Notifications",
    "echo": "testing.v1.Echo",
}


@dataclass(frozen=True)
class Stack:
    gateway: app.RunningGateway
    backends: Mapping[str, RunningBackend]
    http: aiohttp.ClientSession
    channel: grpc.aio.Channel  # to the gateway's gRPC edge

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.rest_port}"

    def url(self, path: str) -> str:
        return self.base_url + path


def stack_config(backends: Mapping[str, RunningBackend],
                 backend_options: Mapping[str, Mapping[str, Any]] | None = None,
                 **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {
            name: {"services": [SERVICES[name]], "addresses": [backend.address],
                   **(backend_options or {}).get(name, {})}
            for name, backend in backends.items()
        },
    }
    for key, value in overrides.items():
        config[key] = value
    return config


@asynccontextmanager
async def running_stack(backend_options: Mapping[str, Mapping[str, Any]] | None = None,
                        **overrides: Any) -> AsyncIterator[Stack]:
    backends: dict[str, RunningBackend] = {}
    gateway = None
    try:
        for name in SERVICES:
            backends[name] = await start_backend(name)
        gateway = await app.start(load(stack_config(backends, backend_options, **overrides)))
        async with aiohttp.ClientSession() as http, grpc.aio.insecure_channel(
            f"127.0.0.1:{gateway.grpc_port}"
        ) as channel:
            yield Stack(gateway, backends, http, channel)
    finally:
        if gateway is not None:
            await gateway.stop(0)
        for backend in backends.values():
            await backend.stop()
