"""A streamed reply publishes its frames from the run's event callback, at once while nats-py
only buffers them; when a publish has to wait (its outgoing buffer is full), that frame and
every later one still go out in order, and the reply's end waits for all of them."""

from __future__ import annotations

import asyncio

from shipmates_nats._stream_serve import _Frames


def test_frames_keep_their_order_when_a_publish_has_to_wait() -> None:
    async def scenario() -> list[bytes]:
        out: list[bytes] = []
        full = asyncio.Event()  # the outgoing buffer: full while this is clear

        async def publish(subject: str, data: bytes) -> None:
            if data == b"2" and not full.is_set():
                await full.wait()
            out.append(data)

        frames = _Frames(publish, "reply")
        frames.send([b"1", b"2"])  # 1 goes at once; 2 has to wait
        frames.send([b"3"])  # queued behind 2
        assert out == [b"1"]
        await asyncio.sleep(0)
        assert out == [b"1"]  # still waiting: nothing overtakes 2
        full.set()
        await frames.sent()
        frames.send([b"4"])  # the buffer has room again: at once
        assert out == [b"1", b"2", b"3", b"4"]
        return out

    assert asyncio.run(scenario()) == [b"1", b"2", b"3", b"4"]
