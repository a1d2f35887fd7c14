"""Triage: before a captain's first model turn, ask the model which tools the request needs.

Seen with a real 1.5B model on the demo crew: offered every sibling as a tool, it calls one
even when none fits (asked to translate a greeting, it makes up a number for ``factor``), and
it hands a two-part request whole to one sibling, then answers the other part from memory.
Asked only to *name* the tools a request needs, in a short call without tools, it gets these
right far more often. So a captain with ``triage`` on (``--triage``) asks that first:

- nothing named (it said "none", or answered the request instead: "Paris"): the turn offers
  no tools, and the model answers itself (an empty reply tells nothing: every tool stays);
- several named, and the model answers after calling some of them but not all: it is reminded
  once of the one it left out.

A name counts as a word that starts with it ("factorization" names ``factor``), since a small
model asked to name often answers in a sentence instead.
"""

from __future__ import annotations

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


def named_tools(agent: Agent, text: str | None) -> list[str]:
    """The tools of ``agent`` that ``text`` names, in the order it names them (a word that
    starts with a tool's name names it)."""
    words = re.findall(r"[\w.-]+", (text or "").casefold())
    names = [(tool.name.casefold(), tool.name) for tool in agent.tools]
    return list(dict.fromkeys(name for word in words for key, name in names if word.startswith(key)))


@dataclass
class Triage:
    """What triage named for one run, and whether the model was reminded of it."""

    named: list[str]
    response: ModelResponse
    """The triage call's response (its usage counts with the run's)."""
    reminded: bool = field(default=False)

    def schemas(self, agent: Agent) -> list[dict[str, Any]]:
        """The tool schemas to offer: none when the reply named nothing, else all of them (a
        wrong name costs less with every tool still on offer). An empty reply (a reasoning
        model can spend the short call thinking) tells nothing: all of them too."""
        said = (self.response.content or "").strip()
        return agent.tool_schemas() if self.named or not said else []

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


async def triage(agent: Agent, model: Model, messages: list[dict[str, Any]]) -> Triage:
    """Ask ``model`` which of ``agent``'s tools the last of ``messages`` needs."""
    asked = triage_messages(agent, messages)
    if takes_settings(model):
        settings = {k: v for k, v in agent.model_settings.items() if k not in ("tool_choice", "max_tokens")}
        response = await complete(model, asked, [], {**settings, "max_tokens": MAX_TOKENS})
    else:
        response = await complete(model, asked, [])
    return Triage(named_tools(agent, response.content), response)
