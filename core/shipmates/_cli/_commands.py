"""REPL slash commands: the built-in ones and those plugins add through ``register_commands``
(the built-in ones too, through the built-in plugin ``shipmates._plugins._builtin_commands``).

A handler is ``handler(context, argument_text)``, sync or async; a str it returns is printed.
``context`` is a :class:`ReplContext`: the chat it was typed in and the REPL's output, never
the REPL itself. ``/exit`` ends the session by raising :class:`shipmates.EndSession`, like the
exit sibling.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import EndSession
from ._views import GOODBYE, format_tools, help_text, on_off_text, refresh_text, roster

if TYPE_CHECKING:
    from .._crew._assemble import Crew
    from .._plugins._hookspecs import CommandHandler, RegisterCommand
    from .._plugins._host import PluginHost
    from .._run._agent import Agent
    from .._run._session import Session
    from ._chat_session import ChatSession
    from ._trace import Tracer

Handler = Callable[[Any, str], Any]


class ReplContext:
    """What a slash command handler receives (it satisfies ``shipmates.plugin.CommandContext``).

    :attr:`chat` is the :class:`~._chat_session.ChatSession` (captain, crew, memory, model,
    approve, refresh); :meth:`say`, :meth:`warn` and :meth:`error` print (stdout,
    ``warning: ...`` and ``error: ...`` on stderr); :attr:`commands` and :attr:`tracer` are the
    REPL's, for /help and /trace.
    """

    def __init__(
        self,
        chat: ChatSession,
        *,
        say: Callable[[str], None],
        warn: Callable[[str], None],
        error: Callable[[str], None],
        commands: CommandTable,
        tracer: Tracer,
    ) -> None:
        self.chat = chat
        self.commands = commands
        self.tracer = tracer
        self._say, self._warn, self._error = say, warn, error

    def say(self, text: str) -> None:
        """Print ``text`` on stdout (command output)."""
        self._say(text)

    def warn(self, text: str) -> None:
        """Print ``warning: text`` on stderr."""
        self._warn(text)

    def error(self, text: str) -> None:
        """Print ``error: text`` on stderr."""
        self._error(text)

    @property
    def captain(self) -> Agent:
        """The captain :class:`shipmates.Agent`."""
        return self.chat.captain

    @property
    def crew(self) -> Crew:
        """The captain with how its crew was discovered and absorbed."""
        return self.chat.crew

    @property
    def session(self) -> Session | None:
        """The conversation memory (None with ``--memory 0``)."""
        return self.chat.memory

    def refresh(self, *, report: bool = False) -> str:
        """Run ``refresh_agents``; with ``report``, a line saying what changed."""
        before, after = self.chat.refresh()
        return refresh_text(before, after) if report else ""


@dataclass
class Command:
    name: str
    handler: Handler
    help: str = ""
    plugin: str | None = None


class CommandTable:
    """Slash commands by name (without the slash)."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, name: str, handler: Handler, help: str = "", *, plugin: str | None = None) -> None:
        name = name.lstrip("/")
        if name in self._commands:
            raise ValueError(f"command /{name} already exists")
        self._commands[name] = Command(name, handler, help, plugin)

    def __contains__(self, name: str) -> bool:
        return name in self._commands

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def names(self) -> list[str]:
        return list(self._commands)

    async def dispatch(self, context: ReplContext, line: str) -> None:
        """Run ``/name argument...``; unknown names and handler errors are reported, not raised."""
        name, _, argument = line.strip()[1:].partition(" ")
        command = self._commands.get(name)
        if command is None:
            context.error(f"unknown command: /{name} (try /help)")
            return
        try:
            result = command.handler(context, argument.strip())
            if inspect.isawaitable(result):
                result = await result
        except EndSession:
            raise
        except Exception as exc:
            context.error(f"/{name} failed: {type(exc).__name__}: {exc}")
            return
        if result:
            context.say(str(result))


def _on_off(argument: str, current: bool, what: str) -> bool:
    word = argument.lower()
    if word in ("on", "yes", "1", "true"):
        return True
    if word in ("off", "no", "0", "false"):
        return False
    if not word:
        return current
    raise ValueError(f"usage: /{what} on|off")


def _help(context: ReplContext, argument: str) -> str:
    return help_text(context.commands)


def _agents(context: ReplContext, argument: str) -> str:
    return "\n".join(roster(context.chat))


def _tools(context: ReplContext, argument: str) -> str:
    return "\n".join(format_tools(context.captain))


def _model(context: ReplContext, argument: str) -> str:
    if argument:
        context.chat.set_model(argument)
    return f"model: {context.chat.model_name}"


def _clear(context: ReplContext, argument: str) -> str:
    context.chat.clear()
    return "conversation cleared"


def _trace(context: ReplContext, argument: str) -> str:
    context.tracer.enabled = _on_off(argument, context.tracer.enabled, "trace")
    return on_off_text("trace", context.tracer.enabled)


def _approve(context: ReplContext, argument: str) -> str:
    context.chat.approve = _on_off(argument, context.chat.approve, "approve")
    return on_off_text("approve", context.chat.approve)


def _triage(context: ReplContext, argument: str) -> str:
    captain = context.chat.captain
    if argument:
        captain.triage = _on_off(argument, False, "triage")
    if captain.triage is None:
        return "triage: not set (on for a model whose config alias says triage = true)"
    return on_off_text("triage", captain.triage)


def _refresh(context: ReplContext, argument: str) -> str:
    return context.refresh(report=True)


def _exit(context: ReplContext, argument: str) -> str:
    raise EndSession(GOODBYE)


BUILTIN: list[tuple[str, Handler, str]] = [
    ("help", _help, "this list"),
    ("agents", _agents, "the roster: every discovered sibling with its status, failures included"),
    ("tools", _tools, "the captain's tools and absorbed siblings"),
    ("model", _model, "show the model, or switch to NAME (/model NAME)"),
    ("clear", _clear, "forget the conversation"),
    ("trace", _trace, "live trace of tool calls on stderr: /trace on|off"),
    ("approve", _approve, "ask before each tool call or delegation: /approve on|off"),
    ("triage", _triage, "ask the model which siblings a request needs first (small models): /triage on|off"),
    ("refresh", _refresh, "look for siblings that came or went (plugins such as NATS)"),
    ("exit", _exit, "leave (history is saved)"),
    ("quit", _exit, "leave (history is saved)"),
]


def build_commands(host: PluginHost | None, warn: Callable[[str], None]) -> CommandTable:
    """Every plugin's commands (``register_commands``), the built-in plugin's first; a failing or
    clashing plugin is reported. Without a host, or one without the built-in plugin, the
    built-in commands alone."""
    from .._plugins import _builtin_commands
    from .._plugins._host import PluginRecord

    table = CommandTable()

    def each(plugin: PluginRecord) -> dict[str, RegisterCommand]:
        def register(name: str, handler: CommandHandler, help: str = "") -> None:
            try:
                table.add(name, handler, help, plugin=None if plugin.builtin else plugin.name)
            except ValueError as exc:
                warn(f"plugin {plugin.name}: {exc}")

        return {"register": register}

    if host is None or not host.manager.is_registered(_builtin_commands):
        _builtin_commands.register_commands(**each(PluginRecord("shipmates.builtin.commands", builtin=True)))
    if host is not None:
        for failure in host.call_each("register_commands", each=each).failures:
            warn(str(failure))
    return table
