"""The transcoding core stays pure: importing it loads no I/O library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    """Every module of gateway.<package>, by name."""
    return sorted(
        f"gateway.{package}.{p.stem}"
        for p in (ROOT / "gateway" / package).glob("*.py")
        if p.stem != "__init__"
    )


def _io_libraries_loaded(modules: list[str]) -> str:
    """The I/O libraries a fresh interpreter holds after importing `modules`, comma-separated."""
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(','.join(m for m in ('grpc', 'aiohttp', 'redis') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_transcode_imports_no_io_library() -> None:
    modules = _modules("transcode")
    assert "gateway.transcode.schema" in modules
    assert _io_libraries_loaded(modules) == ""


def test_contract_checks_import_no_io_library() -> None:
    # gateway.contract runs inside the policy chain, but is pure like the transcoder.
    assert _io_libraries_loaded(_modules("contract")) == ""
