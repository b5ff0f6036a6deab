"""The Redis client the shared buckets talk to, from RedisLimits: one server, a Redis Cluster
(redis-py's RedisCluster: slots discovered from any node, MOVED/ASK followed) or the master a
Sentinel group names (redis-py's Sentinel: a failover is followed on the next connection).
Every client gets the decision timeout as its socket timeouts and no retries of its own: a retry
would double what an outage costs (T-21)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from gateway.config import RedisLimits


@dataclass(frozen=True, eq=False)
class Connection:
    client: Any  # redis.asyncio.Redis or RedisCluster: both run the script the same way
    sentinel: Sentinel | None = None  # its own clients of the Sentinels, closed with it

    async def close(self) -> None:
        await self.client.aclose()
        if self.sentinel is not None:
            for watcher in self.sentinel.sentinels:
                await watcher.aclose()


def connect(config: RedisLimits) -> Connection:
    """A redis.asyncio client (Redis or RedisCluster) for `config`; connects on first use."""
    timeouts: dict[str, Any] = {
        "socket_timeout": config.timeout_s,
        "socket_connect_timeout": config.timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if config.mode == "cluster":
        nodes = config.cluster_nodes or (_host_port(config.url),)
        return Connection(RedisCluster(
            startup_nodes=[ClusterNode(*_split(node)) for node in nodes], **timeouts))
    if config.mode == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            [_split(node) for node in config.sentinels],
            sentinel_kwargs={k: v for k, v in timeouts.items() if k.startswith("socket_")},
            **timeouts)
        return Connection(sentinel.master_for(config.sentinel_service), sentinel)
    return Connection(redis.asyncio.Redis.from_url(config.url, **timeouts))


def _split(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    return host.strip("[]"), int(port)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
