"""`python -m gateway check --config FILE` in a real process: a valid config prints its route
table (exit 0) without serving; a config with a mistake exits 2 naming it, and prints no table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from gateway.demo import demo_public_pem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "gateway.yaml"


def check(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_a_valid_config_prints_one_line_per_route() -> None:
    done = check(EXAMPLE, GATEWAY_ISSUER_PUBLIC_KEY=demo_public_pem())
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["HTTP", "PATH", "METHOD", "BACKEND", "AUTH", "RATE", "LIMIT",
                              "STATUS", "TIMEOUT"]
    delete = next(row for row in rows if row.startswith("DELETE"))
    assert delete.split() == ["DELETE", "/v1/users/{id}", "/users.v1.Users/DeleteUser", "users",
                              "authenticated", "roles=admin", "(rule", "0)", "50/s", "burst",
                              "100", "per", "ip", "(rule", "0)", "204", "15s"]
    get = next(row for row in rows if "/users.v1.Users/GetUser" in row)
    assert get.split()[:2] == ["GET", "/v1/users/{id}"] and "public (default)" in get
    overview = next(row for row in rows if "/dashboard.v1.Dashboard/GetOverview" in row)
    assert "aggregate (4 parts)" in overview
    assert len(rows) == 14  # every google.api.http binding of the served services
    assert "deploy/gateway.yaml is valid: 14 routes" in done.stderr


def test_a_misspelled_rule_exits_2_naming_the_key_and_the_closest_method(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["descriptors"]["descriptor_set"] = str(ROOT / "generated" / "descriptors.binpb")
    data["authorization"]["rules"][0]["match"] = "/users.v1.Users/DeleteUsr"
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    done = check(config, GATEWAY_ISSUER_PUBLIC_KEY=demo_public_pem())
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "gateway: authorization.rules.0.match: '/users.v1.Users/DeleteUsr' matches no method "
        "the gateway serves (did you mean '/users.v1.Users/DeleteUser'?)")


def test_a_missing_key_variable_exits_2_naming_it() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "GATEWAY_ISSUER_PUBLIC_KEY"}
    done = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(EXAMPLE)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 2
    assert "pem_env: $GATEWAY_ISSUER_PUBLIC_KEY must hold a PEM public key" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_shape_error_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("descriptors: {descriptor_set: x.binpb}\nbackends: {u: {services: [a]}}\n")
    done = check(config)
    assert done.returncode == 2
    assert "backends.u.addresses" in done.stderr
