"""Hook specifications of the ``shipmates`` pluggy project.

Plugins implement these with ``@shipmates.hookimpl``. Registration hooks receive a
``register`` callback so that shipmates owns naming, provenance and clash handling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .._run._events import ToolCallEvent

PROJECT = "shipmates"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class ShipmatesSpec:
    """The hooks a shipmates plugin may implement."""

    @hookspec
    def register_agents(self, register: Callable[..., None]) -> None:
        """Contribute siblings from code.

        Call ``register(sibling_or_provider, *, name=None)`` once per sibling. A provider
        is a zero-argument callable returning a sibling; shipmates builds it in isolation
        and records the plugin's distribution as the sibling's provenance. May be called
        again on refresh (for example to pick up remote siblings).
        """

    @hookspec
    def register_models(self, register: Callable[..., None]) -> None:
        """Contribute model backends: ``register(model, *, aliases=())``.

        ``model`` follows :class:`shipmates.Model` (``model_id`` and ``async complete``).
        A model name not registered by any plugin is handed to litellm.
        """

    @hookspec
    def tool_call_started(self, event: ToolCallEvent) -> None:
        """A tool call or delegation is about to run (``event.status == "running"``)."""

    @hookspec
    def tool_call_finished(self, event: ToolCallEvent) -> None:
        """A tool call or delegation ended; ``event`` carries status, result or error, duration."""

    @hookspec
    def register_commands(self, register: Callable[..., None]) -> None:
        """Contribute REPL slash commands: ``register(name, handler, help="")``.

        ``handler(repl, argument_text)`` may be sync or async; what it returns (a str) is printed.
        """

    @hookspec
    def register_cli(self, register: Callable[..., None]) -> None:
        """Contribute ``shipmates`` subcommands: ``register(name, help, configure, run)``.

        ``configure(parser)`` adds arguments to an ``argparse.ArgumentParser``;
        ``run(args) -> int`` executes the command and returns the exit status.
        Keep the plugin module cheap to import: import heavy libraries inside ``run``.
        """

    @hookspec
    def refresh_agents(self, captain: Any) -> None:
        """The REPL is about to start a turn or the user typed ``/refresh``.

        Plugins that contribute siblings which come and go (remote ones) update the
        captain here; must be cheap when nothing changed.
        """
