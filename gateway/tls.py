"""TLS material for the listeners: an ssl context for aiohttp, credentials for grpc.aio."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from gateway.config import ServerTls
from gateway.errors import ConfigError


def rest_ssl_context(tls: ServerTls) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file is not None:
            context.load_verify_locations(tls.client_ca_file)
            context.verify_mode = (ssl.CERT_REQUIRED if tls.require_client_cert
                                   else ssl.CERT_OPTIONAL)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"listen.rest.tls: {exc}") from None
    return context


def grpc_server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    key = _read(tls.key_file, "key_file")
    cert = _read(tls.cert_file, "cert_file")
    client_ca = _read(tls.client_ca_file, "client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca,
        require_client_auth=client_ca is not None and tls.require_client_cert,
    )


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"listen.grpc.tls.{key}: cannot read {path}: {exc.strerror}") from None
