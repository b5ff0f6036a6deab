"""The retry budget with its floor inside it (T-02, T-13): attempts counted at a real backend
that fails every call."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import GatewayError
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import GET, UNAVAILABLE, FakeClock, calls, get_user, upstream_for

# Neither the breaker nor ejection may stop the calls: the budget alone must hold them.
STEADY: dict[str, Any] = {"outlier": {"consecutive_failures": 10_000},
                          "breaker": {"consecutive_failures": 10_000, "min_requests": 100_000}}


@pytest.mark.parametrize("rate_per_s", [50, 200])
async def test_amplification_at_every_call_failing_is_at_most_the_ratio(
        start_users: StartUsers, clock: FakeClock, rate_per_s: int) -> None:
    """Default retry config (attempts 2, ratio 0.2, floor 3/s over 10 s): at 50 and 200 calls/s
    offered the backend sees <= 1.2 x the calls. With the floor added on top of the ratio it saw
    1.4 (50/s) and 1.25 (200/s)."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    offered = 3 * rate_per_s  # three seconds of load
    async with upstream_for([only], clock, **STEADY) as upstream:
        for _ in range(offered):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock))
            clock.advance(1 / rate_per_s)
    amplification = calls(only) / offered
    assert 1.0 < amplification <= 1.2, amplification  # some calls did retry, within the budget


async def test_floor_still_lets_a_quiet_backend_retry(start_users: StartUsers,
                                                      clock: FakeClock) -> None:
    """Below budget_min_per_s / budget_ratio calls per second the floor decides: 3/s x 10 s."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([only], clock, **STEADY) as upstream:
        for _ in range(40):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock))
            clock.advance(0.1)  # 10 calls/s: 0.2 x 40 = 8 < the floor of 30
    assert calls(only) == 40 + 30
