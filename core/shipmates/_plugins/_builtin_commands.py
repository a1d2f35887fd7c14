"""Built-in plugin: the REPL's own slash commands (/help, /agents, /model, ...).

``tryfirst``: they are registered before any plugin's, so a plugin reusing a built-in name is
the one reported and skipped.
"""

from __future__ import annotations

from ._hookspecs import RegisterCommand, hookimpl


@hookimpl(tryfirst=True)
def register_commands(register: RegisterCommand) -> None:
    from .._cli._commands import BUILTIN

    for name, handler, help in BUILTIN:
        register(name, handler, help)
