"""Choosing the session's captain and absorbing the discovered crew into it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import ShipmatesError

if TYPE_CHECKING:
    from .._run._agent import Agent
    from ._absorb import AbsorbReport
    from ._records import Discovery

GENERAL_CAPTAIN = "captain"

INSTRUCTIONS = (
    "You are the captain of a crew of sibling agents. Each sibling is one of your tools, named "
    "after it, and its description says what it can do. Delegate every request a sibling can "
    "handle to that sibling, passing the user's request in its own words, and answer from what "
    "it returns. Combine siblings when a request needs several. When no sibling fits, say so "
    "plainly and list what the crew can do."
)


class CaptainError(ShipmatesError):
    """``--captain`` names no usable agent; the message lists the discovered ones."""


@dataclass
class Crew:
    """A captain with its crew absorbed, and how it got there."""

    captain: Agent
    discovery: Discovery
    report: AbsorbReport
    general: bool
    """True for the built-in general captain, False for a discovered agent."""


def general_captain() -> Agent:
    """The built-in captain used when ``--captain`` is not given."""
    from .._run._agent import Agent

    return Agent(
        name=GENERAL_CAPTAIN,
        description="The general captain: delegates each request to the sibling that fits.",
        instructions=INSTRUCTIONS,
    )


def _names(discovery: Discovery) -> str:
    return ", ".join(sorted(discovery.agents)) or "none"


def assemble(
    captain: str | None = None,
    *,
    only: list[str] | None = None,
    exclude: list[str] | None = None,
    prefer: list[str] | None = None,
) -> Crew:
    """Discover the crew, pick the captain and absorb every other sibling into it. When the
    session's model was chosen (flag, environment, config file), the captain runs on it, with its
    settings, like the siblings.

    Raises :class:`CaptainError` when ``captain`` names no agent that loaded, or one that
    cannot absorb (it is a sibling but not a :class:`shipmates.Agent`).
    """
    from .._models._session import session_model_chosen
    from .._run._agent import Agent
    from ._absorb import absorb_crew
    from ._discovery import discover, remember_selector

    if captain and only is not None and captain not in only:
        only = [*only, captain]  # the captain is never filtered out by its own --only
    remember_selector(only, exclude, prefer)
    discovery = discover(only=only, exclude=exclude, prefer=prefer)
    if captain:
        record = next((r for r in discovery.records if r.name == captain), None)
        if record is None:
            raise CaptainError(f"no agent named {captain!r}; discovered agents: {_names(discovery)}")
        if record.status != "ok" or record.sibling is None:
            raise CaptainError(
                f"agent {captain!r} did not load ({record.one_line()}); "
                f"discovered agents: {_names(discovery)}"
            )
        chosen = record.sibling
        if not isinstance(chosen, Agent):
            raise CaptainError(
                f"agent {captain!r} ({record.provenance.describe()}) is a sibling but not a "
                "shipmates.Agent, so it cannot absorb a crew; pick another captain: "
                f"{_names(discovery)}"
            )
        general = False
    else:
        chosen = general_captain()
        general = True
    if session_model_chosen():
        chosen.model = None  # the session's model and settings, like the siblings on it
    report = absorb_crew(chosen, discovery)
    return Crew(chosen, discovery, report, general)
