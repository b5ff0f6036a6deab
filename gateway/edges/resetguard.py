"""ResetGuard: GOAWAY for a gRPC connection that floods the edge with streams it cancels at
once (rapid reset, CVE-2023-44487).

grpc core drops such a stream before any handler runs and paces the client (PINGs on resets),
but never cuts the connection off, and grpc's Python server gives the application no handle on
a connection: a reset stream reaches Python only as a method lookup, without its peer. What
does see every connection is grpc's channelz: per server, calls started and failed; per
socket, streams started, succeeded and failed, and the peer address.

So every `interval_s` the guard reads the servers' failed-call counts (one cheap channelz call).
Only when some server's failures pass `max_resets_per_s` does it read the sockets of that
server (a page of PAGE a look), and a connection whose own failed streams pass the limit, with
almost none succeeding, is the abuser: the guard finds its file descriptor among the process's
sockets (same local port, same peer), writes an HTTP/2 GOAWAY (ENHANCE_YOUR_CALM,
"rapid_reset") on it and shuts it down. grpc core sees the socket end and closes its transport;
other connections are untouched. On a TLS listener the connection is only shut down (a GOAWAY
would have to be encrypted). Linux only (/proc/self/fd), like the deployment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass

from grpc._cython import cygrpc  # type: ignore[attr-defined]  # channelz: grpc's counters

log = logging.getLogger("gateway.grpc")

# Sockets read per look at one server, a page at a time round the list (each read costs
# ~0.5 ms): a server failing many calls for another reason (a backend outage) costs a bounded
# ~0.1 s a look while it lasts.
PAGE = 256
ENHANCE_YOUR_CALM = 0xB
_DEBUG = b"rapid_reset"
GOAWAY = (struct.pack(">I", 8 + len(_DEBUG))[1:] + b"\x07\x00" + b"\x00\x00\x00\x00"
          + struct.pack(">II", 0, ENHANCE_YOUR_CALM) + _DEBUG)


@dataclass(frozen=True, slots=True)
class Peer:
    host: str
    port: int


class ResetGuard:
    def __init__(self, port: int, max_resets_per_s: int, interval_s: float = 0.5,
                 tls: bool = False) -> None:
        self._port = port  # the gRPC edge's bound port: only its connections are looked at
        self._tls = tls  # a GOAWAY in clear on a TLS connection means nothing: just close it
        self._next_page: dict[int, int] = {}  # server id -> the socket id to read on from
        self._limit = max_resets_per_s
        self._interval = interval_s
        self._server_failed: dict[int, tuple[float, int]] = {}  # id -> (when, calls failed)
        # server id -> socket id -> (when, streams failed, streams succeeded) at the last look
        self._socket_seen: dict[int, dict[int, tuple[float, int, int]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.closed = 0  # connections cut off (gateway_grpc_connections_closed{rapid_reset})

    def start(self) -> None:
        if self._limit > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)  # a periodic look, not synchronisation
            try:
                for peer in self.abusers(time.monotonic()):
                    if await asyncio.to_thread(cut_off, self._port, peer, not self._tls):
                        self.closed += 1
                        log.warning("gRPC connection from %s:%d reset streams faster than "
                                    "%d/s: GOAWAY, closed", peer.host, peer.port, self._limit)
            except Exception:  # never let the guard die: it is a defence, not the service
                log.exception("rapid-reset guard: look failed")

    def abusers(self, now: float) -> list[Peer]:
        """Peers of the edge's connections resetting streams past the limit since last look."""
        found: list[Peer] = []
        watching = set()
        servers = json.loads(cygrpc.channelz_get_servers(0)).get("server", [])
        for server in servers:
            server_id = int(server["ref"]["serverId"])
            failed = int(server.get("data", {}).get("callsFailed", 0))
            then, before = self._server_failed.get(server_id, (now, failed))
            self._server_failed[server_id] = (now, failed)
            hot = now > then and (failed - before) / (now - then) > self._limit
            if hot:
                watching.add(server_id)
            if hot or server_id in self._socket_seen:  # a second look judges the first
                found.extend(self._scan(server_id, now, keep=hot))
        self._socket_seen = {k: v for k, v in self._socket_seen.items() if k in watching}
        return found

    def _scan(self, server_id: int, now: float, keep: bool) -> list[Peer]:
        found = []
        page = json.loads(cygrpc.channelz_get_server_sockets(
            server_id, self._next_page.get(server_id, 0), PAGE))
        refs = page.get("socketRef", [])
        self._next_page[server_id] = (0 if page.get("end") or not refs
                                      else int(refs[-1]["socketId"]) + 1)
        before = self._socket_seen.get(server_id, {})
        seen: dict[int, tuple[float, int, int]] = {}
        for ref in refs:
            socket_id = int(ref["socketId"])
            with contextlib.suppress(Exception):  # it may be gone by now
                data = json.loads(cygrpc.channelz_get_socket(socket_id))["socket"]
                local = data.get("local", {}).get("tcpipAddress", {})
                if int(local.get("port", -1)) != self._port:
                    continue
                counters = data.get("data", {})
                failed = int(counters.get("streamsFailed", 0))
                ok = int(counters.get("streamsSucceeded", 0))
                seen[socket_id] = (now, failed, ok)
                previous = before.get(socket_id)
                if previous is None:
                    continue  # the first look: judged at the next one
                then, failed_before, ok_before = previous
                resets = failed - failed_before
                if (now > then and resets / (now - then) > self._limit
                        and ok - ok_before < resets // 10):  # nearly all of them fail
                    found.append(_peer(data["remote"]["tcpipAddress"]))
        if keep:
            self._socket_seen[server_id] = {**before, **seen}
        return found


def _peer(address: dict[str, object]) -> Peer:
    raw = base64.b64decode(str(address.get("ipAddress", "")))
    return Peer(str(ipaddress.ip_address(raw)), int(str(address.get("port", 0))))


def cut_off(local_port: int, peer: Peer, goaway: bool = True) -> bool:
    """Find this process's socket for (local_port, peer), send GOAWAY and shut it down."""
    wanted = {peer.host}
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(peer.host)
        if isinstance(address, ipaddress.IPv4Address):
            wanted.add(f"::ffff:{address}")  # a dual-stack listener sees IPv4 peers so
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET,
                                                                     socket.AF_INET6):
                continue
            local, remote = sock.getsockname(), sock.getpeername()
            if local[1] != local_port or remote[0] not in wanted or remote[1] != peer.port:
                continue
            if goaway:
                with contextlib.suppress(OSError):
                    sock.send(GOAWAY, socket.MSG_DONTWAIT)
            sock.shutdown(socket.SHUT_RDWR)  # ends grpc's transport too: the socket is shared
            return True
        except OSError:
            continue
        finally:
            sock.close()  # the duplicate only
    return False
