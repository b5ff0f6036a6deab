"""The gateway's configuration: one YAML file, validated once against a typed, frozen schema.

The only module that reads files or the environment for settings. Every model forbids unknown
keys, so a typo is an error naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError
from gateway.naming import parse_address

Port = Annotated[int, Field(ge=0, le=65535)]


def _relative_to_config(path: Path, info: ValidationInfo) -> Path:
    base_dir = (info.context or {}).get("base_dir")
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


# A file named in the config: a relative path is relative to the config file's directory.
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerTls(_Model):
    """TLS on a listener; client_ca_file turns on client-certificate checks (gRPC edge, mTLS)."""

    cert_file: ConfigPath
    key_file: ConfigPath
    client_ca_file: ConfigPath | None = None
    require_client_cert: bool = False


class Listener(_Model):
    host: str = "127.0.0.1"
    port: Port
    tls: ServerTls | None = None


class Listeners(_Model):
    rest: Listener | None = Listener(port=8080)
    grpc: Listener | None = Listener(port=9090)
    ops: Listener | None = None  # /metrics (and the admin API); off unless bound here


class RestConnections(_Model):
    """Connection limits of the REST listener (docs/security.md). Set up when the listener
    opens: a reload that changes them is refused."""

    header_timeout_s: float = Field(default=10.0, gt=0)  # first byte to the end of the headers
    body_timeout_s: float = Field(default=30.0, gt=0)  # longest gap without a body byte (T-37)
    body_min_rate_bytes_s: int = Field(default=1024, ge=0)  # average, after body_timeout_s
    keepalive_timeout_s: float = Field(default=75.0, gt=0)  # idle between requests
    max_connections: int = Field(default=10_000, ge=1)  # per process (T-37)
    max_header_bytes: int = Field(default=16_384, ge=1024)  # request line and headers together
    max_header_field_bytes: int = Field(default=8190, ge=256)  # one header line
    max_headers: int = Field(default=100, ge=8)
    max_chunk_line_bytes: int = Field(default=1024, ge=32)  # chunk size + extensions
    linger_s: float = Field(default=2.0, ge=0)  # reading off an unread body before a close


class GrpcConnections(_Model):
    """Connection limits of the gRPC listener, handed to grpc core as server options."""

    max_concurrent_streams: int = Field(default=100, ge=1)  # per connection (T-37)
    max_connections: int = Field(default=10_000, ge=1)  # per process
    handshake_timeout_s: float = Field(default=10.0, gt=0)  # TCP accept to HTTP/2 settings
    max_connection_idle_s: float = Field(default=300.0, gt=0)  # no call open: GOAWAY
    max_connection_age_s: float = Field(default=1800.0, gt=0)  # GOAWAY, +/-10% jitter (T-36)
    max_connection_age_grace_s: float = Field(default=30.0, ge=0)  # then calls are cut
    max_ping_strikes: int = Field(default=2, ge=0)  # pings too often: GOAWAY (T-36)
    min_ping_interval_s: float = Field(default=300.0, gt=0)  # allowed without calls
    # Rapid reset (CVE-2023-44487): percent of client RST_STREAMs answered with a PING, which
    # makes a flooding client read (and so be paced by) what it provokes.
    ping_on_reset_percent: int = Field(default=10, ge=0, le=100)
    max_new_streams_per_read: int = Field(default=32, ge=1)
    # A connection whose streams fail (are reset) faster than this, nearly none succeeding,
    # gets GOAWAY and is closed (edges/resetguard.py); 0 turns the guard off.
    max_resets_per_s: int = Field(default=200, ge=0)


class Connections(_Model):
    rest: RestConnections = RestConnections()
    grpc: GrpcConnections = GrpcConnections()


class Descriptors(_Model):
    """Where the proto schema comes from: a FileDescriptorSet, or .proto files compiled at start."""

    descriptor_set: ConfigPath | None = None
    proto_files: tuple[Path, ...] = ()  # named relative to an import path, as protoc wants them
    import_paths: tuple[ConfigPath, ...] = ()

    @model_validator(mode="after")
    def _one_source(self) -> Descriptors:
        if (self.descriptor_set is None) == (not self.proto_files):
            raise ValueError("set exactly one of descriptor_set or proto_files")
        return self


StatusName = Literal[
    "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
]


class Retry(_Model):
    """Retries of idempotent calls (T-07..T-13): Envoy's full-jitter backoff, gRPC A6's caps."""

    attempts: int = Field(default=2, ge=1, le=5)  # first try included; A6 caps at 5
    codes: tuple[StatusName, ...] = ("UNAVAILABLE",)
    base_backoff_s: float = Field(default=0.025, gt=0)
    max_backoff_s: float = Field(default=0.25, gt=0)
    budget_ratio: float = Field(default=0.2, ge=0, le=1)  # retries <= ratio x requests
    budget_min_per_s: float = Field(default=3.0, ge=0)  # ... but always allow a few
    budget_window_s: float = Field(default=10.0, gt=0)
    idempotent_methods: tuple[str, ...] = ()  # "/pkg.Svc/Method" also safe to repeat


class Breaker(_Model):
    """Per-backend circuit breaker; only backend faults count, never caller errors."""

    consecutive_failures: int = Field(default=5, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)  # ... or this ratio over the window
    window_s: float = Field(default=10.0, gt=0)
    min_requests: int = Field(default=20, ge=1)  # ratio applies from this many calls on
    cooldown_s: float = Field(default=30.0, gt=0)  # open -> half-open after this long
    half_open_probes: int = Field(default=1, ge=1)
    per_method: bool = False


class HealthCheck(_Model):
    """Active grpc.health.v1 checks of each instance."""

    enabled: bool = True
    interval_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=1.0, gt=0)
    service: str = ""  # the name asked of grpc.health.v1 ("" = the whole server)
    unhealthy_threshold: int = Field(default=2, ge=1)
    healthy_threshold: int = Field(default=1, ge=1)


class Outlier(_Model):
    """Passive ejection after consecutive backend faults (T-03, T-05)."""

    consecutive_failures: int = Field(default=5, ge=1)
    base_ejection_s: float = Field(default=30.0, gt=0)  # doubled per re-ejection
    max_ejection_s: float = Field(default=300.0, gt=0)
    max_ejection_percent: int = Field(default=50, ge=0, le=100)  # at least one host may go


class BackendTls(_Model):
    ca_file: ConfigPath | None = None  # None: the system roots
    cert_file: ConfigPath | None = None  # client certificate for mTLS
    key_file: ConfigPath | None = None
    server_name: str | None = None  # override the name checked in the backend's certificate


def _address(entry: str) -> str:
    parse_address(entry)  # ValueError says what is wrong; pydantic names the entry's index
    return entry


BackendAddress = Annotated[str, AfterValidator(_address)]


class Backend(_Model):
    """One upstream: the proto services it serves and where its instances listen."""

    services: tuple[str, ...] = Field(min_length=1)  # full names or fnmatch patterns
    addresses: tuple[BackendAddress, ...] = Field(min_length=1)  # host:port, dns:///name:port
    # dns: entries are re-resolved this often (and at once when an instance cannot be reached)
    resolve_interval_s: float = Field(default=30.0, ge=0.1)
    # Deadline of each call when the client sets none, and the cap on what a client may ask for
    # (Envoy's route default is 15 s).
    timeout_s: float = Field(default=15.0, gt=0)
    # Streams (a stream of requests or replies) are not unary calls: no deadline unless the
    # client asks for one or this caps it, and a stream with no message either way for
    # stream_idle_timeout_s ends with DEADLINE_EXCEEDED (Envoy's stream_idle_timeout, 5 min).
    stream_timeout_s: float | None = Field(default=None, gt=0)
    stream_idle_timeout_s: float | None = Field(default=300.0, gt=0)
    # False: a call whose client set no deadline goes on without one (timeout_s still caps the
    # ones that have one). For a backend that must see the client's deadline exactly, as a
    # protocol conformance suite checks; True (T-16) keeps every call bounded.
    default_deadline: bool = True
    lb: Literal["round_robin", "least_request"] = "round_robin"
    max_requests: int = Field(default=1024, ge=1)  # concurrent calls per backend (T-01)
    retry: Retry = Retry()
    breaker: Breaker = Breaker()
    health_check: HealthCheck = HealthCheck()
    outlier: Outlier = Outlier()
    tls: BackendTls | None = None
    required: bool = True  # readiness waits for a healthy instance of this backend

    def serves(self, service: str) -> bool:
        return any(fnmatch.fnmatchcase(service, pattern) for pattern in self.services)


class Cors(_Model):
    allow_origins: tuple[str, ...] = ()  # empty: CORS off; "*" allows any origin
    # Connect and gRPC-Web clients send connect-*, x-grpc-web and x-user-agent (docs/protocols.md)
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "x-request-id",
                                      "grpc-timeout", "x-timeout", "connect-protocol-version",
                                      "connect-timeout-ms", "x-grpc-web", "x-user-agent")
    expose_headers: tuple[str, ...] = ("x-request-id", "grpc-status", "grpc-message",
                                       "grpc-status-details-bin", "x-gateway-backend",
                                       "server-timing")
    allow_credentials: bool = False
    max_age_s: int = Field(default=600, ge=0)


class FieldBehaviorChecks(_Model):
    """google.api.field_behavior enforced at the edge (docs/validation.md)."""

    enabled: bool = True  # REQUIRED missing -> 400; OUTPUT_ONLY handled as below
    output_only: Literal["clear", "reject"] = "clear"  # AIP-203: cleared, or a 400
    immutable: Literal["allow", "reject"] = "allow"  # an update_mask naming an IMMUTABLE field


class Transcoding(_Model):
    use_proto_names: bool = False  # reply keys as proto names instead of lowerCamelCase
    emit_unpopulated: bool = False  # reply fields with default values too
    ignore_unknown_query: bool = False  # 400 by default, as the proto3 JSON parsers
    ignore_unknown_body_fields: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(default=64, gt=0, le=512)
    # "." / ".." as (a "/"-piece of) a decoded path value, e.g. from "%2E%2E%2F": refused (400)
    # unless allowed; control characters in path and query values are refused always.
    allow_dot_segments: bool = False
    forward_headers: tuple[str, ...] = ()  # request headers sent on as metadata (lower-case)
    success_status: Mapping[str, int] = {}  # "/pkg.Service/Method" -> 2xx status
    openapi: bool = True  # serve /openapi.json and /docs
    # What leaves the gateway (docs/security.md). Backend metadata keys (or fnmatch patterns)
    # sent on as Grpc-Metadata-<key> / Grpc-Trailer-<key>; none by default.
    response_headers: tuple[str, ...] = ()
    # INTERNAL / UNKNOWN / DATA_LOSS messages: "generic" (with the request id; the original
    # is logged) or "backend" (passed through).
    error_messages: Literal["generic", "backend"] = "generic"
    server_header: str = Field(default="grpc-edge-gateway", min_length=1, max_length=128,
                               pattern=r"^[\x21-\x7e][\x20-\x7e]*$")  # no library versions
    backend_header: bool = True  # X-Gateway-Backend: the backend's name in this config
    # A bigger backend reply is refused by the backend channels before it is read (both
    # edges): 502 on REST, RESOURCE_EXHAUSTED on the gRPC edge.
    max_reply_bytes: int = Field(default=16 * 1024 * 1024, gt=0, le=2**31 - 1)
    # A body field the path also binds, with another value: the path's value wins (as
    # grpc-gateway and Envoy), or "reject" answers 400. The same value is always accepted.
    path_body_conflict: Literal["path_wins", "reject"] = "path_wins"
    field_behavior: FieldBehaviorChecks = FieldBehaviorChecks()
    protovalidate: bool = True  # buf.validate rules of every request type that has them

    @field_validator("forward_headers", "response_headers")
    @classmethod
    def _lower(cls, headers: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(h.lower() for h in headers)

    @field_validator("success_status")
    @classmethod
    def _success(cls, statuses: Mapping[str, int]) -> Mapping[str, int]:
        for method, status in statuses.items():
            if not method.startswith("/") or method.count("/") != 2:
                raise ValueError(f"{method!r} is not a method path like /pkg.Service/Method")
            if not 200 <= status < 300:
                raise ValueError(f"{method}: {status} is not a 2xx status")
        return statuses


class GrpcEdge(_Model):
    """What the gRPC edge passes on from backends (docs/security.md)."""

    # Backend metadata keys (or fnmatch patterns) never relayed to gRPC clients; the rest is.
    metadata_deny: tuple[str, ...] = (
        "set-cookie", "set-cookie2", "server", "x-powered-by", "via", "alt-svc",
        "x-envoy-*", "x-forwarded-*", "proxy-*", "connection", "keep-alive", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    )
    error_messages: Literal["generic", "backend"] = "backend"  # internal callers: as sent
    backend_metadata: bool = True  # x-gateway-backend in the initial metadata

    @field_validator("metadata_deny")
    @classmethod
    def _lower(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(k.lower() for k in keys)


class Tracing(_Model):
    """OpenTelemetry spans: one per request, one per backend call. "none" takes tracing out."""

    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"  # OTLP over HTTP (protobuf)
    service_name: str = Field(default="grpc-edge-gateway", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)  # of traces the client did not sample


class Metrics(_Model):
    enabled: bool = True  # collected only when listen.ops is set: nothing else serves them


class AccessLog(_Model):
    enabled: bool = True  # one JSON line per request (serve: stdout, batched within 100 ms)


class Explain(_Model):
    """`X-Gateway-Explain` (docs/explain.md): a caller with one of `roles`, or who sends the admin
    token as the header's value, gets each policy decision of the request explained."""

    enabled: bool = False  # off: the header means nothing and costs nothing
    roles: tuple[str, ...] = ()  # a principal with one of these may ask
    admin_token: bool = True  # the admin API's token (config `admin`) may ask, as the value
    buffer_entries: int = Field(default=256, ge=1, le=10_000)  # last explained requests kept
    buffer_bytes: int = Field(default=4 << 20, ge=64 << 10, le=256 << 20)  # their JSON, at most


class Observability(_Model):
    tracing: Tracing = Tracing()
    metrics: Metrics = Metrics()
    access_log: AccessLog = AccessLog()
    explain: Explain = Explain()


class StaticKey(_Model):
    """A verification key given inline: a public key in PEM, or a JWK (RFC 7517) object."""

    kid: str | None = None
    pem: str | None = None
    pem_env: str | None = Field(default=None, min_length=1)  # the PEM from this env variable
    jwk: Mapping[str, object] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> StaticKey:
        if sum(form is not None for form in (self.pem, self.pem_env, self.jwk)) != 1:
            raise ValueError("set exactly one of pem, pem_env or jwk")
        return self


# How a list claim (roles, scopes) is written in the token: a JSON array of strings, or one
# string of names separated by spaces (OAuth's "scope"). Any other shape is refused (401).
ClaimFormat = Literal["list", "space_separated"]

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                    "ES256", "ES384", "ES512", "EdDSA"]  # asymmetric only: never none, never HS*


class Issuer(_Model):
    """One token issuer (T-25..T-28). Keys: static, a JWKS URL, or OIDC discovery."""

    issuer: str  # the exact "iss"
    audiences: tuple[str, ...] = Field(min_length=1)  # "aud" must hold one of these
    algorithms: tuple[Algorithm, ...] = ("RS256", "ES256")
    keys: tuple[StaticKey, ...] = ()
    jwks_url: str | None = None
    discovery: bool = False  # find jwks_uri at <issuer>/.well-known/openid-configuration
    jwks_ttl_s: float = Field(default=600.0, gt=0)  # Envoy's 10 min
    jwks_min_refresh_interval_s: float = Field(default=30.0, gt=0)  # unknown-kid cooldown
    jwks_fetch_timeout_s: float = Field(default=1.0, gt=0)
    clock_skew_s: float = Field(default=30.0, ge=0, le=60)
    max_lifetime_s: float = Field(default=86400.0, gt=0)
    subject_claim: str = "sub"
    roles_claim: str = "roles"
    roles_claim_format: ClaimFormat = "list"
    scopes_claim: str = "scope"
    scopes_claim_format: ClaimFormat = "space_separated"  # RFC 8693 / 9068 "scope"
    max_claim_values: int = Field(default=64, ge=1, le=1024)  # roles / scopes per token
    max_claim_value_chars: int = Field(default=128, ge=1, le=1024)  # one role or scope
    claims_to_metadata: Mapping[str, str] = {}  # claim -> metadata key (x-user-*)

    @model_validator(mode="after")
    def _has_keys(self) -> Issuer:
        if not self.keys and self.jwks_url is None and not self.discovery:
            raise ValueError("give keys, jwks_url or discovery: true")
        return self


class ApiKey(_Model):
    """An API key, stored as the hex SHA-256 of the key, never the key itself."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    owner: str = Field(min_length=1)  # becomes x-user-id
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


class FailedAuthLimit(_Model):
    """Failed authentications per client IP, counted before any token is parsed (429 past it)."""

    enabled: bool = True
    rate_per_s: float = Field(default=0.5, gt=0)  # refill: one more failure every 2 s
    burst: int = Field(default=20, ge=1)  # failures an address may make at once


class Auth(_Model):
    issuers: tuple[Issuer, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    api_key_header: str = "x-api-key"
    # Send the client's Authorization / API-key header on to backends (both edges); off by
    # default, so a backend never sees a bearer token it has no use for.
    forward_credentials: bool = False
    max_token_bytes: int = Field(default=4096, gt=0, le=8192)  # T-26
    # Kept in rate_limits.store (memory, or Redis shared by the instances).
    failed_auth_limit: FailedAuthLimit = FailedAuthLimit()
    # Keys a client may never send; stripped on both edges before authentication (T-30).
    gateway_owned: tuple[str, ...] = ("x-user-*", "x-gateway-*", "x-forwarded-*", "x-envoy-*")
    # Sign the injected identity (HMAC-SHA256) so backends can tell it came from the gateway.
    # The secret comes from this environment variable, never from the file.
    identity_hmac_secret_env: str | None = None


Access = Literal["public", "authenticated"]


class AccessRule(_Model):
    match: str  # fnmatch over "/pkg.Service/Method"
    access: Access = "authenticated"
    roles: tuple[str, ...] = ()  # any one of these
    scopes: tuple[str, ...] = ()  # any one of these


class Authorization(_Model):
    default: Access = "public"
    rules: tuple[AccessRule, ...] = ()  # first match wins


class RateLimitRule(_Model):
    match: str = "*"  # fnmatch over "/pkg.Service/Method"
    key: Literal["ip", "user", "api_key", "route"] = "ip"
    rate_per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class RedisLimits(_Model):
    """Where the shared buckets live: one Redis server (`url`), a Redis Cluster (`url` or
    `cluster_nodes`: nodes to discover it from), or the master a Sentinel group names."""

    mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    url: str = "redis://127.0.0.1:6379/0"  # standalone; cluster: one node; sentinel: unused
    cluster_nodes: tuple[str, ...] = ()  # cluster: host:port of nodes to start from (else url)
    sentinels: tuple[str, ...] = ()  # sentinel: host:port of each Sentinel
    sentinel_service: str = "mymaster"  # sentinel: the name of the monitored master
    timeout_s: float = Field(default=0.02, gt=0, le=0.5)  # T-21: Envoy's 20 ms
    failure_mode: Literal["open", "closed"] = "open"

    @field_validator("cluster_nodes", "sentinels")
    @classmethod
    def _nodes(cls, nodes: tuple[str, ...]) -> tuple[str, ...]:
        for node in nodes:
            host, sep, port = node.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{node!r} is not host:port")
        return nodes

    @model_validator(mode="after")
    def _sentinels_named(self) -> RedisLimits:
        if self.mode == "sentinel" and not self.sentinels:
            raise ValueError("mode sentinel: list the Sentinels in sentinels (host:port)")
        return self


class RateLimits(_Model):
    store: Literal["memory", "redis"] = "memory"
    redis: RedisLimits = RedisLimits()
    rules: tuple[RateLimitRule, ...] = ()  # first match wins; no match = no limit
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is believed
    max_keys: int = Field(default=100_000, ge=1)  # in-memory buckets kept (LRU) (T-24)


# A part's request field gets: a constant (number, boolean, or a 'quoted' string), or one of
# "request.<field path>", "identity.user_id", "<part>.<field path>" (docs/bff.md).
PartSource = bool | int | float | str


class AggregatePart(_Model):
    """One backend call of an aggregate; its name is the response field it fills."""

    method: str  # "/pkg.Service/Method", a unary method served by a backend
    request: Mapping[str, PartSource] = {}  # request field path -> source
    required: bool = True  # False: a failure leaves the field empty and is reported in errors
    timeout_s: float | None = Field(default=None, gt=0)  # capped by the aggregate's remaining
    max_calls: int = Field(default=16, ge=1, le=64)  # a part fanned out over a list (T-41)


class Aggregate(_Model):
    """A BFF aggregate: a proto method the gateway serves by running its parts (a DAG)."""

    parts: Mapping[str, AggregatePart] = Field(min_length=1)
    errors_field: str = "errors"  # repeated {part, code, message} of the failed optional parts
    timeout_s: float | None = Field(default=None, gt=0)  # whole call; capped by the client's
    max_parallel: int = Field(default=16, ge=1, le=64)  # calls in flight per request (T-41)


class AdminApi(_Model):
    """The admin API on the ops listener. Its bearer token is given as the token's hex SHA-256,
    in the file or in an environment variable, never as the token itself."""

    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    token_sha256_env: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> AdminApi:
        if (self.token_sha256 is None) == (self.token_sha256_env is None):
            raise ValueError("set exactly one of token_sha256 or token_sha256_env")
        return self


class GatewayConfig(_Model):
    listen: Listeners = Listeners()
    connections: Connections = Connections()  # limits on both listeners (docs/security.md)
    descriptors: Descriptors
    backends: Mapping[str, Backend] = Field(min_length=1)
    transcoding: Transcoding = Transcoding()
    grpc_edge: GrpcEdge = GrpcEdge()
    cors: Cors = Cors()
    observability: Observability = Observability()
    auth: Auth = Auth()
    authorization: Authorization = Authorization()
    rate_limits: RateLimits = RateLimits()
    aggregates: Mapping[str, Aggregate] = {}  # "/pkg.Service/Method" -> parts
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    admin: AdminApi | None = None  # the admin API (reload, status); needs listen.ops
    # On SIGTERM: readiness off, listeners closed, in-flight calls (streams too) get this long.
    shutdown_grace_s: float = Field(default=15.0, ge=0)

    @model_validator(mode="after")
    def _admin_on_ops(self) -> GatewayConfig:
        if self.admin is not None and self.listen.ops is None:
            raise ValueError("admin: the admin API is served on the ops listener; set listen.ops")
        return self

    def backend_for(self, service: str) -> str | None:
        """The name of the backend serving a proto service, or None."""
        for name, backend in self.backends.items():
            if backend.serves(service):
                return name
        return None


def load(data: object, base_dir: Path | None = None) -> GatewayConfig:
    """Validate parsed YAML/JSON; relative paths resolve against base_dir."""
    try:
        return GatewayConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_file(path: Path) -> GatewayConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return load(data, base_dir=path.resolve().parent)


def identity_secret(auth: Auth) -> bytes | None:
    """The HMAC key for signed identity metadata, from the environment variable auth names.

    None when no variable is named; a named variable that is unset or shorter than 16 bytes is
    a ConfigError, so a gateway never starts sending unsigned identity its backends expect signed.
    """
    name = auth.identity_hmac_secret_env
    if name is None:
        return None
    secret = os.environ.get(name, "").encode("utf-8")
    if len(secret) < 16:
        raise ConfigError(f"auth.identity_hmac_secret_env: ${name} must hold at least 16 bytes")
    return secret


def static_key_pem(key: StaticKey) -> str | None:
    """A static key's PEM: from the file, or from the environment variable `pem_env` names (a
    key handed to the deployment); None for a JWK. A named variable that is unset is a
    ConfigError (at start or reload)."""
    if key.pem_env is None:
        return key.pem
    value = os.environ.get(key.pem_env, "").strip()
    if not value:
        raise ConfigError(f"auth.issuers.keys.pem_env: ${key.pem_env} must hold a PEM public key")
    return value


def admin_token_digest(admin: AdminApi) -> bytes:
    """The SHA-256 (32 bytes) an admin bearer token must hash to, from the file or the environment.

    A named variable that is unset or not 64 hex digits is a ConfigError (at start or reload).
    """
    if admin.token_sha256 is not None:
        return bytes.fromhex(admin.token_sha256)
    name = admin.token_sha256_env or ""
    value = os.environ.get(name, "").strip().lower()
    if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ConfigError(f"admin.token_sha256_env: ${name} must hold a hex SHA-256 (64 digits)")
    return bytes.fromhex(value)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{key}: {error['msg']}")
    return "invalid config: " + "; ".join(problems)
