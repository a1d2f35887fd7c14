"""Text from outside the process: terminal control sequences stripped, tool-argument JSON bounded."""

from __future__ import annotations

import json

import pytest
from shipmates._text import JsonLimitError, nesting_depth, parse_json_object, terminal_safe

HOSTILE = [
    ("\x1b]0;pwned\x07answer", "answer"),  # window title (OSC, BEL-terminated)
    ("\x1b]2;pwned\x1b\\answer", "answer"),  # window title (OSC, ST-terminated)
    ("\x1b[2J\x1b[Hanswer", "answer"),  # clear screen, cursor home
    ("\x1b[31mred\x1b[0m", "red"),  # colours
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink
    ("fake\r[captain] fib(query='x') -> 21", "fake[captain] fib(query='x') -> 21"),  # forged line
    ("a\x08\x08b", "ab"),  # backspaces
    ("\x9b31mc1\x9b0m", "c1"),  # 8-bit CSI
    ("\x1bPdevice control\x1b\\ok", "ok"),  # DCS string
    ("unterminated \x1b]0;title", "unterminated "),  # OSC without its end eats the rest
    ("\x1b7saved\x1b8", "saved"),  # two-character escapes
    ("bell\x07", "bell"),
]


@pytest.mark.parametrize(("raw", "safe"), HOSTILE)
def test_terminal_safe_strips_control_sequences(raw: str, safe: str) -> None:
    assert terminal_safe(raw) == safe


def test_terminal_safe_keeps_text_newlines_tabs_and_unicode() -> None:
    text = "Fibonacci:\n\tfib(8) = 21 — naïve 日本語 ✓\r\nend"
    assert terminal_safe(text) == "Fibonacci:\n\tfib(8) = 21 — naïve 日本語 ✓\nend"
    assert terminal_safe("plain") == "plain"


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth('{"a": "[[[[{{{", "b": [1, [2]]}') == 3
    assert nesting_depth('"\\"[["') == 0


def test_parse_json_object_bounds_depth_and_size() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(JsonLimitError, match="nested 100000 levels deep, over the limit of 64"):
        parse_json_object(deep)
    with pytest.raises(JsonLimitError, match="over the limit of 10"):
        parse_json_object('{"q": "' + "x" * 20 + '"}', max_chars=10)
    assert parse_json_object('{"n": [1, {"m": 2}]}') == {"n": [1, {"m": 2}]}
    with pytest.raises(json.JSONDecodeError):
        parse_json_object("{not json")
