"""The server under test for connectconformance --mode server: the gateway in front of the
suite's own gRPC server (cmd/grpcserver, grpc-go), reached over gRPC.

Reads a size-delimited ServerCompatRequest on stdin, starts the backend with a request of its
own (gRPC, HTTP/2, plaintext), starts the gateway (both listeners on 127.0.0.1:0) with the
conformance protos as its schema, and answers with a ServerCompatResponse naming the REST
listener (HTTP/1.1: Connect, gRPC-Web) or the gRPC listener (HTTP/2: gRPC). Serves until
SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf import message_factory

from gateway import app
from gateway.config import load
from gateway.protoset import compile_protos
from gateway.transcode.schema import load_schema

BUILD = Path(os.environ.get("CONFORMANCE_BUILD", ".build"))
MODULE = BUILD / "gopath/pkg/mod/connectrpc.com/conformance@v1.0.7"
PROTO_ROOT = MODULE / "proto"
FILES = [Path("connectrpc/conformance/v1") / name
         for name in ("service.proto", "config.proto", "server_compat.proto")]
GRPC = 3  # connectrpc.conformance.v1.Protocol.PROTOCOL_GRPC
HTTP_2 = 2


def read_delimited(stream: Any) -> bytes:
    size = struct.unpack(">I", stream.read(4))[0]
    return bytes(stream.read(size))


def write_delimited(stream: Any, data: bytes) -> None:
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    descriptor_set = BUILD / "conformance.binpb"
    if not descriptor_set.exists():
        descriptor_set.write_bytes(compile_protos(tuple(FILES), (PROTO_ROOT,)))
    schema = load_schema(descriptor_set.read_bytes())
    pool = schema.pool
    compat_request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("connectrpc.conformance.v1.ServerCompatRequest"))
    compat_response = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("connectrpc.conformance.v1.ServerCompatResponse"))
    asked: Any = compat_request.FromString(read_delimited(sys.stdin.buffer))

    backend = subprocess.Popen([str(BUILD / "go/grpcserver")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    assert backend.stdin is not None and backend.stdout is not None
    write_delimited(backend.stdin, compat_request(protocol=GRPC, http_version=HTTP_2,
                                                  message_receive_limit=64 * 1024 * 1024)
                    .SerializeToString())
    where: Any = compat_response.FromString(read_delimited(backend.stdout))
    config = load({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(descriptor_set.resolve())},
        "backends": {"conformance": {
            "services": ["connectrpc.conformance.v1.ConformanceService"],
            "addresses": [f"{where.host}:{where.port}"],
            "timeout_s": 30,
            # The suite checks that its server sees the client's deadline, or none: the
            # gateway's own default (T-16) is switched off for it, the cap stays.
            "default_deadline": False,
            "health_check": {"enabled": False},  # the suite's server has no grpc.health.v1
            # The suite's errors are on purpose: no breaker, ejection or retry in between.
            "breaker": {"consecutive_failures": 10**9, "min_requests": 10**9},
            "outlier": {"consecutive_failures": 10**9},
            "retry": {"attempts": 1},
        }},
        "cors": {"allow_origins": ["*"], "allow_headers": ["*"]},
        # The suite checks that every header, trailer and error message the server sets comes
        # back: open the perimeter's allow-list and error text for it (both edges).
        "transcoding": {"openapi": False, "response_headers": ["*"],
                        "error_messages": "backend"},
        "grpc_edge": {"metadata_deny": []},
        "observability": {"access_log": {"enabled": False}},
    })
    running = await app.start(config)
    # The runner starts one server per HTTP version: HTTP/2 cases are gRPC (config.yaml)
    port = running.grpc_port if asked.http_version == HTTP_2 else running.rest_port
    write_delimited(sys.stdout.buffer, compat_response(host="127.0.0.1", port=port)
                    .SerializeToString())
    try:
        await app.wait_for_signal()  # the runner ends each server with SIGTERM
    finally:
        await running.stop(0)
        backend.terminate()
        backend.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
