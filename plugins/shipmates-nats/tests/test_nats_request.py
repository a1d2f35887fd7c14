"""The proxy's request/reply (``_request``): one timer bounds every call's wait, yet each call
times out at its own deadline, answered calls are unaffected, and the connection goes on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from shipmates_nats._request import request


def test_each_call_times_out_at_its_own_deadline_and_answers_still_arrive(nats_server: Any) -> None:
    import nats
    from nats.errors import TimeoutError as NatsTimeout

    async def scenario() -> dict[str, Any]:
        nc = await nats.connect(nats_server.url)

        async def answer(msg: Any) -> None:
            if msg.data != b"ignore me":
                await msg.respond(b"re: " + msg.data)

        await nc.subscribe("req.test", cb=answer)
        await nc.flush()

        async def timed(body: bytes, timeout: float) -> tuple[Any, float]:
            start = time.monotonic()
            try:
                msg = await request(nc, "req.test", body, {"traceparent": "x"}, timeout)
                outcome: Any = msg.data
            except NatsTimeout:
                outcome = "timeout"
            return outcome, time.monotonic() - start

        long, short, *answered = await asyncio.gather(
            timed(b"ignore me", 1.5),  # a long deadline first: the short one must not wait for it
            timed(b"ignore me", 0.2),
            *(timed(f"q{i}".encode(), 5) for i in range(100)),
        )
        after = await timed(b"again", 5)
        await nc.close()
        return {"long": long, "short": short, "answered": answered, "after": after}

    got = asyncio.run(scenario())
    assert got["short"][0] == "timeout" and 0.2 <= got["short"][1] < 1.0
    assert got["long"][0] == "timeout" and 1.5 <= got["long"][1] < 3.0
    assert [a[0] for a in got["answered"]] == [f"re: q{i}".encode() for i in range(100)]
    assert got["after"][0] == b"re: again"


@pytest.fixture(autouse=True)
def _no_leftover_requesters() -> Any:
    yield
    from shipmates_nats import _request

    _request._requesters.clear()
