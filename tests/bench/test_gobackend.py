"""The Go users backend's scenarios and seed file, the backend byte check, and the
attribution of other work on the host (no Go toolchain or load generator needed)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from bench.check import check_user_bytes, user_bytes
from bench.loadgen import LoadResult
from bench.peers.users_backend import seed_bytes, varint
from bench.procs import BenchError, others_cpu
from bench.report import LOADGEN, RUNNER, Measurement, Row
from bench.scenarios import BACKEND, GO_BACKEND, GO_SUFFIX, RATIOS, SCENARIOS
from services.seed import seed
from services.server import serve
from services.users import UsersService
from users.v1 import users_pb2


def _decode_seed(data: bytes) -> list[bytes]:
    """The length-prefixed Users of a seed file, as the Go backend reads them."""
    users = []
    while data:
        length, shift, i = 0, 0, 0
        while True:
            byte = data[i]
            length |= (byte & 0x7F) << shift
            shift, i = shift + 7, i + 1
            if byte < 0x80:
                break
        users.append(data[i:i + length])
        data = data[i + length:]
    return users


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_384, 2**31])
def test_varint_is_protobufs(value: int) -> None:
    # The prefix of each User must read back as the same length (checked with our decoder,
    # which is protowire.ConsumeVarint's algorithm).
    assert _decode_seed(varint(value) + b"x" * value) == [b"x" * value]


def test_seed_file_holds_every_user_as_the_reference_bytes() -> None:
    users = _decode_seed(seed_bytes())
    assert [users_pb2.User.FromString(data) for data in users] == list(seed().users)
    first = next(data for data in users if users_pb2.User.FromString(data).id == "u-1001")
    assert first == user_bytes()


def test_every_python_backend_scenario_has_a_go_backend_twin() -> None:
    for name, scenario in SCENARIOS.items():
        if scenario.procs[0] is BACKEND:
            twin = SCENARIOS[name + GO_SUFFIX]
            assert twin.procs == (GO_BACKEND, *scenario.procs[1:])
            assert (twin.under_test, twin.load) == (scenario.under_test, scenario.load)
    assert "rest-aggregate" + GO_SUFFIX not in SCENARIOS  # its own delayed backends
    assert ("grpc-gateway" + GO_SUFFIX, "grpc-direct" + GO_SUFFIX) in RATIOS
    assert ("grpc-gateway", "grpc-direct") in RATIOS


async def test_the_byte_check_takes_the_python_backend_and_refuses_another_user() -> None:
    check = check_user_bytes(exact=False)
    backend = await serve([UsersService()])
    try:
        await asyncio.to_thread(check, backend.address)  # map order aside, the reference
    finally:
        await backend.stop()
    other = [copy.deepcopy(user) for user in seed().users]
    other[0].display_name = "Not Ada"
    backend = await serve([UsersService(other)])
    try:
        for exact in (False, True):
            with pytest.raises(BenchError, match="differs? from the"):
                await asyncio.to_thread(check_user_bytes(exact), backend.address)
    finally:
        await backend.stop()


def test_others_cpu_names_the_processes_that_are_not_ours() -> None:
    before = {1: ("pytest", 10.0), 2: ("gateway", 5.0), 3: ("kworker/1:2", 1.0),
              4: ("python", 2.0)}
    after = {1: ("pytest", 10.5), 2: ("gateway", 7.0), 3: ("kworker/1:2", 1.25),
             4: ("go", 0.25),  # the pid was reused: counted from zero
             5: ("pytest", 0.5)}  # started during the run: counted in full
    assert others_cpu(before, after, ours={2}) == {"pytest": 1.0, "kworker/1:2": 0.25,
                                                   "go": 0.25}
    assert list(others_cpu(before, after, ours={2}, top=1)) == ["pytest"]


def test_a_disturbance_warning_says_on_which_cpu_and_who_else_ran() -> None:
    load = LoadResult(requests=1000, duration_s=2.0, latency_ms={"p50": 1.0, "p99": 2.0},
                      errors={}, loadgen_cpu_s=0.2, concurrency=32)
    run = Measurement(
        scenario="rest-grpc-gateway-go-gobackend", concurrency=32, repetition=0,
        under_test="peer", load=load, wall_s=2.0,
        cpu_s={"backend": 0.4, "peer": 1.4, LOADGEN: 0.2, RUNNER: 0.0}, peak_rss={},
        cpu_of={"backend": 0, "peer": 1, LOADGEN: 0, RUNNER: 0},
        host={0: (1.6, 0.0), 1: (1.4, 0.0)},  # cpu0: 0.3 + 0.5 cores unaccounted for
        others={"python3": 0.8}, irq={0: 0.1, 1: 0.1})
    assert run.foreign_by_cpu == pytest.approx({0: 0.5, 1: 0.0})
    assert run.foreign == pytest.approx(0.5)
    [warning] = Row(run.scenario, 32, (run,), None).warnings("isolated")
    assert "foreign on cpu0 0.50, cpu1 0.00, python3 0.40, irq/softirq cpu0 0.05" in warning
    assert run.as_json()["foreign_cores_by_cpu"] == {"cpu0": 0.5, "cpu1": 0.0}
