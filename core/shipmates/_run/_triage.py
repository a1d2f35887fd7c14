"""Triage: before a captain's first model turn, ask the model which tools the request needs.

Seen with a real 1.5B model on the demo crew: offered every sibling as a tool, it calls one
even when none fits (asked to translate a greeting, it makes up a number for ``factor``), and
it hands a two-part request whole to one sibling, then answers the other part from memory.
Asked only to *name* the tools a request needs, in a short call without tools, it gets these
right far more often. So a captain with ``triage`` on (``--triage``) asks that first:

- nothing in the reply names or relates to a tool (it said "none", or answered the request
  instead: "Paris"): the run offers no tools, and the model answers itself. A reply that relates
  to a tool without naming it ("the prime factorization of 610 is ...": ``factor``), an empty
  one, or a failed call changes nothing: every tool stays on offer;
- several named, and the model answers after calling some of them but not all: it is reminded
  once of the one it left out.

Names are compared as words, so ``get_weather``, "get-weather" and "get weather" are one name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._models._model import complete, takes_settings

if TYPE_CHECKING:
    from .._models._model import Model, ModelResponse
    from ._agent import Agent
    from ._events import ToolCallEvent
    from ._tool import Tool

CONTEXT_MESSAGES = 4
"""Earlier user and assistant messages the triage call sees, so a follow-up such as
"now factor that number" is read with what it refers to."""

ASK = (
    "You pick which crew members a request needs. The crew:\n{roster}\n"
    "Reply with only the names of the members the user's latest request needs, separated by "
    "commas, or none when no member fits. Do not answer the request."
)
MAX_TOKENS = 30
"""A list of names is short: a model that answers the request instead is cut off early."""


def _about(tool: Tool) -> str:
    """What a tool does, in one line: a sibling's own description (without the list of its
    tools, whose names a small model would give instead of the sibling's), a tool's first
    paragraph."""
    own = getattr(tool.sibling, "description", None) if tool.sibling is not None else None
    text = own if isinstance(own, str) and own.strip() else tool.description.strip().split("\n\n")[0]
    return " ".join(text.split()) or tool.name


def triage_messages(agent: Agent, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The triage call's conversation: the roster of ``agent``'s tools, the recent text
    messages of ``messages``, then its last (the request)."""
    roster = "\n".join(f"- {tool.name}: {_about(tool)}" for tool in agent.tools)
    said = [
        {"role": m["role"], "content": m["content"]}
        for m in messages[:-1]
        if m.get("role") in ("user", "assistant") and m.get("content") and isinstance(m["content"], str)
    ][-CONTEXT_MESSAGES:]
    return [{"role": "system", "content": ASK.format(roster=roster)}, *said, messages[-1]]


_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
RELATED_WORD = 3
"""Shortest word of a tool's name that relates a reply to it ("factorization": ``factor``)."""


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.casefold())  # get_weather, get-weather, "get weather" alike


@dataclass
class Triage:
    """What triage made of the model's reply for one run, and whether it reminded the model."""

    named: list[str]
    """Tools the reply names, in its order: each name's words in a row (the longest name wins
    where names overlap: "search_docs" names ``search_docs``, not ``search`` too)."""
    none_fit: bool
    """The reply said something, and nothing in it names or relates to a tool ("Paris", "none")."""
    response: ModelResponse
    """The triage call's response (its usage counts with the run's)."""
    reminded: bool = field(default=False)

    @classmethod
    def of(cls, agent: Agent, response: ModelResponse) -> Triage:
        """Read ``response`` against ``agent``'s tools. A reply that is empty once a reasoning
        model's ``<think>`` is taken out tells nothing: not ``none_fit``."""
        words = _words(_THINKING.sub("", response.content or ""))
        names = sorted(((_words(t.name), t.name) for t in agent.tools), key=lambda n: -len(n[0]))
        named: list[str] = []
        i = 0
        while i < len(words):
            hit = next((n for n in names if n[0] and words[i : i + len(n[0])] == n[0]), None)
            if hit is None:
                i += 1
                continue
            if hit[1] not in named:
                named.append(hit[1])
            i += len(hit[0])
        related = any(
            word.startswith(part)
            for parts, _ in names
            for part in parts
            if len(part) >= RELATED_WORD
            for word in words
        )
        return cls(named, bool(words) and not named and not related, response)

    def reminder(self, events: list[ToolCallEvent]) -> str | None:
        """Once per run, when the model answers having called some of the tools named but not
        all: the message that reminds it of the first one left; else None."""
        if self.reminded or len(self.named) < 2:
            return None
        called = {event.tool for event in events}
        left = [name for name in self.named if name not in called]
        if not left or len(left) == len(self.named):  # all asked, or none: its answer stands
            return None
        self.reminded = True
        return (
            f"You have not asked {left[0]} yet, and the request needs it. Call {left[0]} with the "
            "part of the request it handles, then answer every part of the request, with what "
            "each one returned."
        )


async def triage(agent: Agent, model: Model, messages: list[dict[str, Any]]) -> Triage | None:
    """Ask ``model`` which of ``agent``'s tools the last of ``messages`` needs. None when the
    call fails: triage only narrows what is offered, so the run goes on with every tool."""
    asked = triage_messages(agent, messages)
    try:
        if takes_settings(model):
            settings = {
                k: v for k, v in agent.model_settings.items() if k not in ("tool_choice", "max_tokens")
            }
            response = await complete(model, asked, [], {**settings, "max_tokens": MAX_TOKENS})
        else:
            response = await complete(model, asked, [])
    except Exception as exc:  # the run's own model call will say what is wrong, if anything is
        logging.getLogger("shipmates").debug("triage of %s failed, every tool stays: %s", agent.name, exc)
        return None
    return Triage.of(agent, response)
