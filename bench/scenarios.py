"""The scenario registry: what each scenario starts (in order), which of its processes is under
test, how it is loaded and what its check expects. A new scenario is one more Scenario in
SCENARIOS. Also the dashboard aggregate's stack, shared with bench.bff_bench.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import yaml
from google.protobuf.message import Message

from bench.baselines import nativeproxy
from bench.baselines.facade import DESCRIPTORS, fast_unavailable
from bench.check import (
    DASHBOARD_PATH,
    GRPC_METHOD,
    REST_PATH,
    UNREAD_PATH,
    USER_ID,
    check_user_bytes,
    expected_overview,
    expected_unread,
    expected_user,
)
from bench.loadgen import Tool
from bench.peers import grpc_gateway, users_backend
from bench.procs import LOOPBACK

# How each process tells its ports: port name -> regex on its output whose group 1 is the port.
GRPC_PORT = {"grpc": r"listening on \S*?:(\d+)"}  # services.cli: "users listening on HOST:PORT"
REST_PORT = {"rest": r"listening on \S*?:(\d+)"}  # bench.baselines.site, the same form
GATEWAY_PORTS = {"rest": r"REST on \S*?:(\d+)", "grpc": r"gRPC on \S*?:(\d+)"}  # its log


@dataclass(frozen=True, slots=True)
class Launch:
    """What a process's command line may depend on."""

    python: str  # the interpreter running the bench
    out: Path  # bench/out: generated files go here
    ports: Mapping[str, int]  # "<role>.<port name>" of the processes started before it


@dataclass(frozen=True, slots=True)
class Proc:
    role: str  # "backend", "gateway", "facade", "bare"
    argv: Callable[[Launch], list[str]]
    announce: Mapping[str, str]  # port name -> regex on its output, group 1 = the port
    instances: int = 1  # processes that each announce every port (serve --workers N)
    # Run once it announced its ports, given "HOST:PORT" of its first one; raises BenchError.
    check: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class Load:
    tool: Tool  # wrk: GET path; h2load: POST path with the GetUser frame
    port: str  # "<role>.<port name>" that receives the load
    path: str  # REST path or gRPC method
    headers: tuple[tuple[str, str], ...] = ()  # wrk: sent with every request


def _available() -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    what: str
    procs: tuple[Proc, ...]  # started in this order, stopped together
    under_test: str  # role of the process under test
    load: Load
    unavailable: Callable[[], str | None] = _available  # why it cannot run here, if it cannot
    expected: Callable[[], Message] = expected_user  # the REST check: the reply, as JSON


def _users(launch: Launch) -> list[str]:
    return [launch.python, "-m", "services.users", "--host", LOOPBACK, "--port", "0"]


def _bare(launch: Launch) -> list[str]:
    return [launch.python, "-m", "bench.baselines.bare", "--port", "0"]


def _byte_proxy(launch: Launch) -> list[str]:
    return [launch.python, "-m", "bench.baselines.byteproxy", "--port", "0",
            "--backend", f"{LOOPBACK}:{launch.ports['backend.grpc']}"]


def _native_proxy(launch: Launch) -> list[str]:
    return [launch.python, "-m", "bench.baselines.nativeproxy", "--port", "0",
            "--backend", f"{LOOPBACK}:{launch.ports['backend.grpc']}"]


def _facade(renderer: str) -> Callable[[Launch], list[str]]:
    def argv(launch: Launch) -> list[str]:
        return [launch.python, "-m", "bench.baselines.facade", "--port", "0",
                "--backend", f"{LOOPBACK}:{launch.ports['backend.grpc']}", "--renderer", renderer]

    return argv


def _gateway(variant: str, extra: Mapping[str, object],
             workers: int = 1) -> Callable[[Launch], list[str]]:
    """Serve a gateway config of both listeners on ephemeral ports, the users backend and
    `extra` top-level keys."""

    def config(launch: Launch) -> Mapping[str, object]:
        return {
            **LISTEN,
            "descriptors": {"descriptor_set": str(DESCRIPTORS)},
            "backends": {"users": {"services": ["users.v1.Users"],
                                   "addresses": [f"{LOOPBACK}:{launch.ports['backend.grpc']}"]}},
            **extra,
        }

    return _serve_config(variant, config, workers)


def _serve_config(variant: str, config: Callable[[Launch], Mapping[str, object]],
                  workers: int) -> Callable[[Launch], list[str]]:
    """Write the config to bench/out/gateway<variant>.yaml and serve it with `workers`."""

    def argv(launch: Launch) -> list[str]:
        path = launch.out / f"gateway{variant}.yaml"
        path.write_text(yaml.safe_dump(dict(config(launch)), sort_keys=False))
        return [launch.python, "-m", "gateway", "serve", "--config", str(path),
                *(("--workers", str(workers)) if workers > 1 else ())]

    return argv


LISTEN: Mapping[str, object] = {"listen": {"rest": {"host": LOOPBACK, "port": 0},
                                          "grpc": {"host": LOOPBACK, "port": 0}}}
# The gateway with auth + a rate limit on: an API key (sent by the load generator) and a limit
# far above the offered load, so every request pays for both decisions.
BENCH_API_KEY = "bench-key-0123456789"


def _api_key(owner: str) -> Mapping[str, object]:
    return {"api_keys": [{"sha256": hashlib.sha256(BENCH_API_KEY.encode()).hexdigest(),
                          "owner": owner}]}


POLICIES_ON: Mapping[str, object] = {
    "auth": _api_key("bench"),
    "authorization": {"default": "authenticated"},
    "rate_limits": {"rules": [{"match": "*", "key": "user", "rate_per_s": 1e6,
                               "burst": 1_000_000}]},
}
BACKEND = Proc("backend", _users, GRPC_PORT, check=check_user_bytes(exact=False))
# The Go (grpc-go) users backend: the same GetUser reply bytes (checked at start: exactly the
# reference, where the Python backend's may order map entries otherwise), a fraction of
# the Python backend's CPU per call, so that what sits in front of it saturates first.
GO_BACKEND = Proc("backend", users_backend.argv, GRPC_PORT, check=check_user_bytes(exact=True))
GATEWAY = Proc("gateway", _gateway("", {}), GATEWAY_PORTS)
GATEWAY_QUIET = Proc("gateway", _gateway("-quiet", {
    "observability": {"access_log": {"enabled": False}}}), GATEWAY_PORTS)
GATEWAY_POLICIES = Proc("gateway", _gateway("-policies", POLICIES_ON), GATEWAY_PORTS)
GATEWAY_W2 = Proc("gateway", _gateway("-w2", {}, workers=2), GATEWAY_PORTS, instances=2)

# The dashboard aggregate: its three independent parts, each backend answering after an
# injected service time; the aggregate's p50 should be near the slowest part's, not the sum.
DASHBOARD_PARTS: Mapping[str, tuple[str, str, float]] = MappingProxyType({
    # backend -> (its service, the part's method, the injected delay in s)
    "users": ("users.v1.Users", "/users.v1.Users/GetUser", 0.050),
    "orders": ("orders.v1.Orders", "/orders.v1.Orders/ListOrders", 0.100),
    "notifications": ("notifications.v1.Notifications",
                      "/notifications.v1.Notifications/CountUnread", 0.150),
})


def dashboard_config(addresses: Mapping[str, str]) -> dict[str, object]:
    """The gateway in front of the parts' backends (backend -> address): the API key signs
    in as USER_ID, whom the overview is about; the overview aggregate of the three parts."""
    from gateway.demo import OVERVIEW, overview_aggregate  # the gateway, only when asked

    aggregate = overview_aggregate()
    del aggregate["parts"]["order_users"]  # the three parts, no dependent fourth
    return {
        **LISTEN,
        "descriptors": {"descriptor_set": str(DESCRIPTORS)},
        "backends": {name: {"services": [service], "addresses": [addresses[name]]}
                     for name, (service, _, _) in DASHBOARD_PARTS.items()},
        "auth": _api_key(USER_ID),
        "aggregates": {OVERVIEW: aggregate},
        "log_level": "warning",
    }


def _dashboard_backends(launch: Launch) -> list[str]:
    """The three backends in one process, each part's method delayed."""
    return [launch.python, "-m", "services", "--host", LOOPBACK,
            *(arg for name in DASHBOARD_PARTS for arg in (f"--{name}-port", "0")),
            *(arg for _, method, delay_s in DASHBOARD_PARTS.values()
              for arg in ("--delay", f"{method}={delay_s:g}"))]


DASHBOARD_BACKENDS = Proc("backend", _dashboard_backends, {
    name: rf"{name} listening on \S*?:(\d+)" for name in DASHBOARD_PARTS})
def _dashboard_gateway(launch: Launch) -> Mapping[str, object]:
    return dashboard_config({name: f"{LOOPBACK}:{launch.ports[f'backend.{name}']}"
                             for name in DASHBOARD_PARTS})


GATEWAY_DASHBOARD = Proc("gateway", _serve_config("-dashboard", _dashboard_gateway, 1),
                         GATEWAY_PORTS)
API_KEY_HEADER = (("x-api-key", BENCH_API_KEY),)


def _facade_scenario(renderer: str, what: str) -> Scenario:
    return Scenario(
        f"rest-facade-{renderer}", what,
        (BACKEND, Proc("facade", _facade(renderer), REST_PORT)), "facade",
        Load("wrk", "facade.rest", REST_PATH),
        fast_unavailable if renderer == "fast" else _available,
    )


_SCENARIOS = (
    Scenario("grpc-direct", "gRPC GetUser straight to the users backend (h2load)",
             (BACKEND,), "backend", Load("h2load", "backend.grpc", GRPC_METHOD)),
    Scenario("rest-bare", "bare aiohttp+uvloop answering the User's fixed JSON (wrk)",
             (Proc("bare", _bare, REST_PORT),), "bare", Load("wrk", "bare.rest", REST_PATH)),
    _facade_scenario("json", "hand-written aiohttp façade, MessageToDict + json.dumps (wrk)"),
    _facade_scenario("orjson", "hand-written aiohttp façade, MessageToDict + orjson (wrk)"),
    _facade_scenario("fast", "hand-written aiohttp façade, gateway compiled renderer (wrk)"),
    Scenario("rest-gateway", "REST GetUser transcoded by the gateway (wrk)",
             (BACKEND, GATEWAY), "gateway", Load("wrk", "gateway.rest", REST_PATH)),
    Scenario("rest-gateway-quiet", "as rest-gateway, access log off (wrk)",
             (BACKEND, GATEWAY_QUIET), "gateway", Load("wrk", "gateway.rest", REST_PATH)),
    Scenario("rest-gateway-policies", "as rest-gateway, API-key auth + a rate limit (wrk)",
             (BACKEND, GATEWAY_POLICIES), "gateway",
             Load("wrk", "gateway.rest", REST_PATH, headers=API_KEY_HEADER)),
    Scenario("grpc-gateway", "gRPC GetUser through the gateway's gRPC edge (h2load)",
             (BACKEND, GATEWAY), "gateway", Load("h2load", "gateway.grpc", GRPC_METHOD)),
    Scenario("grpc-byteproxy", "naive grpc.aio byte proxy: generic handler, one channel (h2load)",
             (BACKEND, Proc("proxy", _byte_proxy, GRPC_PORT)), "proxy",
             Load("h2load", "proxy.grpc", GRPC_METHOD)),
    Scenario("grpc-nativeproxy", "the byte proxy on pygrpc-native's server, grpc.aio client "
             "(h2load)", (BACKEND, Proc("proxy", _native_proxy, GRPC_PORT)), "proxy",
             Load("h2load", "proxy.grpc", GRPC_METHOD), nativeproxy.unavailable),
    Scenario("rest-grpc-gateway-go", "grpc-gateway v2 (Go) on the same protos (wrk)",
             (BACKEND, Proc("peer", grpc_gateway.argv, REST_PORT)), "peer",
             Load("wrk", "peer.rest", REST_PATH), grpc_gateway.unavailable),
    Scenario("rest-gateway-w2", "as rest-gateway, `serve --workers 2` (supervisor + 2 workers)",
             (BACKEND, GATEWAY_W2), "gateway", Load("wrk", "gateway.rest", REST_PATH)),
    Scenario("rest-aggregate", "REST dashboard overview: 3 parts delayed 50/100/150 ms (wrk)",
             (DASHBOARD_BACKENDS, GATEWAY_DASHBOARD), "gateway",
             Load("wrk", "gateway.rest", DASHBOARD_PATH, headers=API_KEY_HEADER),
             expected=expected_overview),
    Scenario("rest-aggregate-slowest", "REST CountUnread alone, the 150 ms part (wrk)",
             (DASHBOARD_BACKENDS, GATEWAY_DASHBOARD), "gateway",
             Load("wrk", "gateway.rest", UNREAD_PATH, headers=API_KEY_HEADER),
             expected=expected_unread),
)

GO_SUFFIX = "-gobackend"


def _go_backend_unavailable(scenario: Scenario) -> Callable[[], str | None]:
    def unavailable() -> str | None:
        return users_backend.unavailable() or scenario.unavailable()

    return unavailable


def with_go_backend(scenarios: Iterable[Scenario]) -> Iterable[Scenario]:
    """Each scenario, then (for those in front of the Python users backend) the same with the
    Go backend in its place, named with GO_SUFFIX."""
    for scenario in scenarios:
        yield scenario
        if scenario.procs[0] is BACKEND:
            yield replace(scenario, name=scenario.name + GO_SUFFIX,
                          what=f"{scenario.what}, Go users backend",
                          procs=(GO_BACKEND, *scenario.procs[1:]),
                          unavailable=_go_backend_unavailable(scenario))


# (numerator, denominator): same-run ratios reported when both scenarios ran.
RATIOS: tuple[tuple[str, str], ...] = (
    ("rest-gateway", "rest-facade-json"),
    ("rest-gateway", "rest-facade-fast"),
    ("grpc-gateway", "grpc-direct"),
    ("grpc-gateway", "grpc-byteproxy"),
    ("grpc-byteproxy", "grpc-direct"),
    ("grpc-nativeproxy", "grpc-byteproxy"),
    ("grpc-nativeproxy", "grpc-direct"),
    ("grpc-gateway", "grpc-nativeproxy"),
    ("rest-gateway", "rest-grpc-gateway-go"),
    ("rest-facade-json", "grpc-direct"),
    ("rest-facade-fast", "rest-facade-json"),
    ("rest-gateway", "rest-bare"),
    ("rest-gateway-quiet", "rest-facade-json"),
    ("rest-gateway-policies", "rest-facade-json"),
    ("rest-aggregate", "rest-aggregate-slowest"),  # target: p50 <= 1.15
    ("rest-gateway-w2", "rest-gateway"),  # target: CPU per request ~1.0
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {s.name: s for s in with_go_backend(_SCENARIOS)})
# ... and the same pairs between their Go-backend variants.
RATIOS += tuple((a + GO_SUFFIX, b + GO_SUFFIX) for a, b in RATIOS
                if a + GO_SUFFIX in SCENARIOS and b + GO_SUFFIX in SCENARIOS)
