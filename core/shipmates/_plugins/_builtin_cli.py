"""Built-in plugin: the ``chat``, ``agents``, ``plugins`` and ``new`` subcommands.

``tryfirst``: registered before any plugin's, so a plugin reusing a built-in name is the one
reported and skipped. The CLI calls :func:`register_cli` directly, without loading plugins,
when the command line names a built-in subcommand (start-up time).
"""

from __future__ import annotations

from ._hookspecs import RegisterCli, hookimpl


@hookimpl(tryfirst=True)
def register_cli(register: RegisterCli) -> None:
    from .._cli._main import register_builtin_commands

    register_builtin_commands(register)
