"""Go programs of the bench, built on first use: a module directory under bench/peers (main.go,
go.mod, go.sum) built into bench/out/peers/<name>, rebuilt when a content hash of its sources
(and whatever else the build reads) changes. Skipped with a message when `go` is missing.

The build runs before any measurement (Scenario.unavailable is asked first) and leaves no
process behind: GOTELEMETRY=off keeps the go command from starting its detached telemetry
child, which would otherwise run beside the first measurements.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "bench" / "peers"
BUILD_TIMEOUT_S = 900.0
Steps = Callable[[str, "GoProgram"], list[tuple[str, list[str]]]]


def go_env() -> dict[str, str]:
    """The environment of every go command run here (no telemetry child left running)."""
    return {**os.environ, "GOTELEMETRY": "off", "GOFLAGS": "-buildvcs=false"}


def default_steps(go: str, program: GoProgram) -> list[tuple[str, list[str]]]:
    return [("go build", [go, "build", "-o", str(program.binary), "."])]


@dataclass(frozen=True, slots=True)
class GoProgram:
    name: str  # the directory under bench/peers and under bench/out/peers
    inputs: Callable[[], Sequence[Path]] = lambda: ()  # read by the build beyond its module
    steps: Steps = default_steps
    clean: tuple[str, ...] = ()  # directories of the module the build regenerates

    @property
    def module(self) -> Path:
        return PEERS / self.name

    @property
    def out(self) -> Path:
        return ROOT / "bench" / "out" / "peers" / self.name

    @property
    def binary(self) -> Path:
        return self.out / self.name

    def inputs_hash(self) -> str:
        sources = [self.module / name for name in ("main.go", "go.mod", "go.sum")]
        sources += [*self.inputs(), Path(__file__)]
        digest = hashlib.sha256()
        for path in sources:
            digest.update(f"{path.relative_to(ROOT)}\0".encode() + path.read_bytes())
        return digest.hexdigest()

    def unavailable(self) -> str | None:
        """None when the binary is built and current (building it first if needed), else
        why not."""
        self.out.mkdir(parents=True, exist_ok=True)
        stamp = self.out / "stamp"  # content hash of what the binary was built from
        with (self.out / "lock").open("w") as lock:  # concurrent bench runs build once
            fcntl.flock(lock, fcntl.LOCK_EX)
            wanted = self.inputs_hash()
            if self.binary.exists() and stamp.exists() and stamp.read_text() == wanted:
                return None
            go = shutil.which("go")
            if go is None:
                return "no Go toolchain (go not on PATH): skipped"
            stamp.unlink(missing_ok=True)
            error = self._build(go)
            if error is not None:
                return f"{self.name} build failed: {error}"
            stamp.write_text(wanted)
            return None

    def _build(self, go: str) -> str | None:
        """Run the build steps; the failing step's output, or None."""
        for name in self.clean:
            shutil.rmtree(self.module / name, ignore_errors=True)
            (self.module / name).mkdir()
        for step, command in self.steps(go, self):
            try:
                done = subprocess.run(command, cwd=self.module, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S,
                                      check=False, env=go_env())
            except subprocess.TimeoutExpired:
                return f"{step} timed out after {BUILD_TIMEOUT_S:.0f} s"
            if done.returncode:
                tail = done.stdout.decode(errors="replace").strip().splitlines()[-15:]
                return f"{step} failed (exit {done.returncode}): " + " | ".join(tail)
        return None
