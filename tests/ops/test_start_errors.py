"""Start errors in one line: a port in use, a missing file, a bad TLS key stop `serve`,
`serve --workers 2` and the demo before anything starts, with exit code 2 and one line on stderr
naming the listener, key or flag; no traceback, not grpc's own log line."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.certs import make_authority
from tests.ops.conftest import ROOT, write_config

DESCRIPTORS = str(ROOT / "generated" / "descriptors.binpb")


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def config(**listen: Any) -> dict[str, Any]:
    return {
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}, **listen},
        "descriptors": {"descriptor_set": DESCRIPTORS},
        # never called: the start stops before any backend is
        "backends": {"users": {"services": ["users.v1.Users"], "addresses": ["127.0.0.1:9"]}},
    }


async def one_line_exit_2(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2, (stdout, stderr)
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert stdout == b""
    return lines[0]


@pytest.mark.parametrize(("listener", "workers"), [
    ("rest", ()), ("grpc", ()), ("ops", ()),
    ("grpc", ("--workers", "2")),  # the supervisor probes; ops of later workers: below
], ids=["rest", "grpc", "ops", "grpc-workers"])
async def test_a_port_in_use_is_one_line_naming_the_listener(
        tmp_path: Path, listener: str, workers: tuple[str, ...]) -> None:
    path = tmp_path / "gateway.yaml"
    with taken_port() as port:
        write_config(path, config(**{listener: {"host": "127.0.0.1", "port": port}}))
        said = await one_line_exit_2("serve", "--config", str(path), *workers)
    assert said == (f"gateway: listen.{listener}: cannot listen on 127.0.0.1:{port}: "
                    "address already in use")


async def test_the_ops_port_of_a_later_worker_is_probed_too(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    with taken_port() as port:  # worker 1 would take P + 1
        write_config(path, config(ops={"host": "127.0.0.1", "port": port - 1}))
        said = await one_line_exit_2("serve", "--config", str(path), "--workers", "2")
    assert said.startswith(f"gateway: listen.ops: cannot listen on 127.0.0.1:{port}:")


@pytest.mark.parametrize("listener", ["rest", "grpc"])
async def test_a_missing_or_wrong_tls_key_is_one_line_naming_the_key(
        tmp_path: Path, listener: str) -> None:
    authority = make_authority(tmp_path)
    pair, other = authority.issue(tmp_path, "server"), authority.issue(tmp_path, "other")
    path = tmp_path / "gateway.yaml"
    missing = tmp_path / "absent.key"
    tls = {"cert_file": str(pair.cert), "key_file": str(missing)}
    write_config(path, config(**{listener: {"host": "127.0.0.1", "port": 0, "tls": tls}}))
    said = await one_line_exit_2("serve", "--config", str(path))
    assert said == (f"gateway: listen.{listener}.tls.key_file: cannot read {missing}: "
                    "No such file or directory")

    tls = {"cert_file": str(pair.cert), "key_file": str(other.key)}  # another cert's key
    write_config(path, config(**{listener: {"host": "127.0.0.1", "port": 0, "tls": tls}}))
    said = await one_line_exit_2("serve", "--config", str(path), "--workers", "2")
    assert said.startswith(f"gateway: listen.{listener}.tls.key_file: {other.key} is not the "
                           f"private key of {pair.cert}")


async def test_the_demo_names_the_flag_of_a_taken_port() -> None:
    with taken_port() as taken:
        said = await one_line_exit_2("demo", "--rest-port", "0", "--grpc-port", "0",
                                     "--ops-port", str(taken))
    assert said == (f"gateway: --ops-port: listen.ops: cannot listen on 127.0.0.1:{taken}: "
                    "address already in use")


async def test_a_proto_file_under_no_import_path_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    write_config(path, {**config(), "descriptors": {
        "proto_files": ["shop/v1/shop.proto"], "import_paths": [str(tmp_path)]}})
    said = await one_line_exit_2("serve", "--config", str(path))
    assert said == (f"gateway: descriptors.proto_files: shop/v1/shop.proto is under none of "
                    f"the import_paths ({tmp_path})")


async def test_a_bad_backend_ca_or_client_key_is_one_line_naming_the_key(tmp_path: Path) -> None:
    authority = make_authority(tmp_path)
    client, other = (authority.issue(tmp_path, name, client=True) for name in ("gw", "other"))
    path = tmp_path / "gateway.yaml"
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    cases = [
        ({"ca_file": str(not_pem)}, f"backends.users.tls.ca_file: {not_pem} holds no CA "
                                    "certificate"),
        ({"ca_file": str(authority.cert), "cert_file": str(client.cert),
          "key_file": str(other.key)},
         f"backends.users.tls.key_file: {other.key} is not the private key of {client.cert}"),
    ]
    for tls, expected in cases:
        settings = config()
        settings["backends"]["users"]["tls"] = tls
        write_config(path, settings)
        said = await one_line_exit_2("serve", "--config", str(path))
        assert said.startswith(f"gateway: {expected}"), said
