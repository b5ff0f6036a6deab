"""Channels to backend instances: grpc.aio options for a proxy, plaintext or TLS / mTLS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from gateway.config import BackendTls
from gateway.errors import ConfigError

# Channel options for a proxy: keepalive so dead peers are noticed, and no retries of the
# channel's own (retries are the gateway's policy). The receive cap is the config's
# transcoding.max_reply_bytes: grpc refuses a bigger reply from its length prefix
# (RESOURCE_EXHAUSTED, which status.py makes a 502). What the backend already sent is still
# read and dropped, up to the stream's flow-control window; grpc's BDP probe widens that window
# without bound while a big reply streams in (a refused 20 MiB reply raised the peak RSS by up
# to 30 MiB and left +8 MiB), so the window is fixed at 1 MiB per stream instead: +1-2 MiB, and
# 1 MiB per round trip is ~1 GB/s at 1 ms.
CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.http2.bdp_probe", 0),  # a fixed window ...
    ("grpc.http2.lookahead_bytes", 1024 * 1024),  # ... of 1 MiB per stream
)
MAX_RECEIVE = "grpc.max_receive_message_length"


def credentials(backend: str, tls: BackendTls | None) -> grpc.ChannelCredentials | None:
    """TLS credentials from the backend's files, read once; None means plaintext."""
    if tls is None:
        return None
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError(f"backends.{backend}.tls: give both cert_file and key_file, or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(backend, tls.ca_file),
        private_key=_read(backend, tls.key_file),
        certificate_chain=_read(backend, tls.cert_file),
    )


def open_channel(address: str, creds: grpc.ChannelCredentials | None,
                 server_name: str | None = None, authority: str | None = None,
                 max_reply_bytes: int | None = None) -> grpc.aio.Channel:
    """`authority`: the DNS name an address was resolved from (dns: entries). It is the
    :authority of the calls, and the name the backend's certificate must hold unless
    `server_name` says otherwise (gRPC's own dns resolver does the same)."""
    options = [*CHANNEL_OPTIONS]
    if max_reply_bytes is not None:
        options = [(k, v) for k, v in options if k != MAX_RECEIVE]
        options.append((MAX_RECEIVE, max_reply_bytes))
    if authority:
        options.append(("grpc.default_authority", authority))
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    name = server_name or (authority.rpartition(":")[0] if authority else None)
    if name:
        options.append(("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(address, creds, options=options)


def _read(backend: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"backends.{backend}.tls: cannot read {path}: {exc.strerror}") from None
