"""`serve`'s call slots: a full replica makes calls wait their turn, in order, and a caller that
gives up while waiting (or just as a slot was handed to it) never loses a slot."""

from __future__ import annotations

import asyncio

from shipmates_nats._slots import Slots


def test_waiters_get_slots_in_order_and_cancelled_ones_pass_theirs_on() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        order: list[str] = []
        assert slots.take()
        assert not slots.take()  # full

        async def call(name: str) -> None:
            await slots.wait()
            order.append(name)

        first = asyncio.ensure_future(call("first"))
        gone = asyncio.ensure_future(call("gone"))
        last = asyncio.ensure_future(call("last"))
        await asyncio.sleep(0)  # all three wait
        gone.cancel()
        slots.release()  # -> first
        await first
        slots.release()  # gone gave up: -> last
        await last
        assert gone.cancelled()

        handed = asyncio.ensure_future(call("handed"))
        await asyncio.sleep(0)
        slots.release()  # last's slot, handed on...
        handed.cancel()  # ...to a call cancelled before it ran: the slot goes back
        await asyncio.gather(handed, return_exceptions=True)
        assert slots.free == 1 and not slots.waiting
        assert slots.take() and not slots.take()
        return order

    assert asyncio.run(scenario()) == ["first", "last"]
