"""Start errors in one line: before anything starts, every listener's port is probed, every TLS
pair (listeners, backends) loaded and every .proto file found, so a port in use, a missing file
or a bad key is one StartError naming the listener or key (printed as one line, exit 2), never a
traceback from deep in aiohttp or grpc (whose core also logs its own bind failure to stderr) nor
protoc's own complaint.

A probe binds the way the listener will (SO_REUSEADDR, never SO_REUSEPORT) and closes at once,
so a port a running gateway holds, even one shared by `--workers` (SO_REUSEPORT), fails here:
two gateways on one port must not silently split its traffic.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Collection, Iterator
from pathlib import Path

from gateway.config import BackendTls, GatewayConfig, Listener, ServerTls
from gateway.errors import ConfigError

LISTENERS = ("rest", "grpc", "ops")

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (a port below 1024 needs privileges)",
    errno.EADDRNOTAVAIL: "no such local address",
}


class StartError(ConfigError):
    """The gateway cannot start with this config on this host; `key` names the listener or key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def preflight(config: GatewayConfig, shared: Collection[str] = (), ops_ports: int = 1) -> None:
    """Check each listener's TLS files and probe its port, except the `shared` ones (held by a
    `--workers` supervisor, which probed them itself). `ops_ports` > 1: the ops listener's port
    P stands for P .. P + ops_ports - 1 (one per worker)."""
    check_protos(config)
    for name, backend in config.backends.items():
        if backend.tls is not None:
            check_backend_tls(f"backends.{name}.tls", backend.tls)
    for name, listener in configured(config):
        key = f"listen.{name}"
        if listener.tls is not None:
            check_tls(key, listener.tls)
        if name in shared:
            continue
        count = ops_ports if name == "ops" and listener.port != 0 else 1
        for port in range(listener.port, listener.port + count):
            probe(key, listener.host, port)


def configured(config: GatewayConfig) -> Iterator[tuple[str, Listener]]:
    for name in LISTENERS:
        listener: Listener | None = getattr(config.listen, name)
        if listener is not None:
            yield name, listener


def probe(key: str, host: str, port: int) -> None:
    """Raise StartError if `host:port` cannot be bound now; port 0 always can."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartError(key, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio and grpc do
        try:
            sock.bind(address)
        except OSError as exc:
            reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
            raise StartError(key, f"cannot listen on {host}:{port}: {reason}") from None


def check_tls(key: str, tls: ServerTls) -> None:
    """Each file readable, and the key the certificate's (ssl checks the pair as grpc would)."""
    for field, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file),
                        ("client_ca_file", tls.client_ca_file)):
        if path is not None:
            _readable(f"{key}.tls.{field}", path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(f"{key}.tls.key_file", context, tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        _load_ca(f"{key}.tls.client_ca_file", context, tls.client_ca_file)


def check_protos(config: GatewayConfig) -> None:
    """Each of descriptors.proto_files under one of the import paths (else protoc's own
    multi-line complaint); google/ files are built in."""
    descriptors = config.descriptors
    for name in descriptors.proto_files:
        if name.parts[:1] == ("google",) or name.is_file() or any(
                (base / name).is_file() for base in descriptors.import_paths):
            continue
        where = ", ".join(str(base) for base in descriptors.import_paths) or "none given"
        raise StartError("descriptors.proto_files",
                         f"{name} is under none of the import_paths ({where})")


def check_backend_tls(key: str, tls: BackendTls) -> None:
    """The CA file holds certificates, the client key is the client certificate's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        _readable(f"{key}.ca_file", tls.ca_file)
        _load_ca(f"{key}.ca_file", context, tls.ca_file)
    if tls.cert_file is not None and tls.key_file is not None:
        _readable(f"{key}.cert_file", tls.cert_file)
        _readable(f"{key}.key_file", tls.key_file)
        _load_pair(f"{key}.key_file", context, tls.cert_file, tls.key_file)


def _load_pair(key: str, context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise StartError(key, f"{key_file} is not the private key of {cert_file} "
                         f"({exc.reason or 'unreadable PEM'})") from None


def _load_ca(key: str, context: ssl.SSLContext, ca_file: Path) -> None:
    try:
        context.load_verify_locations(ca_file)
    except ssl.SSLError as exc:
        raise StartError(key, f"{ca_file} holds no CA certificate "
                         f"({exc.reason or 'unreadable PEM'})") from None


def _readable(key: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise StartError(key, f"cannot read {path}: {exc.strerror}") from None
