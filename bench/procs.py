"""Processes of a benchmark run: start each in its own process group, read the ports it
announces, pin it (and the processes it forks) to a CPU, read CPU time and peak RSS of its
process tree from /proc, stop it by PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"  # everything binds and connects here only
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A scenario could not be run: a process did not start, a check or a load run failed."""


@dataclass(frozen=True, slots=True, eq=False)
class Running:
    role: str
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]  # port name (from the announce regex's groups) -> port
    log: Path
    cpu: int | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> tuple[int, ...]:
        return process_tree(self.pid)


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """`argv` run under `taskset -c cpu` (unchanged when cpu is None)."""
    return [*argv] if cpu is None else ["taskset", "-c", str(cpu), *argv]


def spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start argv in a new session (its own process group), stdout+stderr to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back (delivered afterwards) so that cleanup finishes."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is not None:
        return  # reaped: its pid (and group id) may belong to someone else by now
    try:
        os.killpg(proc.pid, sig)  # the group id is the child's pid (start_new_session)
    except ProcessLookupError:
        pass


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on: fields[n - 3] is field n."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of all threads of `pid` (/proc/PID/stat fields 14 and 15)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def process_tree(pid: int) -> tuple[int, ...]:
    """`pid` and its descendants, parents first. From the parent pid (field 4) of every
    /proc/PID/stat: /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which not every
    kernel has."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found = [pid]
    for current in found:  # grows while it is walked: breadth first
        found.extend(sorted(children.get(current, ())))
    return tuple(found)


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime summed over the processes (all their threads). Processes that exit take
    their share with them: callers check that the tree did not change."""
    try:
        return sum(cpu_seconds(pid) for pid in pids)
    except FileNotFoundError as exc:
        raise BenchError(f"a process exited while its CPU time was read: {exc}") from None


def tree_peak_rss_bytes(pids: Sequence[int]) -> int:
    """VmHWM summed over the processes: an upper bound of the tree's peak, since the peaks
    need not coincide and shared pages count once per process."""
    return sum(peak_rss_bytes(pid) for pid in pids)


def affinity(pid: int) -> dict[int, set[int]]:
    """Thread id -> the CPUs it may run on, for every thread of `pid`."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = os.sched_getaffinity(int(task.name))
        except ProcessLookupError:
            continue  # the thread ended meanwhile
    return found


def pin_tree(pids: Sequence[int], cpu: int) -> int:
    """Pin every thread of every process to `cpu` (taskset -a -p acts on one process); check
    they are all pinned then. Returns how many threads were not on `cpu` alone before."""
    strays = sum(cpus != {cpu} for pid in pids for cpus in affinity(pid).values())
    for pid in pids:
        pin = subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)],
                             capture_output=True, text=True)
        if pin.returncode:
            raise BenchError(f"cannot pin pid {pid} to cpu{cpu}: {pin.stderr.strip()}")
    loose = {f"{pid}/{tid}": sorted(cpus) for pid in pids
             for tid, cpus in affinity(pid).items() if cpus != {cpu}}
    if loose:
        raise BenchError(f"threads not pinned to cpu{cpu} after taskset: {loose}")
    return strays


def cpu_times() -> dict[int, tuple[float, float]]:
    """Per CPU, (busy, steal) seconds since boot from /proc/stat; busy excludes idle, iowait
    and steal (time the hypervisor gave to other guests)."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
            busy = user + nice + system + irq + softirq
            times[int(name[3:])] = (busy / _CLK_TCK, steal / _CLK_TCK)
    return times


def irq_times() -> dict[int, float]:
    """Per CPU, seconds spent in hard and soft interrupts since boot (/proc/stat): part of
    busy, but no process's (loopback TCP delivery runs in softirq on the sending CPU)."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            times[int(name[3:])] = (int(values[5]) + int(values[6])) / _CLK_TCK
    return times


def all_cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (its command name, utime + stime of all its threads) for every process now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / _CLK_TCK)
    return found


def others_cpu(before: Mapping[int, tuple[str, float]], after: Mapping[int, tuple[str, float]],
               ours: set[int], top: int = 5) -> dict[str, float]:
    """CPU seconds that processes other than `ours` used between two all_cpu_seconds()
    snapshots, by command name, the `top` largest (a process that ended in between is
    missed; one that started counts in full)."""
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        if pid in ours:
            continue
        previous = before.get(pid)
        spent = seconds - (previous[1] if previous and previous[0] == name else 0.0)
        if spent > 0:
            used[name] = used.get(name, 0.0) + spent
    return dict(sorted(used.items(), key=lambda item: -item[1])[:top])


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (clear_refs "5"); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"/proc/{pid}/status has no VmHWM")


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Fleet:
    """The server processes of one scenario; a context manager that stops them all on exit,
    on an exception or on KeyboardInterrupt alike."""

    def __init__(self) -> None:
        self.running: list[Running] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, role: str, argv: Sequence[str], announce: Mapping[str, str], log: Path,
              cpu: int | None, instances: int = 1) -> Running:
        """Start argv, wait until its output announces every port of `announce` (port name ->
        regex whose group 1 is the port) `instances` times (once per worker process), then
        pin all threads of all processes of its tree to `cpu`."""
        # Registered at once so that stop() finds it. (Not under signals_deferred: children
        # would inherit the blocked signal mask and ignore our SIGTERM.)
        proc = spawn(pinned(argv, cpu), log)
        running = Running(role, proc, {}, log, cpu)
        self.running.append(running)
        patterns = {name: re.compile(regex) for name, regex in announce.items()}
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            output = log.read_text(errors="replace")
            for name, pattern in patterns.items():
                found = pattern.findall(output)
                if len(found) >= instances:
                    running.ports[name] = int(found[0])
            if len(running.ports) == len(patterns):
                break
            if proc.poll() is not None:
                raise BenchError(f"{role} exited with {proc.returncode} before announcing its "
                                 f"ports:\n{tail(log)}")
            if time.monotonic() > deadline:
                missing = {n: r for n, r in announce.items() if n not in running.ports}
                raise BenchError(f"{role} printed fewer than {instances} lines matching "
                                 f"{missing} within {START_TIMEOUT_S:.0f} s:\n{tail(log)}")
            time.sleep(0.05)
        if cpu is not None:
            # Started under taskset, it and what it forks inherit the CPU; pin again anyway,
            # every thread of every process, and say if anything had escaped.
            strays = pin_tree(running.tree(), cpu)
            if strays:
                print(f"bench: {role}: {strays} threads were not on cpu{cpu} alone until "
                      "pinned again", file=sys.stderr)
        return running

    def stop(self) -> None:
        """SIGTERM every process group, wait STOP_GRACE_S, then SIGKILL what is left."""
        with signals_deferred():
            for running in self.running:
                kill_group(running.proc, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for running in self.running:
                try:
                    running.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    kill_group(running.proc, signal.SIGKILL)
                    running.proc.wait()
            self.running.clear()
