"""The upload bandwidth limit: transfers keep to the rate over time."""

from __future__ import annotations

import trio
import trio.testing

from dwfs.chunks._tier import Pacer


async def test_transfers_keep_to_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(rate=1_000_000)
    started = []

    async def send() -> None:
        await pacer.wait(2_000_000)
        started.append(trio.current_time())

    begin = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(send)
    assert [round(t - begin, 3) for t in sorted(started)] == [0, 2, 4, 6]


async def test_no_rate_no_wait(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer()
    begin = trio.current_time()
    for _ in range(10):
        await pacer.wait(1 << 30)
    assert trio.current_time() == begin
