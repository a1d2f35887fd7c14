"""Text deltas on the wire: every frame fits the limit the captain enforces, whatever the text."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "text", ["é" * 5_000, "猫" * 2_000 + "tail", "🚢" * 1_500, "a" * 4_100, "mixed ü " * 700]
)
def test_a_long_non_ascii_text_delta_arrives_whole(text: str) -> None:
    # Escaped for the wire, a character takes up to 12 bytes: 2,000 of them made one frame over
    # the limit, which the captain dropped (the user lost that part of the answer).
    from shipmates import TextDelta
    from shipmates_nats._frames import EVENT_BYTES, Decoder, encode

    delta = TextDelta(agent="writer", depth=1, path=("captain", "writer"), parent_call_id="c1", text=text)
    frames = encode(delta)
    assert all(len(frame) <= EVENT_BYTES for frame in frames)
    decoder = Decoder()
    received = [decoder.decode(frame) for frame in frames]
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == text
