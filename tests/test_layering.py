"""The transcoding core stays pure: importing it loads no I/O library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_transcode_imports_no_io_library() -> None:
    modules = sorted(
        f"gateway.transcode.{p.stem}"
        for p in (ROOT / "gateway" / "transcode").glob("*.py")
        if p.stem != "__init__"
    )
    assert "gateway.transcode.schema" in modules
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(','.join(m for m in ('grpc', 'aiohttp', 'redis') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_contract_checks_import_no_io_library() -> None:
    # gateway.contract runs inside the policy chain, but is pure like the transcoder.
    modules = sorted(
        f"gateway.contract.{p.stem}"
        for p in (ROOT / "gateway" / "contract").glob("*.py")
        if p.stem != "__init__"
    )
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(','.join(m for m in ('grpc', 'aiohttp', 'redis') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
