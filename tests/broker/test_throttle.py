import asyncio
from datetime import timedelta

import pytest

from broker.throttle import Throttle
from market.clock import VirtualClock
from tests.broker.helpers import T0, advance


async def test_no_second_of_virtual_time_holds_more_than_the_limit():
    clock = VirtualClock(T0)
    throttle = Throttle(clock, 40)
    sent = []

    async def send(i):
        await throttle.acquire()
        sent.append((clock.now(), i))

    tasks = [asyncio.create_task(send(i)) for i in range(130)]
    await advance(clock, 4, step_s=0.1)
    await asyncio.gather(*tasks)
    times = [t for t, _ in sent]
    assert [i for _, i in sent] == list(range(130))  # first come, first served
    for a, b in zip(times, times[40:]):  # any 41 messages span at least one second
        assert b - a >= timedelta(seconds=1)
    assert all(b - a == timedelta(milliseconds=25) for a, b in zip(times, times[1:]))  # evenly spaced
    assert throttle.sent == 130 and times[0] == T0


async def test_a_quiet_throttle_does_not_wait():
    clock = VirtualClock(T0)
    throttle = Throttle(clock, 2)
    await throttle.acquire()
    waiting = asyncio.create_task(throttle.acquire())
    await clock.settle()
    assert not waiting.done()
    await clock.advance_to(T0 + timedelta(milliseconds=500))
    assert waiting.done()
    await clock.advance_to(T0 + timedelta(seconds=5))
    await throttle.acquire()  # the token came back long ago: no wait
    assert clock.now() == T0 + timedelta(seconds=5)


def test_an_odd_limit_rounds_the_gap_up():
    assert Throttle(VirtualClock(T0), 22).gap == timedelta(microseconds=45455)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_limit_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError):
        Throttle(VirtualClock(T0), bad)
