"""Session memory: bounded by size as well as by turns and messages."""

from __future__ import annotations

from shipmates import Session


def test_session_memory_is_bounded_by_size_as_well_as_turns() -> None:
    session = Session(max_chars=1_000)
    for i in range(5):
        session.add([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "x" * 400}])
    assert session.turns == 2  # 3 turns would hold 1,206 characters
    assert session.messages[0]["content"] == "q3"
    session.add([{"role": "user", "content": "big"}, {"role": "assistant", "content": "y" * 5_000}])
    assert session.turns == 1  # the newest turn is kept even alone over the bound
    assert session.messages[0]["content"] == "big"
