"""TLS on both listeners; client certificates required on the gRPC edge for internal callers."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import grpc
import pytest

from tests.certs import make_authority
from tests.e2e.stack import running_stack
from users.v1 import users_pb2, users_pb2_grpc


async def test_tls_on_rest_and_mtls_on_grpc(tmp_path: Path) -> None:
    ca = make_authority(tmp_path)
    server = ca.issue(tmp_path, "gateway")
    client = ca.issue(tmp_path, "billing-service", client=True)
    tls = {"cert_file": str(server.cert), "key_file": str(server.key)}
    async with running_stack(listen={
        "rest": {"host": "127.0.0.1", "port": 0, "tls": tls},
        "grpc": {"host": "127.0.0.1", "port": 0,
                 "tls": {**tls, "client_ca_file": str(ca.cert), "require_client_cert": True}},
    }) as stack:
        rest_port, grpc_port = stack.gateway.rest_port, stack.gateway.grpc_port
        trust = ssl.create_default_context(cafile=str(ca.cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{rest_port}/v1/users/u-1001", ssl=trust) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"https://127.0.0.1:{rest_port}/v1/users/u-1001",
                               ssl=ssl.create_default_context())  # not our CA: refused

        ca_pem = ca.cert.read_bytes()
        with_cert = grpc.ssl_channel_credentials(ca_pem, client.key.read_bytes(),
                                                 client.cert.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{grpc_port}", with_cert) as channel:
            user = await users_pb2_grpc.UsersStub(channel).GetUser(
                users_pb2.GetUserRequest(id="u-1001"), timeout=5)
            assert user.id == "u-1001"

        without_cert = grpc.ssl_channel_credentials(ca_pem)
        async with grpc.aio.secure_channel(f"127.0.0.1:{grpc_port}", without_cert) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await users_pb2_grpc.UsersStub(channel).GetUser(
                    users_pb2.GetUserRequest(id="u-1001"), timeout=5)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert len(stack.backends["users"].faults.api_calls) == 2  # the refused call never arrived
