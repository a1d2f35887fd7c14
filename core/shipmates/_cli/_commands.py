"""REPL slash commands: the built-in ones and those plugins add through ``register_commands``
(the built-in ones too, through the built-in plugin ``shipmates._plugins._builtin_commands``).

A handler is ``handler(repl, argument_text)``, sync or async; a str it returns is printed.
``/exit`` ends the session by raising :class:`shipmates.EndSession`, like the exit sibling.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import EndSession

if TYPE_CHECKING:
    from .._plugins._hookspecs import CommandHandler, RegisterCommand
    from .._plugins._host import PluginHost
    from ._repl import Repl

Handler = Callable[[Any, str], Any]


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

    async def dispatch(self, repl: Repl, line: str) -> None:
        """Run ``/name argument...``; unknown names and handler errors are reported, not raised."""
        name, _, argument = line.strip()[1:].partition(" ")
        command = self._commands.get(name)
        if command is None:
            repl.error(f"unknown command: /{name} (try /help)")
            return
        try:
            result = command.handler(repl, argument.strip())
            if inspect.isawaitable(result):
                result = await result
        except EndSession:
            raise
        except Exception as exc:
            repl.error(f"/{name} failed: {type(exc).__name__}: {exc}")
            return
        if result:
            repl.say(str(result))


def _on_off(argument: str, current: bool, what: str) -> bool:
    word = argument.lower()
    if word in ("on", "yes", "1", "true"):
        return True
    if word in ("off", "no", "0", "false"):
        return False
    if not word:
        return current
    raise ValueError(f"usage: /{what} on|off")


def _help(repl: Repl, argument: str) -> str:
    width = max(len(c.name) for c in repl.commands) + 1
    lines = [f"/{c.name.ljust(width)} {c.help}" for c in repl.commands]
    lines.append("Anything else is a message to the captain. Tab completes, Ctrl-R searches history,")
    lines.append("Ctrl-C cancels a running turn (or clears the line), Ctrl-D exits.")
    return "\n".join(lines)


def _agents(repl: Repl, argument: str) -> str:
    return "\n".join(repl.roster())


def _tools(repl: Repl, argument: str) -> str:
    return "\n".join(repl.tool_lines())


def _model(repl: Repl, argument: str) -> str:
    if argument:
        repl.set_model(argument)
    return f"model: {repl.model_name}"


def _clear(repl: Repl, argument: str) -> str:
    repl.clear()
    return "conversation cleared"


def _trace(repl: Repl, argument: str) -> str:
    repl.tracer.enabled = _on_off(argument, repl.tracer.enabled, "trace")
    return f"trace {'on' if repl.tracer.enabled else 'off'}"


def _approve(repl: Repl, argument: str) -> str:
    repl.approve = _on_off(argument, repl.approve, "approve")
    return f"approve {'on' if repl.approve else 'off'}"


def _refresh(repl: Repl, argument: str) -> str:
    return repl.refresh(report=True)


def _exit(repl: Repl, argument: str) -> str:
    raise EndSession("Goodbye.")


BUILTIN: list[tuple[str, Handler, str]] = [
    ("help", _help, "this list"),
    ("agents", _agents, "the roster: every discovered sibling with its status, failures included"),
    ("tools", _tools, "the captain's tools and absorbed siblings"),
    ("model", _model, "show the model, or switch to NAME (/model NAME)"),
    ("clear", _clear, "forget the conversation"),
    ("trace", _trace, "live trace of tool calls on stderr: /trace on|off"),
    ("approve", _approve, "ask before each tool call or delegation: /approve on|off"),
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
