"""A served run's events on the wire: each event one small JSON object, bounded and validated.

``serve`` encodes the events of the sibling's run as that run saw them (its own agent at depth
0), without its final ``RunFinished`` (the end frame carries the answer and usage); the captain
decodes them and hands them to ``shipmates``' stream, which re-bases them under its own call.
Whatever arrives is checked: kind, types, string lengths, depth and path; an invalid event
raises :class:`ValueError` saying why (the caller drops it with one warning line).
"""

from __future__ import annotations

import json
import math
from json.decoder import scanstring  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii
from typing import Any

from shipmates import (
    ModelCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCallEvent,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)

EVENT_BYTES = 8_000
"""Largest event frame sent or accepted (texts are cut to fit)."""
TEXT_CHARS = 2_000
"""Longest text delta in one frame (a longer one goes as several)."""
FIELD_CHARS = 400
"""Arguments, results, errors, queries: cut to this many characters."""
NAME_CHARS = 128
MAX_DEPTH = 16
"""Deepest nesting accepted from a replica."""
_TOKENS_MAX = 10**10

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cached_tokens", "model_calls", "calls_without_cost")
_CALL_STATUS = frozenset({"running", "ok", "error", "timeout", "cancelled", "refused"})
_RUN_STATUS = frozenset({"ok", "max_turns", "budget_exhausted", "error", "cancelled"})


def _cut(value: Any, limit: int = FIELD_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_usage(raw: Any) -> Usage:
    """A :class:`Usage` from its wire form (counts: non-negative ints, cost: finite, >= 0, or None)."""
    if not isinstance(raw, dict):
        raise ValueError("usage is not an object")
    counts = []
    for key in _USAGE_FIELDS:
        value = raw.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _TOKENS_MAX:
            raise ValueError(f"usage.{key} is not a count")
        counts.append(value)
    cost = raw.get("cost_usd")
    if cost is not None and (
        not isinstance(cost, (int, float)) or isinstance(cost, bool) or not math.isfinite(cost) or cost < 0
    ):
        raise ValueError("usage.cost_usd is not a cost")
    inp, out, cached, calls, unpriced = counts
    return Usage(inp, out, cached, None if cost is None else float(cost), calls, unpriced)


# -- replica: events -> frames ----------------------------------------------------------------


def encode(event: RunEvent) -> list[bytes]:
    """The frames of one event (a long text delta is split); none for the run's own end."""
    if isinstance(event, TextDelta):
        prefix = text_prefix(event.agent, event.depth, event.path, event.parent_call_id)
        text = event.text
        if len(text) <= TEXT_CHARS and text.isascii():
            return [prefix + _string(text) + b"}"]
        return _text_frames(prefix, text)
    where = {"a": event.agent, "d": event.depth, "p": list(event.path), "pc": event.parent_call_id}
    if isinstance(event, ModelCallFinished):
        obj = {"t": "model", **where, "m": event.model[:NAME_CHARS], "u": event.usage.as_dict()}
        obj.update(s=event.duration, n=event.tool_calls)
    elif isinstance(event, (ToolCallStarted, ToolCallFinished)):
        obj = {
            "t": "start" if isinstance(event, ToolCallStarted) else "finish",
            **where,
            "c": _call(event.call),
        }
    elif isinstance(event, RunStarted):
        if event.depth == 0:
            return []  # the captain says it started
        obj = {"t": "run", **where, "q": _cut(event.query), "m": event.model[:NAME_CHARS]}
    elif isinstance(event, RunFinished):
        if event.depth == 0:
            return []  # the end frame carries it
        obj = {
            "t": "done",
            **where,
            "st": event.status,
            "o": _cut(event.output),
            "u": event.usage.as_dict(),
        }
        obj.update(
            e=_cut(event.error or event.reason) if event.error or event.reason else None, n=event.turns
        )
    else:
        return []
    data = _dump(obj)
    return [data] if len(data) <= EVENT_BYTES else []


def _text_frames(prefix: bytes, text: str) -> list[bytes]:
    """A long or non-ASCII text as frames that each fit :data:`EVENT_BYTES` (escaped, a character
    takes up to 12 bytes: 2,000 of them would not fit one frame, which the captain then drops)."""
    room = EVENT_BYTES - len(prefix) - 1
    frames = []
    start = 0
    while start < len(text):
        piece = text[start : start + TEXT_CHARS]
        data = _string(piece)
        while len(data) > room and len(piece) > 1:
            piece = piece[: max(1, len(piece) * room // len(data))]
            data = _string(piece)
        frames.append(prefix + data + b"}")
        start += len(piece)
    return frames


def _call(call: ToolCallEvent) -> dict[str, Any]:
    return {
        "agent": call.agent,
        "tool": call.tool,
        "arguments": _small(call.arguments),
        "call_id": call.call_id,
        "depth": call.depth,
        "parent_call_id": call.parent_call_id,
        "path": list(call.path),
        "delegation": call.is_delegation,
        "status": call.status,
        "result": None if call.result is None else _cut(call.result),
        "error": None if call.error is None else _cut(call.error),
        "duration": call.duration,
    }


def _small(value: Any) -> Any:
    """A dict as it is when its JSON is short, else text cut to :data:`FIELD_CHARS`."""
    if isinstance(value, dict) and len(json.dumps(value, default=str)) <= FIELD_CHARS:
        return value
    return _cut(value)


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def _string(text: str) -> bytes:
    """``text`` as a JSON string, as :func:`_dump` writes it (ASCII, escaped)."""
    return encode_basestring_ascii(text).encode()


_prefixes: dict[tuple[Any, ...], bytes] = {}


def text_prefix(agent: str, depth: int, path: tuple[str, ...], parent: str | None) -> bytes:
    """A text frame up to its text: the same for every delta of one run, so made once per run.

    A text frame is ``{"t":"text","a":..,"d":..,"p":[..],"pc":..,"x":"..."}`` in that order:
    this prefix, the text as a JSON string, ``}``.
    """
    key = (agent, depth, path, parent)
    found = _prefixes.get(key)
    if found is None:
        if len(_prefixes) >= 256:
            _prefixes.clear()
        found = _prefixes[key] = _dump(
            {"t": "text", "a": agent, "d": depth, "p": list(path), "pc": parent, "x": ""}
        )[:-3]
    return found


def strip_prefix(event: RunEvent, prefix: tuple[str, ...]) -> RunEvent:
    """``event`` as its run saw it when the replica ran under the caller's delegation ``prefix``."""
    n = len(prefix)
    if not n or tuple(event.path[:n]) != prefix:
        return event
    import dataclasses

    if isinstance(event, (ToolCallStarted, ToolCallFinished)):
        call = dataclasses.replace(event.call, depth=max(event.call.depth - n, 0), path=event.call.path[n:])
        return type(event)(call=call)
    return dataclasses.replace(event, depth=max(event.depth - n, 0), path=event.path[n:])


# -- captain: frames -> events ----------------------------------------------------------------


class Decoder:
    """:func:`decode` for the frames of one call: a text frame whose bytes up to its text are
    those of the last text frame fully checked (the same run: every delta of a model turn) has
    only its text parsed and checked."""

    __slots__ = ("prefix", "where")

    def __init__(self) -> None:
        self.prefix = b""
        self.where: dict[str, Any] = {}

    def decode(self, data: bytes) -> RunEvent:
        prefix = self.prefix
        if prefix and len(data) <= EVENT_BYTES and data.startswith(prefix):
            try:  # the rest must be one JSON string and the closing brace, nothing else
                tail = data[len(prefix) :].decode()
                text, end = scanstring(tail, 1) if tail[:1] == '"' else ("", -1)
            except ValueError:
                end = -1
            if end > 0 and tail[end:] == "}" and len(text) <= TEXT_CHARS:
                return TextDelta(**self.where, text=text)
        event = decode(data)
        if isinstance(event, TextDelta):
            where = text_prefix(event.agent, event.depth, event.path, event.parent_call_id)
            if data.startswith(where):  # written as this plugin writes it: the next ones may be too
                self.prefix = where
                self.where = {
                    "agent": event.agent,
                    "depth": event.depth,
                    "path": event.path,
                    "parent_call_id": event.parent_call_id,
                }
        return event


def decode(data: bytes) -> RunEvent:
    """One event frame from a replica, validated, or :class:`ValueError` saying what is wrong."""
    if len(data) > EVENT_BYTES:
        raise ValueError(f"event of {len(data)} bytes is over the limit of {EVENT_BYTES}")
    try:
        obj = json.loads(data)
    except ValueError:
        raise ValueError("event is not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("event is not a JSON object")
    kind = obj.get("t")
    if kind in ("start", "finish"):
        call = _parse_call(obj.get("c"))
        return ToolCallStarted(call=call) if kind == "start" else ToolCallFinished(call=call)
    where: dict[str, Any] = {
        "agent": _name(obj.get("a"), "agent"),
        "depth": _depth(obj.get("d")),
        "path": _path(obj.get("p")),
        "parent_call_id": _opt_name(obj.get("pc"), "parent call id"),
    }
    if kind == "text":
        return TextDelta(**where, text=_text(obj.get("x"), TEXT_CHARS, "text"))
    if kind == "model":
        return ModelCallFinished(
            **where,
            model=_name(obj.get("m"), "model"),
            usage=parse_usage(obj.get("u")),
            duration=_seconds(obj.get("s")),
            tool_calls=_count(obj.get("n"), "tool calls"),
        )
    if kind == "run":
        return RunStarted(
            **where, query=_text(obj.get("q"), FIELD_CHARS, "query"), model=_name(obj.get("m"), "model")
        )
    if kind == "done":
        status = obj.get("st")
        if status not in _RUN_STATUS:
            raise ValueError("run status is invalid")
        error = obj.get("e")
        return RunFinished(
            **where,
            status=status,
            output=_text(obj.get("o"), FIELD_CHARS, "output"),
            usage=parse_usage(obj.get("u")),
            turns=_count(obj.get("n"), "turns"),
            error=None if error is None else _text(error, FIELD_CHARS, "error"),
        )
    raise ValueError(f"unknown event type {_cut(kind, 40)!r}")


def _parse_call(raw: Any) -> ToolCallEvent:
    if not isinstance(raw, dict):
        raise ValueError("tool call is not an object")
    status = raw.get("status")
    if status not in _CALL_STATUS:
        raise ValueError("tool call status is invalid")
    result, error = raw.get("result"), raw.get("error")
    duration = raw.get("duration")
    return ToolCallEvent(
        agent=_name(raw.get("agent"), "agent"),
        tool=_name(raw.get("tool"), "tool"),
        arguments=_arguments(raw.get("arguments")),
        call_id=_name(raw.get("call_id"), "call id"),
        depth=_depth(raw.get("depth")),
        parent_call_id=_opt_name(raw.get("parent_call_id"), "parent call id"),
        path=_path(raw.get("path")),
        is_delegation=raw.get("delegation") is True,
        status=status,
        result=None if result is None else _text(result, FIELD_CHARS, "result"),
        error=None if error is None else _text(error, FIELD_CHARS, "error"),
        duration=None if duration is None else _seconds(duration),
        extra={"remote": True},
    )


def _arguments(value: Any) -> dict[str, Any] | str:
    if isinstance(value, dict) and len(json.dumps(value)) <= FIELD_CHARS:
        return value
    return _text(value, FIELD_CHARS, "arguments")


def _text(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what} is not a string of at most {limit} characters")
    return value


def _name(value: Any, what: str) -> str:
    return _text(value, NAME_CHARS, what)


def _opt_name(value: Any, what: str) -> str | None:
    return None if value is None else _name(value, what)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _TOKENS_MAX:
        raise ValueError(f"{what} is not a count")
    return value


def _depth(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DEPTH:
        raise ValueError(f"depth is not an integer from 0 to {MAX_DEPTH}")
    return value


def _seconds(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 10**7:
        raise ValueError("duration is not a number of seconds")
    return float(value)


def _path(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_DEPTH + 1:
        raise ValueError(f"path is not a list of at most {MAX_DEPTH + 1} names")
    return tuple(_name(v, "path entry") for v in value)
