"""The gateway's configuration: one YAML file, validated once against a typed, frozen schema.

The only module that reads files or the environment for settings. Every model forbids unknown
keys, so a typo is an error naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import ConfigError

Port = Annotated[int, Field(ge=0, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Listener(_Model):
    host: str = "127.0.0.1"
    port: Port


class Listeners(_Model):
    rest: Listener | None = Listener(port=8080)
    grpc: Listener | None = Listener(port=9090)


class Descriptors(_Model):
    """Where the proto schema comes from: a FileDescriptorSet, or .proto files compiled at start."""

    descriptor_set: Path | None = None
    proto_files: tuple[Path, ...] = ()  # named relative to an import path, as protoc wants them
    import_paths: tuple[Path, ...] = ()

    @model_validator(mode="after")
    def _one_source(self) -> Descriptors:
        if (self.descriptor_set is None) == (not self.proto_files):
            raise ValueError("set exactly one of descriptor_set or proto_files")
        return self


class Backend(_Model):
    """One upstream: the proto services it serves and where its instances listen."""

    services: tuple[str, ...] = Field(min_length=1)  # full names or fnmatch patterns
    addresses: tuple[str, ...] = Field(min_length=1)  # host:port
    # Deadline of each call when the client sets none, and the cap on what a client may ask for
    # (Envoy's route default is 15 s).
    timeout_s: float = Field(default=15.0, gt=0)

    @field_validator("addresses")
    @classmethod
    def _host_port(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        for address in addresses:
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{address!r} is not host:port")
        return addresses

    def serves(self, service: str) -> bool:
        return any(fnmatch.fnmatchcase(service, pattern) for pattern in self.services)


class Cors(_Model):
    allow_origins: tuple[str, ...] = ()  # empty: CORS off; "*" allows any origin
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "x-request-id",
                                      "grpc-timeout", "x-timeout")
    expose_headers: tuple[str, ...] = ("x-request-id", "grpc-status", "grpc-message")
    allow_credentials: bool = False
    max_age_s: int = Field(default=600, ge=0)


class Transcoding(_Model):
    use_proto_names: bool = False  # reply keys as proto names instead of lowerCamelCase
    emit_unpopulated: bool = False  # reply fields with default values too
    ignore_unknown_query: bool = False  # 400 by default, as the proto3 JSON parsers
    ignore_unknown_body_fields: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(default=64, gt=0, le=512)
    forward_headers: tuple[str, ...] = ()  # request headers sent on as metadata (lower-case)
    forward_authorization: bool = False  # forward the Authorization header itself
    success_status: Mapping[str, int] = {}  # "/pkg.Service/Method" -> 2xx status
    openapi: bool = True  # serve /openapi.json and /docs

    @field_validator("forward_headers")
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


class GatewayConfig(_Model):
    listen: Listeners = Listeners()
    descriptors: Descriptors
    backends: Mapping[str, Backend] = Field(min_length=1)
    transcoding: Transcoding = Transcoding()
    cors: Cors = Cors()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def backend_for(self, service: str) -> str | None:
        """The name of the backend serving a proto service, or None."""
        for name, backend in self.backends.items():
            if backend.serves(service):
                return name
        return None


def load(data: object, base_dir: Path | None = None) -> GatewayConfig:
    """Validate parsed YAML/JSON; relative paths resolve against base_dir."""
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    return config


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


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{key}: {error['msg']}")
    return "invalid config: " + "; ".join(problems)


def _resolve_paths(config: GatewayConfig, base_dir: Path) -> GatewayConfig:
    d = config.descriptors
    resolve = base_dir.joinpath
    descriptors = d.model_copy(update={
        "descriptor_set": resolve(d.descriptor_set) if d.descriptor_set else None,
        "import_paths": tuple(resolve(p) for p in d.import_paths),
    })
    return config.model_copy(update={"descriptors": descriptors})
