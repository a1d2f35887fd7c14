"""The ``shipmates up|down|scale|status`` subcommands (the crew supervisor, :mod:`._supervisor`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

UP_HELP = "start and keep running the `serve` workers of a crew (CREW.toml)"
DOWN_HELP = "stop a crew started with `shipmates up`: drain, SIGTERM, then SIGKILL"
SCALE_HELP = "set how many replicas of a sibling a running crew keeps (scale NAME N)"
STATUS_HELP = "the crews' siblings: replicas, state, restarts, load, breakers, budget"
DEFAULT_CREW = "crew"


def _crew_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crew", metavar="NAME", help="which running crew (default: the only one)")


def configure_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("crew_file", nargs="?", metavar="CREW.toml", help="the crew file (see the README)")
    parser.add_argument(
        "--sibling",
        action="append",
        metavar="NAME[=N]",
        help="without a crew file: serve NAME with N replicas (default 1); repeatable",
    )
    parser.add_argument("--name", help=f"crew name without a crew file (default {DEFAULT_CREW!r})")
    parser.add_argument(
        "--nats", metavar="URL", help="NATS server (default: the crew file, SHIPMATES_NATS_URL)"
    )
    parser.add_argument(
        "--namespace", help="NATS namespace (default: the crew file, SHIPMATES_NATS_NAMESPACE)"
    )
    parser.add_argument("-d", "--detach", action="store_true", help="keep running in the background")


def _load(args: argparse.Namespace) -> Any:
    from ._crewfile import load_crew, parse_crew
    from ._errors import NatsSetupError

    if args.crew_file:
        crew = load_crew(Path(args.crew_file))
    elif args.sibling:
        siblings: dict[str, Any] = {}
        for item in args.sibling:
            name, _, n = item.partition("=")
            if n and not n.isdigit():
                raise NatsSetupError(f"--sibling {item}: the replica count must be a whole number")
            siblings[name] = {"replicas": int(n or 1)}
        crew = parse_crew({"siblings": siblings}, name=args.name or DEFAULT_CREW)
    else:
        raise NatsSetupError("name a crew file (shipmates up CREW.toml) or siblings (--sibling NAME=N)")
    if args.nats or args.namespace:
        from dataclasses import replace

        crew = replace(crew, nats=args.nats or crew.nats, namespace=args.namespace or crew.namespace)
    from ._config import CREDENTIALS_IN_URL, url_has_credentials

    if crew.nats and url_has_credentials(crew.nats):
        raise NatsSetupError(CREDENTIALS_IN_URL)
    return crew


def run_up(args: argparse.Namespace) -> int:
    import asyncio

    from shipmates import ShipmatesError

    from ._supervisor import PidLock, Supervisor, crew_dir, running_pid

    try:
        crew = _load(args)
        lock_path = crew_dir(crew.name) / "up.pid"
        if args.detach:
            held = running_pid(crew.name)
            if held is not None:
                print(f"error: crew '{crew.name}' is already running (PID {held})", file=sys.stderr)
                return 1
            return _detach(args, crew.name, lock_path.parent)
        lock = PidLock(lock_path).acquire()
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="up: %(message)s")
    logging.getLogger("nats").setLevel(logging.WARNING)
    if lock.stale is not None:
        print(
            f"took over the stale pidfile of crew '{crew.name}' (PID {lock.stale} is gone)", file=sys.stderr
        )
    supervisor = Supervisor(
        crew, overrides={k: v for k, v in (("nats", args.nats), ("namespace", args.namespace)) if v}
    )

    def ready(s: Supervisor) -> None:
        plan = ", ".join(f"{n}={p.replicas}" for n, p in crew.siblings.items())
        print(
            f"crew {crew.name} up (PID {os.getpid()}): {plan} on {s.settings().display_url}; logs in "
            f"{s.dir / 'logs'}; `shipmates status`, `shipmates down`",
            flush=True,
        )

    try:
        asyncio.run(supervisor.run(ready))
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    return 0


def _detach(args: argparse.Namespace, name: str, where: Path) -> int:
    """Run this very command without ``--detach`` in a session of its own; wait until it holds the lock."""
    from ._supervisor import running_pid

    argv = [a for a in sys.argv[1:] if a not in ("-d", "--detach")]
    log_path = where / "up.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipmates", *argv],
        stdin=subprocess.DEVNULL,
        stdout=fd,
        stderr=fd,
        start_new_session=True,
    )
    os.close(fd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(
                f"error: crew '{name}' did not start (exit {proc.returncode}); see {log_path}",
                file=sys.stderr,
            )
            return 1
        if running_pid(name) == proc.pid:
            print(
                f"crew {name} up in the background (PID {proc.pid}); log {log_path}; "
                "stop it with `shipmates down`"
            )
            return 0
        time.sleep(0.05)
    print(f"error: crew '{name}' did not take its pidfile within 60s; see {log_path}", file=sys.stderr)
    return 1


def _running(args: argparse.Namespace) -> tuple[str, int] | None:
    """The crew named by ``--crew``, else the only running one; prints why not."""
    from ._supervisor import crews_dir, running_pid

    if args.crew:
        pid = running_pid(args.crew)
        if pid is None:
            print(f"error: crew '{args.crew}' is not running (start it with `shipmates up`)", file=sys.stderr)
            return None
        return args.crew, pid
    up = [(d.name, pid) for d in sorted(crews_dir().iterdir()) if (pid := running_pid(d.name)) is not None]
    if len(up) == 1:
        return up[0]
    if not up:
        print("error: no crew is running here (start one with `shipmates up CREW.toml`)", file=sys.stderr)
    else:
        print(
            f"error: several crews are running ({', '.join(n for n, _ in up)}): name one with --crew",
            file=sys.stderr,
        )
    return None


def configure_down(parser: argparse.ArgumentParser) -> None:
    _crew_arg(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for it (default 120)",
    )


def run_down(args: argparse.Namespace) -> int:
    from ._supervisor import running_pid

    found = _running(args)
    if found is None:
        return 1
    name, pid = found
    os.kill(pid, signal.SIGTERM)  # the supervisor drains its workers, then SIGKILLs stragglers
    print(f"stopping crew {name} (PID {pid}): draining its workers", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    # Stopped once it lets go of its pidfile (it may linger as a zombie of whoever started it).
    while running_pid(name) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_pid(name) == pid:
        print(f"error: crew '{name}' (PID {pid}) still running after {args.timeout:g}s", file=sys.stderr)
        return 1
    print(f"crew {name} stopped", file=sys.stderr)
    return 0


def configure_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the sibling")
    parser.add_argument("replicas", type=int, metavar="N", help="replicas to keep (0 stops them all)")
    _crew_arg(parser)


def run_scale(args: argparse.Namespace) -> int:
    from ._supervisor import crew_dir, write_private

    found = _running(args)
    if found is None:
        return 1
    name, pid = found
    if args.replicas < 0:
        print("error: N must be 0 or more", file=sys.stderr)
        return 2
    try:
        state = json.loads((crew_dir(name) / "state.json").read_text())
    except (OSError, ValueError):  # the supervisor has not written its first state yet
        print(f"error: crew '{name}' is still starting; try again in a moment", file=sys.stderr)
        return 1
    if args.name not in {s["name"] for s in state["siblings"]}:
        print(f"error: crew '{name}' has no sibling '{args.name}' (add it to the crew file)", file=sys.stderr)
        return 1
    path = crew_dir(name) / "scale.json"
    try:
        asked = json.loads(path.read_text())
    except (OSError, ValueError):
        asked = {}
    asked[args.name] = args.replicas
    write_private(path, json.dumps(asked))
    os.kill(pid, signal.SIGUSR1)
    print(f"crew {name}: {args.name} scaled to {args.replicas} (idle workers drain first)", file=sys.stderr)
    return 0


def configure_status(parser: argparse.ArgumentParser) -> None:
    from ._config import add_arguments

    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="how long to listen for heartbeats (default: interval + 0.5)",
    )
    parser.add_argument("--no-nats", action="store_true", help="only the supervisors on this machine")
    add_arguments(parser)


def _targets(args: argparse.Namespace, crews: list[dict[str, Any]]) -> list[Any]:
    """Where to listen for heartbeats: ``--nats``/the environment, else each local crew's server."""
    from ._config import NatsSettings

    if args.no_nats:
        return []
    if args.url or os.environ.get("SHIPMATES_NATS_URL"):
        return [NatsSettings.from_args(args)]
    from ._crewfile import credential_env

    out = {}
    for crew in crews:
        env = credential_env(crew.get("credentials", {}))
        settings = NatsSettings.from_env({**os.environ, **env}, url=crew["nats"], namespace=crew["namespace"])
        out[(crew["nats"], crew["namespace"])] = settings
    return list(out.values())


def run_status(args: argparse.Namespace) -> int:
    from shipmates import ShipmatesError

    from ._status import collect, default_wait, local_crews, render

    wait = args.wait if args.wait is not None else default_wait()
    while True:
        try:
            crews = local_crews()
            doc = collect(_targets(args, crews), wait, crews)
        except ShipmatesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        text = json.dumps(doc, indent=1) if args.json else render(doc)
        if not args.watch:
            print(text)
            return 0
        print("\x1b[H\x1b[2J" + text, flush=True)
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            return 0
