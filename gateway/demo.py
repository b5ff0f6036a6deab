"""The demo stack: the three demo backends and a gateway in front of them, in one process."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import app
from gateway.config import GatewayConfig, load
from gateway.startup_errors import StartError

DESCRIPTOR_SET = Path(__file__).resolve().parent.parent / "generated" / "descriptors.binpb"
OVERVIEW = "/dashboard.v1.Dashboard/GetOverview"
# The demo's one API key: it signs in as u-1001, the caller the dashboard overview is about.
DEMO_API_KEY = "demo-key-u-1001"
# The demo's admin API token (on the ops listener): it reads /admin/requests/<id>, and as the
# X-Gateway-Explain value it may ask for any request to be explained. A demo secret only.
DEMO_ADMIN_TOKEN = "demo-admin-token"
# The demo's token issuer: a key pair made on first use and kept out of git, so
# `python -m gateway demo-token` can mint tokens the running demo accepts.
DEMO_ISSUER = "https://issuer.demo.local"
DEMO_AUDIENCE = "demo-gateway"
DEMO_KEY_FILE = Path(__file__).resolve().parent.parent / ".build" / "demo" / "issuer-key.pem"
DEMO_KID = "demo-1"
# The demo's listeners and the flags that move them.
DEMO_FLAGS = {"listen.rest": "--rest-port", "listen.grpc": "--grpc-port",
              "listen.ops": "--ops-port"}


def demo_signing_key() -> rsa.RSAPrivateKey:
    """The demo issuer's private key, created on first use."""
    if not DEMO_KEY_FILE.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        DEMO_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEMO_KEY_FILE.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        DEMO_KEY_FILE.chmod(0o600)
    loaded = serialization.load_pem_private_key(DEMO_KEY_FILE.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{DEMO_KEY_FILE} is not an RSA key; delete it to make a new one")
    return loaded


def mint_demo_token(subject: str, roles: list[str], ttl_s: int = 3600) -> str:
    """A token the demo gateway accepts (RS256, the demo issuer and audience)."""
    now = int(time.time())
    claims = {"iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "sub": subject, "roles": roles,
              "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, demo_signing_key(), algorithm="RS256", headers={"kid": DEMO_KID})


def demo_public_pem() -> str:
    """The demo issuer's public key in PEM (deploy/gateway.yaml reads it from the environment)."""
    return demo_signing_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def demo_auth() -> dict[str, Any]:
    public = demo_public_pem()
    return {
        "issuers": [{"issuer": DEMO_ISSUER, "audiences": [DEMO_AUDIENCE],
                     "algorithms": ["RS256"], "keys": [{"kid": DEMO_KID, "pem": public}]}],
        "api_keys": [{"sha256": hashlib.sha256(DEMO_API_KEY.encode()).hexdigest(),
                      "owner": "u-1001"}],
    }


# Reads are public; writes need a signed-in caller; deleting a user needs the admin role.
DEMO_AUTHORIZATION: dict[str, Any] = {"default": "public", "rules": [
    {"match": "/users.v1.Users/DeleteUser", "roles": ["admin"]},
    {"match": "/users.v1.Users/CreateUser"},
    {"match": "/users.v1.Users/UpdateUser"},
    {"match": "/orders.v1.Orders/CreateOrder"},
    {"match": "/orders.v1.Orders/CancelOrder"},
    {"match": "/notifications.v1.Notifications/MarkRead"},
    {"match": "/dashboard.v1.*"},
]}


def overview_aggregate() -> dict[str, Any]:
    """The dashboard overview (docs/bff.md): the caller's profile (required), recent orders and
    unread count (optional, concurrent), and the users those orders reference (after them)."""
    me = "identity.user_id"
    return {"parts": {
        "profile": {"method": "/users.v1.Users/GetUser", "request": {"id": me}},
        "recent_orders": {"method": "/orders.v1.Orders/ListOrders", "required": False,
                          "request": {"user_id": me, "page_size": "request.order_page_size"}},
        "unread": {"method": "/notifications.v1.Notifications/CountUnread", "required": False,
                   "request": {"user_id": me}},
        "order_users": {"method": "/users.v1.Users/GetUser", "required": False,
                        "request": {"id": "recent_orders.orders.user_id"}},
    }}


def demo_config(addresses: dict[str, str], host: str, rest_port: int, grpc_port: int,
                ops_port: int | None = None, trace: str = "none",
                otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces") -> GatewayConfig:
    """The gateway config of the demo: one backend per demo service, in-memory defaults, the
    dashboard overview aggregate, the demo issuer and API key, access rules, a rate limit;
    /metrics on ops_port when given; spans to `trace` ("none", "console", "otlp")."""
    ops = {} if ops_port is None else {"ops": {"host": host, "port": ops_port}}
    admin = {} if ops_port is None else {"admin": {
        "token_sha256": hashlib.sha256(DEMO_ADMIN_TOKEN.encode()).hexdigest()}}
    return load({
        "listen": {"rest": {"host": host, "port": rest_port},
                   "grpc": {"host": host, "port": grpc_port}, **ops},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {
            "users": {"services": ["users.v1.Users"], "addresses": [addresses["users"]]},
            "orders": {"services": ["orders.v1.Orders"], "addresses": [addresses["orders"]]},
            "notifications": {"services": ["notifications.v1.Notifications"],
                              "addresses": [addresses["notifications"]]},
        },
        "transcoding": {"success_status": {
            "/users.v1.Users/CreateUser": 201,
            "/users.v1.Users/DeleteUser": 204,
            "/orders.v1.Orders/CreateOrder": 201,
        }},
        "cors": {"allow_origins": [f"http://localhost:{rest_port}",
                                   f"http://127.0.0.1:{rest_port}"]},
        "auth": demo_auth(),
        "authorization": DEMO_AUTHORIZATION,
        # In memory (no Redis): 50 requests a second per client address, bursts of 100.
        "rate_limits": {"rules": [{"match": "*", "key": "ip", "rate_per_s": 50, "burst": 100}]},
        "aggregates": {OVERVIEW: overview_aggregate()},
        "observability": {"tracing": {"exporter": trace, "otlp_endpoint": otlp_endpoint,
                                      "service_name": "demo-gateway"},
                          # X-Gateway-Explain: 1 from a caller with the admin role
                          "explain": {"enabled": True, "roles": ["admin"]}},
        **admin,
    })


async def run_demo(host: str, rest_port: int, grpc_port: int, ops_port: int = 9464,
                   trace: Literal["none", "console", "otlp"] = "none",
                   otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces") -> int:
    from services.server import start_all

    backends = await start_all(host="127.0.0.1", trace=trace, otlp_endpoint=otlp_endpoint)
    running = None
    try:
        config = demo_config({n: b.address for n, b in backends.items()}, host, rest_port,
                             grpc_port, ops_port, trace, otlp_endpoint)
        try:
            running = await app.start(config)
        except StartError as exc:  # name the demo's flag for the port, not a config key
            flag = DEMO_FLAGS.get(exc.key)
            if flag is None:
                raise
            raise StartError(flag, str(exc)) from None
        for name, backend in backends.items():
            print(f"backend {name:<14} grpc://{backend.address}")
        print(f"gateway REST        http://{host}:{running.rest_port}")
        print(f"gateway gRPC        {host}:{running.grpc_port}")
        print(f"metrics (scrape)    http://{host}:{running.ops_port}/metrics")
        print(f"try: curl -s http://{host}:{running.rest_port}/v1/users/u-1001")
        print(f"     curl -s -H 'x-api-key: {DEMO_API_KEY}' "
              f"http://{host}:{running.rest_port}/v1/dashboard/overview")
        print("     TOKEN=$(.venv/bin/python -m gateway demo-token --sub u-1001 --roles admin)")
        print(f"     curl -si -H \"Authorization: Bearer $TOKEN\" -H 'X-Gateway-Explain: 1' "
              f"http://{host}:{running.rest_port}/v1/users/u-1001")
        print(f"     curl -s -H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}' "
              f"http://{host}:{running.ops_port}/admin/requests/<X-Request-ID>")
        print("stop with Ctrl-C", flush=True)
        await app.wait_for_signal()
    finally:
        if running is not None:
            await running.stop()
        for backend in backends.values():
            await backend.stop()
    return 0
