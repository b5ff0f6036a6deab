"""The admin API on the ops listener: the token (as its SHA-256, in the file or the environment),
401 without it, 404 when off; status, backends and limiter as JSON."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gateway import app
from gateway.config import load
from gateway.errors import ConfigError
from tests.ops.conftest import (
    ADMIN_TOKEN,
    BEARER,
    file_stack,
    gateway_config,
    started_backends,
)

ROUTES = (("GET", "/admin/status"), ("GET", "/admin/backends"), ("GET", "/admin/limiter"),
          ("POST", "/admin/reload"))
LIMITS = {"rules": [{"match": "/users.v1.*", "key": "ip", "rate_per_s": 5, "burst": 10}]}


async def test_every_route_needs_the_token(tmp_path: Path) -> None:
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Basic {ADMIN_TOKEN}"}):
                async with stack.http.request(method, stack.ops_url(path),
                                              headers=headers) as response:
                    assert response.status == 401, (method, path, headers)
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    assert await response.json() == {
                        "code": 16, "message": "admin token missing or wrong", "details": []}
        assert stack.gateway.generation == 1  # no reload went through


async def test_status_backends_and_limiter(tmp_path: Path) -> None:
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends,
            gateway_config(backends, rate_limits=LIMITS)) as stack:
        async with stack.http.get(stack.ops_url("/admin/status"), headers=BEARER) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            status = await response.json()
        assert status == {"pid": os.getpid(), "worker": None, "workers": 1, "generation": 1,
                          "ready": True, "draining": 0, "last_reload": None}

        async with stack.http.get(stack.ops_url("/admin/backends"), headers=BEARER) as response:
            users = (await response.json())["users"]
        assert users["instances"] == [{"address": backends["users"].address, "health": "healthy",
                                       "ejected": False, "ejections": 0, "outstanding": 0}]
        assert users["breakers"] == [] or users["breakers"][0]["state"] == "closed"
        assert users["max_requests"] == 1024

        async with stack.http.get(stack.ops_url("/admin/limiter"), headers=BEARER) as response:
            limiter = await response.json()
        assert limiter == {"store": "memory", "share": 1.0, "rules": LIMITS["rules"]}


async def test_admin_off_answers_404_but_metrics_stay(tmp_path: Path) -> None:
    async with started_backends("users") as backends:
        config = gateway_config(backends)
        del config["admin"]
        async with file_stack(tmp_path / "gateway.yaml", backends, config) as stack:
            async with stack.http.get(stack.ops_url("/admin/status"),
                                      headers=BEARER) as response:
                assert response.status == 404
                assert "admin API is off" in (await response.json())["message"]
            async with stack.http.get(stack.ops_url("/metrics")) as response:
                assert response.status == 200


async def test_token_digest_from_the_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TEST_ADMIN_SHA256", hashlib.sha256(b"from-env").hexdigest())
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends,
            gateway_config(backends, admin={"token_sha256_env": "OPS_TEST_ADMIN_SHA256"})
    ) as stack:
        url = stack.ops_url("/admin/status")
        async with stack.http.get(url, headers={"Authorization": "Bearer from-env"}) as response:
            assert response.status == 200
        async with stack.http.get(url, headers=BEARER) as response:
            assert response.status == 401
        # A reload that would lose the digest is rejected, naming the variable.
        monkeypatch.delenv("OPS_TEST_ADMIN_SHA256")
        async with stack.http.post(stack.ops_url("/admin/reload"),
                                   headers={"Authorization": "Bearer from-env"}) as response:
            assert response.status == 400
            assert "$OPS_TEST_ADMIN_SHA256" in (await response.json())["message"]


async def test_a_gateway_started_without_a_file_cannot_reload() -> None:
    async with started_backends("users") as backends:
        gateway = await app.start(load(gateway_config(backends)))
        try:
            with pytest.raises(ConfigError, match="no config file to reload from"):
                await gateway.reload()
            assert gateway.last_reload is not None and not gateway.last_reload.ok
        finally:
            await gateway.stop(0)


def test_admin_needs_the_ops_listener_and_a_hashed_token() -> None:
    base = {"descriptors": {"descriptor_set": "x.binpb"},
            "backends": {"u": {"services": ["a.B"], "addresses": ["127.0.0.1:1"]}}}
    with pytest.raises(ConfigError, match="set listen.ops"):
        load({**base, "admin": {"token_sha256": "0" * 64}})
    with pytest.raises(ConfigError, match="admin.token_sha256"):
        load({**base, "listen": {"ops": {"port": 0}}, "admin": {"token_sha256": "secret"}})
