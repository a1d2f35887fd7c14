"""The ``shipmates`` command line.

Start-up time matters (``shipmates agents`` is benchmarked against a bare interpreter), so
this module imports only the standard library and the cheap core of ``shipmates``; each
subcommand imports what it needs when it runs. The built-in subcommands are registered by the
built-in CLI plugin through ``register_cli`` like any plugin's, but plugins are loaded and asked
(``register_cli``) only when the command line names something that is not built in, or asks for
the top-level help; ``chat`` asks them for its options (``register_chat_options``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._settings import Settings, SettingsError
from .._startup import freeze_for_exit
from ._everyday import EVERYDAY_COMMANDS, register_everyday_commands
from ._models_command import add_model_arguments, model_flags

if TYPE_CHECKING:
    from .._plugins._hookspecs import RegisterChatOption, RegisterCli
    from .._plugins._host import PluginRecord

BUILTIN_COMMANDS = ("chat", "agents", "plugins", "new", *EVERYDAY_COMMANDS)
_TOP_LEVEL_ONLY = ("-h", "--help", "--version")
USAGE_ERROR = 2


@dataclass
class PluginCommand:
    """A subcommand contributed through the ``register_cli`` hook."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    plugin: str = ""


def _csv(values: list[str] | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; None stays None (meaning: use the env)."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@dataclass
class ChatOption:
    """An option of ``shipmates chat`` contributed through the ``register_chat_options`` hook."""

    flags: tuple[str, ...]
    apply: Callable[[str], None]
    help: str = ""
    metavar: str | None = None
    plugin: str = ""
    dest: str = ""


def _add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "The captain REPL."
    parser.add_argument(
        "--captain",
        metavar="NAME",
        help="make this discovered agent the captain; it absorbs every other sibling",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAMES",
        help=(
            "load only these agents or distributions, comma-separated; local:NAME or "
            "remote:NAME picks by origin (like SHIPMATES_AGENTS)"
        ),
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="NAMES",
        help=(
            "do not load these agents or distributions; local:NAME, remote:NAME or "
            "remote:* pick by origin (like SHIPMATES_EXCLUDE_AGENTS)"
        ),
    )
    parser.add_argument(
        "--prefer",
        action="append",
        metavar="NAMES",
        help=(
            "settle a name clash for the copy these name: remote:fib uses the served fib, the "
            "installed one its fallback (like SHIPMATES_PREFER)"
        ),
    )
    parser.add_argument("--once", metavar="PROMPT", help="answer one prompt on stdout and exit (no REPL)")
    parser.add_argument(
        "--approve",
        action="store_true",
        help="ask before each tool call and delegation, nested ones included (also /approve on|off)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        metavar="TURNS",
        help="turns of conversation the captain remembers (0: none; default SHIPMATES_MEMORY_TURNS, "
        "else the last 200 messages)",
    )
    parser.add_argument("--no-trace", action="store_true", help="start with the live trace off")
    parser.add_argument(
        "-s",
        "--system",
        metavar="TEXT",
        help="the captain's instructions for this session, instead of its own",
    )
    parser.add_argument(
        "--triage",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the captain first asks the model which siblings a request needs (a short call): "
        "for small models, which call siblings that do not fit (also SHIPMATES_TRIAGE=1, or "
        "triage = true in a model alias; --no-triage turns that off)",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "-c",
        "--continue",
        dest="resume_latest",
        action="store_true",
        help="resume the last logged conversation",
    )
    resume.add_argument("--cid", metavar="ID", help="resume this logged conversation (see `shipmates logs`)")
    parser.add_argument(
        "--no-log", action="store_true", help="do not record this session's turns (also SHIPMATES_LOG=0)"
    )
    parser.add_argument(
        "--json", action="store_true", help="with --once: print one JSON object (output, usage...)"
    )
    parser.add_argument(
        "--usage", action="store_true", help="print tokens and cost after each answer (stderr)"
    )
    budget = "limit of each answer's whole tree, siblings included; the run stops with budget_exhausted"
    parser.add_argument(
        "--max-tokens", type=int, metavar="N", help=f"tokens: {budget} (also SHIPMATES_MAX_TOKENS)"
    )
    parser.add_argument(
        "--max-cost", type=float, metavar="USD", help=f"cost: {budget} (also SHIPMATES_MAX_COST)"
    )
    parser.add_argument(
        "--max-delegations",
        type=int,
        metavar="N",
        help=f"sibling calls: {budget} (also SHIPMATES_MAX_DELEGATIONS)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback of a failing plugin hook"
    )
    parser.add_argument("--version", action="version", version=f"shipmates {__version__}")


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stream = sys.__stdout__
        try:
            columns = os.get_terminal_size(stream.fileno()).columns if stream is not None else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the width it would compute, minus its ``import shutil``.

    argparse builds a formatter for every ``add_argument`` (to check the metavar); the first
    one imports shutil (with bz2 and lzma: ~2 ms of every command, ``agents --json`` and a
    one-shot turn included) just for the terminal width.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
        **kwargs: Any,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as HelpFormatter does
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser using :class:`_HelpFormatter` unless told otherwise; subcommand parsers
    (plugins' too) are of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def register_builtin_commands(register: RegisterCli) -> None:
    """The built-in subcommands, as the built-in CLI plugin registers them (``register_cli``)."""
    register("chat", "the captain REPL (the default)", _add_chat_arguments, _run_chat)
    register("agents", "list discovered sibling agents and their status", _add_agents_arguments, _run_agents)
    register(
        "plugins",
        "list pluggy plugins with distribution, version and hooks",
        _add_plugins_arguments,
        _run_plugins,
    )
    register("new", "write a new sibling agent package", _add_new_arguments, _run_new)
    register_everyday_commands(register)


def _builtin_commands() -> list[PluginCommand]:
    commands: list[PluginCommand] = []
    register_builtin_commands(lambda *a: commands.append(PluginCommand(*a)))
    return commands


def _add_agents_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List every discovered sibling: name, distribution, version, entry point and "
        "status (ok, failed with reason, conflict, excluded). Imports no sibling unless --load."
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--load", action="store_true", help="build each sibling: adds description, tools, load time"
    )
    parser.add_argument("--only", action="append", metavar="NAMES", help="like chat --only")
    parser.add_argument("--exclude", action="append", metavar="NAMES", help="like chat --exclude")


def _add_plugins_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "List the loaded pluggy plugins (built-in and shipmates.plugins entry points)."
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a new sibling agent package (pyproject with the entry point, a module "
        "with a provider and an example tool, a README and a test)."
    )
    parser.add_argument("name", help="the agent's name (letters, digits, '_' or '-')")
    parser.add_argument("--dir", metavar="DIR", default=".", help="parent directory (default: .)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="into an existing package: rewrite the generated files, keep the rest",
    )


def build_parser(
    plugin_commands: Sequence[PluginCommand] = (), chat_options: Sequence[ChatOption] = ()
) -> argparse.ArgumentParser:
    """The full parser: built-in subcommands, those contributed by plugins, plugins' chat options."""
    parser = _Parser(
        prog="shipmates",
        description="Talk to a captain agent that absorbed every installed sibling agent. "
        "Without a subcommand, starts the chat REPL.",
    )
    parser.add_argument("--version", action="version", version=f"shipmates {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for command in [*_builtin_commands(), *plugin_commands]:
        if command.name in seen:
            continue
        seen.add(command.name)
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(command_parser)
        if command.name == "chat":
            for option in chat_options:
                command_parser.add_argument(
                    *option.flags, dest=option.dest, metavar=option.metavar, help=option.help
                )
        command_parser.set_defaults(_run=command.run)
    return parser


def _wants_plugin_commands(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    first = argv[0]
    if first in ("-h", "--help"):
        return True
    return not first.startswith("-") and first not in BUILTIN_COMMANDS


def _ask_plugins(hook: str, each: Callable[[PluginRecord], Mapping[str, Any]], stderr: Any) -> None:
    """Call ``hook`` of every plugin (``each(plugin)``: its ``register``); failures are warnings."""
    from .._text import print_safe  # warnings quote plugins' own text

    try:
        from .._plugins._host import default_host

        host = default_host()
    except SettingsError:  # SHIPMATES_STRICT and the like: the user's to fix, said once by main
        raise
    except Exception as exc:  # the CLI must keep working when plugins are broken
        print_safe(f"warning: plugins unavailable: {type(exc).__name__}: {exc}", stderr)
        return
    for failure in host.call_each(hook, each=each).failures:
        print_safe(f"warning: {failure}", stderr)


def collect_plugin_commands(stderr: Any = None) -> list[PluginCommand]:
    """Ask every plugin for its subcommands (``register_cli``); a failing plugin is reported and skipped."""
    stderr = stderr or sys.stderr
    commands: list[PluginCommand] = []

    def each(plugin: PluginRecord) -> dict[str, RegisterCli]:
        def register(
            name: str,
            help: str,
            configure: Callable[[argparse.ArgumentParser], None],
            run: Callable[[argparse.Namespace], int],
        ) -> None:
            if any(c.name == name for c in commands):
                print(f"warning: plugin {plugin.name!r}: subcommand {name!r} already exists", file=stderr)
                return
            commands.append(PluginCommand(name, help, configure, run, plugin.name))

        return {"register": register}

    _ask_plugins("register_cli", each, stderr)
    return commands


def collect_chat_options(stderr: Any = None) -> list[ChatOption]:
    """Ask every plugin for its ``chat`` options (``register_chat_options``); failures are reported."""
    stderr = stderr or sys.stderr
    options: list[ChatOption] = []

    def each(plugin: PluginRecord) -> dict[str, RegisterChatOption]:
        def register(
            *flags: str, apply: Callable[[str], None], help: str = "", metavar: str | None = None
        ) -> None:
            dest = f"_chat_option_{len(options)}"
            options.append(ChatOption(flags, apply, help, metavar, plugin.name, dest))

        return {"register": register}

    _ask_plugins("register_chat_options", each, stderr)
    return options


def _apply_chat_options(args: argparse.Namespace, options: Sequence[ChatOption]) -> bool:
    """Hand each plugin option the user gave to its plugin; False (reported) when one refused it."""
    from .._text import print_safe  # the error quotes the plugin's own text

    for option in options:
        value = getattr(args, option.dest, None)
        if value is None:
            continue
        try:
            option.apply(value)
        except Exception as exc:
            # Not the value: it may be a secret (a URL with a token in it).
            print_safe(f"error: {option.flags[0]}: plugin {option.plugin}: {exc}", sys.stderr)
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shipmates`` console script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # A bare `shipmates`, or `shipmates --captain fib`, means `shipmates chat ...`.
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in _TOP_LEVEL_ONLY):
        args_list.insert(0, "chat")
    try:
        plugin_commands = collect_plugin_commands() if _wants_plugin_commands(args_list) else []
        chat_options = collect_chat_options() if args_list[0] == "chat" else []
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    parser = build_parser(plugin_commands, chat_options)
    args = parser.parse_args(args_list)  # exits 2 with usage on an unknown flag
    args.as_command = argv is None  # this process is the shipmates command: it exits after main
    if not _apply_chat_options(args, chat_options):
        return USAGE_ERROR
    try:
        return int(args._run(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if argv is None:  # the console script or `python -m shipmates`: the process exits next
            freeze_for_exit()


def _run_chat(args: argparse.Namespace) -> int:
    from ._chat import run_chat

    if args.json and args.once is None:
        print("error: --json needs --once PROMPT (the REPL prints text)", file=sys.stderr)
        return USAGE_ERROR
    return run_chat(
        _settings(args),
        once=args.once,
        pause_gc=getattr(args, "as_command", False),
        as_json=args.json,
        usage=args.usage,
    )


def _settings(args: argparse.Namespace) -> Settings:
    """The command's settings: its flags, then the environment (validated), then the defaults."""
    from .._settings import read_settings

    return read_settings(
        **model_flags(args),
        captain=getattr(args, "captain", None),
        only=_csv(args.only),
        exclude=_csv(args.exclude),
        prefer=_csv(getattr(args, "prefer", None)),
        memory=getattr(args, "memory", None),
        trace=not getattr(args, "no_trace", False),
        approve=getattr(args, "approve", False),
        verbose=getattr(args, "verbose", False),
        max_tokens=getattr(args, "max_tokens", None),
        max_cost=getattr(args, "max_cost", None),
        max_delegations=getattr(args, "max_delegations", None),
        log=False if getattr(args, "no_log", False) else None,
        conversation=getattr(args, "cid", None)
        or ("latest" if getattr(args, "resume_latest", False) else None),
        system=getattr(args, "system", None),
        triage=getattr(args, "triage", None),
    )


def _run_agents(args: argparse.Namespace) -> int:
    from .._models._session import use_session
    from ._views import print_agents

    settings = _settings(args)
    with use_session(settings):  # `--load` shows which model each sibling uses
        return print_agents(as_json=args.json, load=args.load, only=settings.only, exclude=settings.exclude)


def _run_plugins(args: argparse.Namespace) -> int:
    from ._views import print_plugins

    return print_plugins(as_json=args.json)


def _run_new(args: argparse.Namespace) -> int:
    from .._errors import ShipmatesError
    from ._scaffold import next_steps, scaffold

    try:
        path = scaffold(args.name, args.dir, force=args.force)
    except (ShipmatesError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"created {path}")
    print(next_steps(path))
    return 0
