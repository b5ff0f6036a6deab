"""generated/ must be exactly what scripts/codegen.py makes from protos/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_is_in_sync_with_protos() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/codegen.py", "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_generated_modules_import() -> None:
    from notifications.v1 import notifications_pb2_grpc
    from orders.v1 import orders_pb2
    from users.v1 import users_pb2

    user = users_pb2.User(id="u-1", email="a@example.com")
    assert users_pb2.User.FromString(user.SerializeToString()) == user
    assert orders_pb2.Money(amount_minor=1999).amount_minor == 1999
    assert hasattr(notifications_pb2_grpc, "NotificationsStub")


def test_descriptor_set_carries_comments_and_imports() -> None:
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(
        (ROOT / "generated" / "descriptors.binpb").read_bytes()
    )
    names = {f.name for f in fds.file}
    assert {"users/v1/users.proto", "google/api/http.proto"} <= names
    assert "google/protobuf/timestamp.proto" in names
    users = next(f for f in fds.file if f.name == "users/v1/users.proto")
    comments = [loc.leading_comments for loc in users.source_code_info.location]
    assert any("GetUser returns one user" in c for c in comments)
