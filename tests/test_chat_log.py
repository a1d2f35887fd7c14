"""The conversation log: what is recorded, listed and resumed, and that nobody else can read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shipmates._cli._chat_log import ChatLog


def test_turns_are_recorded_in_order_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "logs.db"
    log = ChatLog(path)
    cid = log.start("captain", "offline")
    log.record(
        cid,
        prompt="fib(8)?",
        model="offline",
        started=1.0,
        duration=0.5,
        answer="21",
        tool_calls=[{"tool": "fib", "distribution": "shipmates-fib"}],
        usage={"total_tokens": 7},
    )
    log.record(cid, prompt="boom", model="offline", started=2.0, duration=0.1, error="ModelError: no")
    log.close()

    reopened = ChatLog(path)
    turns = reopened.turns(cid=cid)
    assert [t.prompt for t in turns] == ["fib(8)?", "boom"]
    assert turns[0].answer == "21" and turns[0].usage == {"total_tokens": 7}
    assert turns[0].tool_calls == [{"tool": "fib", "distribution": "shipmates-fib"}]
    assert turns[1].error == "ModelError: no" and turns[1].answer is None
    assert turns[0].captain == "captain"
    assert reopened.latest() == cid and reopened.exists(cid) and not reopened.exists("nope")


def test_resuming_replays_answered_turns_only(tmp_path: Path) -> None:
    log = ChatLog(tmp_path / "logs.db")
    cid = log.start("captain", "offline")
    log.record(cid, prompt="a", model="m", started=0, duration=0, answer="A")
    log.record(cid, prompt="b", model="m", started=0, duration=0, error="failed")
    log.record(cid, prompt="c", model="m", started=0, duration=0, answer="C")
    assert log.messages(cid) == [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "C"},
    ]


def test_limit_keeps_the_most_recent_turns_across_conversations(tmp_path: Path) -> None:
    log = ChatLog(tmp_path / "logs.db")
    first, second = log.start("captain", "m"), log.start("fib", "m")
    for i in range(3):
        log.record(first, prompt=f"one {i}", model="m", started=i, duration=0, answer="x")
    log.record(second, prompt="two", model="m", started=9, duration=0, answer="y")
    assert [t.prompt for t in log.turns(limit=2)] == ["one 2", "two"]
    assert log.latest() == second


def test_the_log_is_user_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "logs.db"
    log = ChatLog(path)
    assert not path.exists()  # opened on the first turn: a chat that never answers writes nothing
    log.start("captain", "offline")
    log.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
