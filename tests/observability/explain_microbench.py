"""What explain costs per REST request in the edge and the chain, in process (not a test).

    .venv/bin/python tests/observability/explain_microbench.py off|enabled|asked [CALLS] [jwt|key]

The real RestEdge.handle (route match, decode, Call, reply encoding, headers) over the real
policy chain as the runtime orders it (request id, authentication: an RS256 token, or with
"key" an API key, which costs a hash instead of an RSA verification; an access rule, identity
injection, a rate limit, the deadline), ending in a plain function instead of the upstream.
Prints the best of RUNS runs in microseconds per request. "off": explain not configured;
"enabled": configured, the request does not ask; "asked": it asks and may, so each step is
noted, kept and sent back.

Runs unchanged against a tree without explain (PYTHONPATH=<export of an older commit>), so a
before/after comes from one run of alternating processes. A script, not a module of tests/:
run by path, the gateway package comes from PYTHONPATH, not from the current directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from typing import Any

import jwt
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth.build import build_auth_policies
from gateway.call import Call, Reply, chain
from gateway.compiled import compile_config
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from gateway.edges.rest import RestEdge
from gateway.observability.build import build_observability
from gateway.policies.deadline import Deadline
from gateway.policies.ratelimit import build_rate_limiter
from gateway.policies.request_id import PropagateRequestId
from users.v1 import users_pb2

RUNS = 7
API_KEY = "bench-api-key-0123456789"
ISSUER, AUDIENCE, KID = "https://issuer.bench.local", "bench", "bench-1"
USER = users_pb2.User(id="u-1001", display_name="Ada").SerializeToString()


async def terminal(call: Call) -> Reply:
    return Reply(USER, backend="users", backend_s=0.0001)


async def main(mode: str, calls: int, credential: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    now = int(time.time())
    bearer = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "roles": ["ops"],
                         "iat": now, "exp": now + 3600}, key, algorithm="RS256",
                        headers={"kid": KID})
    settings: dict[str, Any] = {
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"users": {"services": ["users.v1.Users"], "addresses": ["127.0.0.1:1"]}},
        "auth": {"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE],
                              "algorithms": ["RS256"], "keys": [{"kid": KID, "pem": pem}]}],
                 "api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                               "owner": "alice", "roles": ["ops"]}]},
        "authorization": {"default": "authenticated", "rules": [
            {"match": "/users.v1.Users/DeleteUser", "roles": ["admin"]}]},
        "rate_limits": {"rules": [{"match": "*", "key": "user", "rate_per_s": 1e9,
                                   "burst": 1_000_000_000}]},
        "observability": {"access_log": {"enabled": False}},
    }
    if mode != "off":
        settings["observability"]["explain"] = {"enabled": True, "roles": ["ops"]}
    config = load(settings)
    compiled = compile_config(config)
    observability = build_observability(config, compiled.services, compiled.methods)
    auth = build_auth_policies(config)
    await auth.start()
    policies = [*observability.head, *getattr(observability, "explain", ()),
                *auth.ordered(PropagateRequestId()), build_rate_limiter(config.rate_limits),
                Deadline({"users.v1.Users": 15.0})]
    pipeline = chain([p for p in policies if not getattr(p, "inert", False)], terminal)
    edge = RestEdge(compiled.schema, compiled.table, compiled.endpoints, pipeline,
                    config.transcoding, credential_headers=("x-api-key",))
    headers = {"Authorization": f"Bearer {bearer}"} if credential == "jwt" else {
        "X-Api-Key": API_KEY}
    headers.update({"Accept": "application/json", "User-Agent": "bench", "Host": "127.0.0.1"})
    if mode == "asked":
        headers["X-Gateway-Explain"] = "1"

    # One request, handled again and again (a GET has no body to consume): making a mocked
    # request costs more than handling it.
    request = make_mocked_request("GET", "/v1/users/u-1001", headers=headers)

    async def run(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            response = await edge.handle(request)
            assert response.status == 200, response.status
        return (time.perf_counter() - started) / count

    await run(500)
    best = min([await run(calls) for _ in range(RUNS)])
    await auth.close()
    print(json.dumps({"mode": mode, "credential": credential, "calls": calls,
                      "us_per_request": round(best * 1e6, 2)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5000,
                     sys.argv[3] if len(sys.argv) > 3 else "jwt"))
