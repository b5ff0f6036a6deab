"""TLS and mTLS to backends, with certificates made in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from gateway.config import load
from gateway.errors import ConfigError, GatewayError
from gateway.upstream.forward import Upstream
from services.users import UsersService
from tests.certs import make_authority
from tests.upstream.helpers import FakeClock, backend_config, get_user, upstream_for
from users.v1 import users_pb2


@asynccontextmanager
async def _tls_backend(cert: Path, key: Path, client_ca: Path | None = None
                       ) -> AsyncIterator[str]:
    server = grpc.aio.server()
    UsersService().add_to(server)
    credentials = grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_tls_to_a_backend_checks_its_name(tmp_path: Path, clock: FakeClock) -> None:
    ca = make_authority(tmp_path)
    leaf = ca.issue(tmp_path, "users")  # valid for 127.0.0.1 and localhost
    async with _tls_backend(leaf.cert, leaf.key) as address:
        for server_name, ok in ((None, True), ("localhost", True), ("other.example", False)):
            tls = {"ca_file": str(ca.cert), "server_name": server_name}
            async with upstream_for([address], clock, tls=tls) as upstream:
                if ok:
                    reply = await upstream(get_user(clock))
                    assert isinstance(reply.payload, bytes)
                    assert users_pb2.User.FromString(reply.payload).id == "u-1001"
                else:
                    with pytest.raises(GatewayError, match="unavailable"):
                        await upstream(get_user(clock))
        async with upstream_for([address], clock) as plaintext:
            with pytest.raises(GatewayError):
                await plaintext(get_user(clock))


async def test_mtls_presents_the_client_certificate(tmp_path: Path, clock: FakeClock) -> None:
    ca = make_authority(tmp_path)
    leaf = ca.issue(tmp_path, "users")
    client = ca.issue(tmp_path, "gateway", client=True)
    async with _tls_backend(leaf.cert, leaf.key, client_ca=ca.cert) as address:
        mtls = {"ca_file": str(ca.cert), "cert_file": str(client.cert),
                "key_file": str(client.key)}
        async with upstream_for([address], clock, tls=mtls) as upstream:
            assert (await upstream(get_user(clock))).backend == "users"
        async with upstream_for([address], clock, tls={"ca_file": str(ca.cert)}) as upstream:
            with pytest.raises(GatewayError):
                await upstream(get_user(clock))  # no client certificate: refused


def test_half_a_client_certificate_is_a_config_error(tmp_path: Path) -> None:
    client = make_authority(tmp_path).issue(tmp_path, "gateway", client=True)
    config = load(backend_config(["127.0.0.1:1"], tls={"cert_file": str(client.cert)}))
    with pytest.raises(ConfigError, match="both cert_file and key_file"):
        Upstream.from_config(config, {"users.v1.Users": "users"})


def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    config = load(backend_config(["127.0.0.1:1"], tls={"ca_file": str(tmp_path / "none.pem")}))
    with pytest.raises(ConfigError, match="cannot read"):
        Upstream.from_config(config, {"users.v1.Users": "users"})
