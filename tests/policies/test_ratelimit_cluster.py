"""Rate limits at scale: the Redis buckets against a REAL 3-node Redis Cluster on loopback
(redis-server, `redis-cli --cluster create`) and a REAL Sentinel (`redis-server --sentinel`),
through redis-py's own RedisCluster and Sentinel clients; one budget shared by two gateway
instances, every bucket key hash-tagged into one slot (T-20); after a Sentinel failover the
promoted replica holds the budget, decisions falling back meanwhile (T-21)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from gateway.config import RedisLimits
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter, redis_key
from tests.redis_server import (
    RedisServer,
    cli,
    running_cluster,
    running_redis,
    running_sentinel,
)

pytestmark = pytest.mark.redis

BURST = 3


class Clock:
    """Drives only the limiter's Redis breaker (the buckets run on Redis' TIME)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(config: RedisLimits, clock: Clock | None = None) -> RedisLimiter:
    return RedisLimiter(config, fallback=MemoryLimiter(max_keys=100), clock=clock or Clock())


def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Poll what Redis reports, with a bounded deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "Redis did not get there in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    with running_cluster(3) as servers:
        yield servers


async def decide_all(limiters: list[RedisLimiter], keys: list[str]) -> dict[str, list[bool]]:
    """Two decisions per key on each limiter, alternating: BURST + 1 tries on one budget."""
    outcomes: dict[str, list[bool]] = {key: [] for key in keys}
    for key in keys:
        for attempt in range(BURST + 1):
            decision = await limiters[attempt % len(limiters)].acquire(key, 0.001, BURST)
            outcomes[key].append(decision.allowed)
    return outcomes


async def test_a_redis_cluster_holds_one_budget_for_two_instances(
        cluster: list[RedisServer]) -> None:
    first, second, third = cluster
    one = limiter(RedisLimits(mode="cluster", url=f"redis://{first.host}:{first.port}/0",
                              timeout_s=0.5))
    other = limiter(RedisLimits(mode="cluster", timeout_s=0.5,
                                cluster_nodes=(f"{second.host}:{second.port}",
                                               f"{third.host}:{third.port}")))
    probe = RedisCluster(startup_nodes=[ClusterNode(first.host, first.port)])
    try:
        run = uuid.uuid4().hex
        keys = [f"ip:10.0.0.{i}|{run}" for i in range(24)]
        outcomes = await decide_all([one, other], keys)
        # each key: BURST allowed, then refused, whichever instance asked
        assert all(o == [True] * BURST + [False] for o in outcomes.values()), outcomes
        assert one.redis_failures == other.redis_failures == 0  # every decision from Redis

        # The keys are spread over the three masters, each in the slot of its hash tag.
        owners = set()
        for key in keys:
            name = redis_key(key)
            assert probe.keyslot(name) == probe.keyslot(key)
            assert await probe.exists(name) == 1
            node = probe.get_node_from_key(name)
            assert node is not None
            owners.add(node.port)
        assert owners == {s.port for s in cluster}
    finally:
        await probe.aclose()
        await one.close()
        await other.close()


@pytest.fixture(scope="module")
def sentinel() -> Iterator[tuple[RedisServer, RedisServer]]:
    with running_redis() as master, running_sentinel(master) as watcher:
        yield master, watcher


@pytest.fixture
async def master_client(sentinel: tuple[RedisServer, RedisServer]
                        ) -> AsyncIterator[aioredis.Redis]:
    master, _ = sentinel
    client = aioredis.Redis(host=master.host, port=master.port)
    yield client
    await client.aclose()


async def test_the_master_a_sentinel_names_holds_the_budget(
        sentinel: tuple[RedisServer, RedisServer], master_client: aioredis.Redis) -> None:
    _, watcher = sentinel
    config = RedisLimits(mode="sentinel", sentinels=(f"{watcher.host}:{watcher.port}",),
                         sentinel_service="mymaster", timeout_s=0.5)
    one, other = limiter(config), limiter(config)
    try:
        key = f"user:u-1|{uuid.uuid4().hex}"
        outcomes = await decide_all([one, other], [key])
        assert outcomes[key] == [True] * BURST + [False]
        assert one.redis_failures == other.redis_failures == 0
        assert await master_client.exists(redis_key(key)) == 1  # on the master it named
    finally:
        await one.close()
        await other.close()


async def test_after_a_sentinel_failover_the_new_master_holds_the_budget() -> None:
    with ExitStack() as stack:
        # the master syncs its replica at once (Redis waits 5 s for more replicas by default)
        master = stack.enter_context(running_redis(10.0, "--repl-diskless-sync-delay", "0"))
        replica = stack.enter_context(running_redis(10.0, "--replicaof", master.host,
                                                    str(master.port)))
        # replica in sync before the Sentinel starts: it finds it in its first INFO
        until(lambda: "master_link_status:up" in cli(replica, "info", "replication"))
        watcher = stack.enter_context(running_sentinel(master))
        until(lambda: str(replica.port) in cli(watcher, "sentinel", "replicas", "mymaster"))
        clock = Clock()
        shared = limiter(RedisLimits(mode="sentinel", timeout_s=0.2,
                                     sentinels=(f"{watcher.host}:{watcher.port}",)), clock)
        try:
            assert (await shared.acquire("before", 0.001, BURST)).allowed
            assert shared.redis_failures == 0
            os.kill(master.pid, signal.SIGKILL)
            promoted = False
            key = f"after|{uuid.uuid4().hex}"
            deadline = time.monotonic() + 15
            while not promoted:  # decisions go on (fail open) until Redis answers again
                assert time.monotonic() < deadline, "no failover within 15 s"
                clock.now += 10  # past the limiter's breaker: try Redis on every round
                await shared.acquire(key, 0.001, BURST)
                promoted = not shared.degraded and shared.redis_failures > 0
                await asyncio.sleep(0.05)
            address = cli(watcher, "sentinel", "get-master-addr-by-name", "mymaster")
            assert str(replica.port) in address  # the Sentinel promoted the replica
            new_master = aioredis.Redis(host=replica.host, port=replica.port)
            try:
                assert await new_master.exists(redis_key(key)) == 1
            finally:
                await new_master.aclose()
        finally:
            await shared.close()


def test_sentinel_mode_needs_its_sentinels() -> None:
    with pytest.raises(ValueError, match="list the Sentinels"):
        RedisLimits(mode="sentinel")
    with pytest.raises(ValueError, match="is not host:port"):
        RedisLimits(mode="cluster", cluster_nodes=("redis-0",))
