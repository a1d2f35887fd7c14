"""Hook specifications of the ``shipmates`` pluggy project, and the types their callbacks have.

Plugins implement these with ``@shipmates.hookimpl``. Registration hooks receive a
``register`` callback so that shipmates owns naming, provenance and clash handling; each
callback's type is a :class:`~typing.Protocol` below, named in the hookspec's signature, so the
signature a plugin author reads is the one shipmates calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .._crew._sibling import Provenance
    from .._models._model import Model
    from .._run._agent import Agent
    from .._run._events import ToolCallEvent
    from .._run._session import Session
    from .._run._stream_events import RunEvent

PROJECT = "shipmates"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class CommandContext(Protocol):
    """What a REPL slash command handler receives: the chat it was typed in."""

    @property
    def captain(self) -> Agent:
        """The captain (``absorb``, ``remove``, ``get_tool``, ``siblings``)."""

    @property
    def session(self) -> Session | None:
        """The conversation memory (None with ``--memory 0``)."""

    def say(self, text: str) -> None:
        """Print ``text`` on stdout (command output)."""

    def warn(self, text: str) -> None:
        """Print ``warning: text`` on stderr."""

    def error(self, text: str) -> None:
        """Print ``error: text`` on stderr."""

    def refresh(self, *, report: bool = False) -> str:
        """Run ``refresh_agents``; with ``report``, a line saying what changed."""


CommandHandler = Callable[[CommandContext, str], "str | Awaitable[str | None] | None"]
"""``handler(context, argument_text)``, sync or async; a str it returns is printed."""


class RegisterAgent(Protocol):
    """``register(sibling_or_provider, name=None, provenance=None, instances=())``."""

    def __call__(
        self,
        sibling: Any,
        /,
        name: str | None = None,
        provenance: Provenance | None = None,
        instances: Iterable[str] = (),
    ) -> None:
        """Contribute a sibling, or a zero-argument provider returning one, under ``name``
        (default: its ``name``). ``provenance`` defaults to the plugin's distribution;
        ``instances`` are shown by ``shipmates agents`` (remote replicas)."""


class RegisterModel(Protocol):
    """``register(model, aliases=())``."""

    def __call__(self, model: Model, /, aliases: Sequence[str] = ()) -> None:
        """Contribute ``model`` under its ``model_id`` and each alias."""


class RegisterCommand(Protocol):
    """``register(name, handler, help="")``."""

    def __call__(self, name: str, handler: CommandHandler, help: str = "") -> None:
        """Add the REPL command ``/name``; a name already taken is reported and skipped."""


class RegisterCli(Protocol):
    """``register(name, help, configure, run)``."""

    def __call__(
        self,
        name: str,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int],
    ) -> None:
        """Add the subcommand ``shipmates name``: ``configure(parser)`` adds its arguments,
        ``run(args)`` executes it and returns the exit status."""


class RegisterChatOption(Protocol):
    """``register(*flags, apply, help="", metavar=None)``."""

    def __call__(
        self, *flags: str, apply: Callable[[str], None], help: str = "", metavar: str | None = None
    ) -> None:
        """Add an option taking one value to ``shipmates chat`` (for example ``"--nats"``);
        when the user gives it, ``apply(value)`` runs before the crew is assembled."""


class ShipmatesSpec:
    """The hooks a shipmates plugin may implement."""

    @hookspec
    def register_agents(self, register: RegisterAgent) -> None:
        """Contribute siblings from code.

        Call ``register(sibling_or_provider, name=None, provenance=None, instances=())`` once
        per sibling. A provider is a zero-argument callable returning a sibling; shipmates
        builds it in isolation and records the plugin's distribution as the sibling's
        provenance. May be called again on refresh (for example to pick up remote siblings).
        """

    @hookspec
    def register_models(self, register: RegisterModel) -> None:
        """Contribute model backends: ``register(model, aliases=())``.

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
    def run_event(self, event: RunEvent) -> None:
        """Every event of every run, as :meth:`shipmates.Agent.stream` yields it (text deltas,
        tool calls, model calls with usage, run started and finished), siblings' included.

        Called in the thread that produced the event, while the run waits: keep it quick.
        Implementing it makes runs stream their model output.
        """

    @hookspec
    def register_commands(self, register: RegisterCommand) -> None:
        """Contribute REPL slash commands: ``register(name, handler, help="")``.

        ``handler(context, argument_text)`` (a :class:`CommandContext`) may be sync or async;
        what it returns (a str) is printed.
        """

    @hookspec
    def register_cli(self, register: RegisterCli) -> None:
        """Contribute ``shipmates`` subcommands: ``register(name, help, configure, run)``.

        ``configure(parser)`` adds arguments to an ``argparse.ArgumentParser``;
        ``run(args) -> int`` executes the command and returns the exit status.
        Keep the plugin module cheap to import: import heavy libraries inside ``run``.
        """

    @hookspec
    def register_chat_options(self, register: RegisterChatOption) -> None:
        """Contribute options to ``shipmates chat``: ``register(*flags, apply, help="", metavar=None)``.

        Each option takes one value; when the user gives it, shipmates calls ``apply(value)``
        before assembling the crew (so ``register_agents`` sees it). Nothing is written to
        the environment.
        """

    @hookspec
    def refresh_agents(self, captain: Agent) -> None:
        """The REPL is about to start a turn or the user typed ``/refresh``.

        Plugins that contribute siblings which come and go (remote ones) update the
        captain here; must be cheap when nothing changed.
        """


HOOK_NAMES = tuple(name for name in vars(ShipmatesSpec) if not name.startswith("_"))
"""Every hook, in the order they are documented."""
