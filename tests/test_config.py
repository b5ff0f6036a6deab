"""Config: the shipped example is valid, and a bad config names the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load, load_file
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_example_is_valid_and_resolves_paths() -> None:
    config = load_file(ROOT / "deploy" / "gateway.yaml")
    assert config.descriptors.descriptor_set is not None
    assert config.descriptors.descriptor_set.resolve() == ROOT / "generated" / "descriptors.binpb"
    assert config.backend_for("notifications.v1.Notifications") == "notifications"
    assert config.backend_for("billing.v1.Billing") is None
    assert config.transcoding.success_status["/users.v1.Users/CreateUser"] == 201


BASE = {"descriptors": {"descriptor_set": "x.binpb"},
        "backends": {"users": {"services": ["users.v1.Users"], "addresses": ["127.0.0.1:1"]}}}


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        pytest.param({"listen": {"rest": {"port": 70000}}}, "listen.rest.port", id="port-range"),
        pytest.param({"backends": {"u": {"services": ["x"], "addresses": ["nohost"]}}},
                     "backends.u.addresses", id="bad-address"),
        pytest.param({"backends": {}}, "backends", id="no-backends"),
        pytest.param({"transcoding": {"max_body_bytes": 0}}, "transcoding.max_body_bytes",
                     id="zero-body"),
        pytest.param({"transcoding": {"success_status": {"/a.B/C": 302}}}, "302",
                     id="non-2xx-success"),
        pytest.param({"transcodng": {}}, "transcodng: Extra inputs", id="typo-key"),
        pytest.param({"descriptors": {}}, "descriptor_set or proto_files", id="no-schema"),
    ],
)
def test_bad_config_names_key_and_problem(patch: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **patch})
    assert needle in str(caught.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file(bad)
