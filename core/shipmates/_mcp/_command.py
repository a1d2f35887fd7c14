"""``shipmates mcp serve``: its arguments and entry (the MCP SDK is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR = 2


SERVE_DESCRIPTION = (
    "Serve every discovered sibling as an MCP tool named after it, over stdio (the default: stdout is "
    "the protocol channel) or streamable HTTP. A sibling that fails to load is left out and reported "
    "on stderr."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Model Context Protocol: serve the installed crew to any MCP client."
    sub = parser.add_subparsers(dest="mcp_command", metavar="COMMAND", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve every discovered sibling as an MCP tool (stdio, or streamable HTTP with --http)",
        description=SERVE_DESCRIPTION,
    )
    serve.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP at http://HOST:PORT/mcp")
    serve.add_argument(
        "--captain",
        nargs="?",
        const="",
        metavar="NAME",
        help="serve this agent as the captain of the crew, alone, as one tool "
        "(without NAME: the general captain)",
    )
    from .._cli._models_command import add_model_arguments

    add_model_arguments(serve)  # --model, --api-base, --api-key-env, -o, --model-timeout, as chat
    serve.add_argument("--only", action="append", metavar="NAMES", help="like chat --only")
    serve.add_argument("--exclude", action="append", metavar="NAMES", help="like chat --exclude")


def run(args: argparse.Namespace) -> int:
    from .._cli._main import _csv
    from .._settings import read_settings

    address = None
    if args.http:
        host, _, port = args.http.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            print(f"error: --http needs HOST:PORT, e.g. 127.0.0.1:8765, got {args.http!r}", file=sys.stderr)
            return USAGE_ERROR
        address = (host.strip("[]"), int(port))
    from .._cli._models_command import model_flags

    settings = read_settings(
        **model_flags(args), captain=args.captain or None, only=_csv(args.only), exclude=_csv(args.exclude)
    )
    from ._serve import serve

    return serve(settings, captain=args.captain is not None, http=address)
