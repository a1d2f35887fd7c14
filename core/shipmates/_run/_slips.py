"""What small models get wrong when they call tools, caught by the run loop.

Seen with a real 1.5B model on the demo crew:

- a tool call written as JSON text (fenced, in ``<tool_call>`` tags, or bare) instead of through
  the tool-calling interface: :func:`calls_in_text` recognises it when it names one of the
  agent's tools, and the loop runs it as a call instead of printing the JSON as the answer;
- the same call twice in one turn: :func:`unique_calls` runs it once, and every call id gets
  the result;
- the same call over and over: :class:`PastCalls` remembers which calls failed and what each
  delegation answered. A failed call asked again is not run and the model is told; a third time
  ends the run with a message. A delegation asked again is not run either (captains ping-pong
  between siblings): the model gets the answer it already had, and when it insists, its next
  turn may not call tools, so it answers the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ShipmatesError
from .._models._model import ToolCall
from .._text import parse_json_object

if TYPE_CHECKING:
    from ._events import ToolCallEvent

_WRAPPED = re.compile(
    r"^\s*(?:```(?:json|tool_call)?\s*(?P<fenced>.*?)\s*```|<tool_call>\s*(?P<tagged>.*?)\s*</tool_call>)\s*$",
    re.DOTALL,
)
MAX_TEXT_CALL_CHARS = 20_000
"""Longer text is never read as a tool call."""


def _call_key(name: str, arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = parse_json_object(arguments)  # bounded: model text may nest without end
        except ValueError:
            return f"{name}\0{arguments}"
    try:
        return f"{name}\0{json.dumps(arguments, sort_keys=True, default=str)}"
    except (ValueError, TypeError, RecursionError):
        return f"{name}\0{id(arguments)}"  # not comparable: never a repeat


def call_key(call: ToolCall) -> str:
    """Identifies a call by tool and arguments (key order and spacing ignored)."""
    return _call_key(call.name, call.arguments)


def _as_call(item: Any, tools: set[str], index: int) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
        item = item["function"]
    name = item.get("name")
    arguments = item.get("arguments", item.get("parameters", {}))
    if not isinstance(name, str) or name not in tools or not isinstance(arguments, (dict, str)):
        return None
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=f"text-call-{index}", name=name, arguments=text)


def _json_body(text: str | None) -> str | None:
    """The text inside a fence or ``<tool_call>`` tags (else the text, stripped), when it is short
    enough to be a tool call and has an object in it; else None."""
    if not text or len(text) > MAX_TEXT_CALL_CHARS or "{" not in text:
        return None
    wrapped = _WRAPPED.match(text)
    return (wrapped.group("fenced") or wrapped.group("tagged") or "") if wrapped else text.strip()


def calls_in_text(text: str | None, tools: Iterable[str]) -> list[ToolCall]:
    """The tool calls ``text`` consists of, when it is nothing but JSON naming the agent's tools
    (one object, a list of them, or one per line; fenced or in ``<tool_call>`` tags); else ``[]``."""
    body = _json_body(text)
    if body is None or not body.startswith(("{", "[")):
        return []
    try:
        parsed: Any = parse_json_object(body)
        items = parsed if isinstance(parsed, list) else [parsed]
    except ValueError:
        try:  # one object per line, as some chat templates write several calls
            items = [parse_json_object(line) for line in body.splitlines() if line.strip()]
        except ValueError:
            return []
    names = set(tools)
    calls = [_as_call(item, names, i) for i, item in enumerate(items)]
    return [c for c in calls if c is not None] if calls and all(calls) else []


def unknown_call_in_text(text: str | None, tools: Iterable[str]) -> str | None:
    """When ``text`` is a tool call written as JSON that names none of the agent's ``tools``, the
    note that sends it back to the model (once per run); else None."""
    body = _json_body(text)
    if body is None:
        return None
    try:
        item: Any = parse_json_object(body)
    except ValueError:
        return None
    item = item[0] if isinstance(item, list) and item else item
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item = item["function"]
    if not (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and ("arguments" in item or "parameters" in item)
    ):
        return None
    names = ", ".join(sorted(tools)) or "none"
    return (
        f"Your reply was a tool call written as text, for '{_short(item['name'], 60)}', which is not one of "
        f"your tools ({names}). Call a tool through the tool-calling interface, or answer the user in "
        "plain words."
    )


def unique_calls(calls: Sequence[ToolCall]) -> tuple[list[ToolCall], list[int]]:
    """The calls with repeats (same tool, same arguments) left out, and for each call the index
    of the unique call whose result it shares."""
    first: dict[str, int] = {}
    unique: list[ToolCall] = []
    index: list[int] = []
    for call in calls:
        key = call_key(call)
        if key not in first:
            first[key] = len(unique)
            unique.append(call)
        index.append(first[key])
    return unique, index


async def run_each_once(
    calls: list[ToolCall],
    past: PastCalls,
    run: Callable[[list[ToolCall]], Awaitable[list[str]]],
    events: Sequence[ToolCallEvent],
) -> list[str]:
    """One turn's ``calls`` through ``run``: each distinct call once, and a call already made in
    this run not again (see :class:`PastCalls`); ``events`` are the run's, to learn what failed."""
    if len(calls) == 1 and not past:  # the common case: nothing to compare
        results = await run(calls)
        past.note(calls, results, events)
        return results
    unique, index = unique_calls(calls)
    answers: dict[int, str] = {}
    to_run: list[int] = []
    for i, call in enumerate(unique):
        repeat = past.repeat_of(call)  # raises when the model insists on a failed call
        if repeat is None:
            to_run.append(i)
        else:
            answers[i] = repeat
    if to_run:
        batch = [unique[i] for i in to_run]
        results = await run(batch)
        answers.update(zip(to_run, results, strict=True))
        past.note(batch, results, events)
    return [answers[i] for i in index]


class RepeatedFailureError(ShipmatesError):
    """The model asked for a call that had already failed twice; the run stops."""


class PastCalls:
    """This run's failed calls and answered delegations, by tool and arguments, and how often
    the model asked for each again."""

    def __init__(self) -> None:
        self._past: dict[str, tuple[bool, str, int]] = {}  # key -> (failed, text, asked again)
        self.answer_now = False
        """Set when the model asked a third time for a call it had the answer to: its next turn
        is told not to call tools."""

    def __bool__(self) -> bool:
        return bool(self._past)

    def note(
        self, calls: Sequence[ToolCall], results: Sequence[str], events: Sequence[ToolCallEvent]
    ) -> None:
        """Remember which of ``calls`` (just run, ``results`` as sent to the model, ``events``
        of this run) failed, and what each delegation answered. A plain tool's answer is not
        kept: asked again, it runs again (a clock or a poll may answer differently)."""
        by_id = {e.call_id: e for e in events[-len(calls) :]} if calls else {}
        for call, result in zip(calls, results, strict=True):
            event = by_id.get(call.id)
            if event is None:
                continue
            if event.status in ("error", "timeout"):
                self._past.setdefault(call_key(call), (True, event.error or event.status, 0))
            elif event.status == "ok" and event.is_delegation:
                self._past.setdefault(call_key(call), (False, result, 0))

    def repeat_of(self, call: ToolCall) -> str | None:
        """The tool result for ``call`` when it already failed or (a delegation) was answered in
        this run (then it is not run), else None.

        Raises :class:`RepeatedFailureError` the second time a failed call is asked again.
        """
        key = call_key(call)
        if key not in self._past:
            return None
        failed, text, asked = self._past[key]
        if failed and asked >= 1:
            raise RepeatedFailureError(
                f"the model kept repeating the call {call.name}({_short(call.arguments)}), which failed "
                f"with: {_short(text, 200)}; stopped early instead of calling it again"
            )
        self._past[key] = (failed, text, asked + 1)
        if failed:
            return (
                f"error: not run: this exact call already failed ({_short(text, 300)}). Do not repeat "
                "it: call the tool with different arguments, use another tool, or answer the user "
                "with what you know, saying what failed."
            )
        if asked >= 1:
            self.answer_now = True
        return (
            f"Not run again: this exact call was already answered: {text}\nUse that answer: call "
            "another tool only for a part of the request not answered yet, else answer the user now."
        )


def _short(text: Any, limit: int = 120) -> str:
    value: str = text if isinstance(text, str) else json.dumps(text, default=str)
    return value if len(value) <= limit else value[: limit - 3] + "..."
