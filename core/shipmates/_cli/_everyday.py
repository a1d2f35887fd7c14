"""The everyday subcommands beside ``chat``: ``install``, ``uninstall``, ``logs`` and ``models``.

Each imports what it needs when it runs; registered by the built-in CLI plugin with the others.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._plugins._hookspecs import RegisterCli

EVERYDAY_COMMANDS = ("install", "uninstall", "logs", "models")


def register_everyday_commands(register: RegisterCli) -> None:
    """Register the subcommands of this module (``register_cli``'s callback)."""
    register(
        "install",
        "pip install sibling packages into shipmates' Python; says who joined",
        _add_install,
        _install,
    )
    register(
        "uninstall", "pip uninstall sibling packages; says who left the crew", _add_uninstall, _uninstall
    )
    register("logs", "show the conversation log (turns, tool calls, usage)", _add_logs, _logs)
    register("models", "list models and aliases, or set the default model", _add_models, _models)


def _add_install(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Install packages with pip into the interpreter that runs shipmates (not whatever `pip` "
        "is first on PATH), then list the siblings that joined the crew."
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="what pip install accepts")
    parser.add_argument("-U", "--upgrade", action="store_true", help="pip install --upgrade")
    parser.add_argument("-e", "--editable", action="store_true", help="pip install -e (a project directory)")


def _install(args: argparse.Namespace) -> int:
    from ._install import run_pip

    extra = [*(["--upgrade"] if args.upgrade else [])]
    packages = [item for p in args.packages for item in (["-e", p] if args.editable else [p])]
    return run_pip("install", packages, extra=extra)


def _add_uninstall(parser: argparse.ArgumentParser) -> None:
    parser.description = "Uninstall packages with pip from shipmates' interpreter; list who left the crew."
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="distribution names")


def _uninstall(args: argparse.Namespace) -> int:
    from ._install import run_pip

    return run_pip("uninstall", args.packages)


def _add_logs(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show logged chat turns, newest last. Turn logging off with --no-log or SHIPMATES_LOG=0."
    )
    parser.add_argument(
        "-n", "--count", type=int, default=3, metavar="N", help="the last N turns (default 3; 0: all)"
    )
    parser.add_argument("--cid", metavar="ID", help="every turn of this conversation")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _logs(args: argparse.Namespace) -> int:
    from ._logs import print_logs

    return print_logs(count=args.count or None, cid=args.cid, as_json=args.json)


def _add_models(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List the registered models, the aliases from the config file and the default model; "
        "`shipmates models default NAME` sets the default."
    )
    parser.add_argument("action", nargs="?", choices=["list", "default"], default="list")
    parser.add_argument("name", nargs="?", help="with `default`: the model or alias to use by default")


def _models(args: argparse.Namespace) -> int:
    from ._models_command import print_models, set_default

    if args.action == "default":
        if not args.name:
            print_models()
            return 0
        return set_default(args.name)
    return print_models()
