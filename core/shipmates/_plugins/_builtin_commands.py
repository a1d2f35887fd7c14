"""Built-in plugin: the REPL's own slash commands (/help, /agents, /model, ...).

``tryfirst``: they are registered before any plugin's, so a plugin reusing a built-in name is
the one reported and skipped.
"""

from __future__ import annotations

from typing import Any

from ._hookspecs import RegisterCommand, hookimpl


@hookimpl(tryfirst=True)
def register_commands(register: RegisterCommand) -> None:
    from .._cli._commands import BUILTIN

    for name, handler, help in BUILTIN:
        if name == "exit":  # /usage goes before /exit and /quit in /help
            register(
                "usage", _usage, "tokens and cost of this session, per agent: its own and what it delegated"
            )
        register(name, handler, help)


def _usage(context: Any, argument: str) -> str:
    from .._cli._views import usage_report

    return "\n".join(usage_report(context.chat.usage))
