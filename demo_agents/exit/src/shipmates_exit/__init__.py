"""shipmates-exit: a sibling agent that ends the chat session when the user says goodbye.

Its tool raises :class:`shipmates.EndSession`, which the agent loop passes through every
delegation unchanged: the REPL ends cleanly (history saved, exit status 0), it does not
kill the process.
"""

from __future__ import annotations

from shipmates import Agent, EndSession, tool

__all__ = ["FAREWELL", "build_agent", "exit_app"]

FAREWELL = "Goodbye."


def exit_app() -> str:  # never returns: EndSession ends the session (the docstring is for the model)
    """End the chat session and leave the app: call when the user says bye, goodbye, quit or exit."""
    raise EndSession(FAREWELL)


def build_agent() -> Agent:
    """The ``exit`` agent (the provider behind the ``shipmates.agents`` entry point)."""
    return Agent(
        name="exit",
        description=(
            "Ends the chat session and leaves the app: use when the user says bye, goodbye, quit or exit."
        ),
        instructions=(
            "You end the chat session. When the user wants to leave (bye, goodbye, quit, exit, "
            "see you), call the exit_app tool at once, without arguments."
        ),
        tools=[tool(exit_app)],
    )
