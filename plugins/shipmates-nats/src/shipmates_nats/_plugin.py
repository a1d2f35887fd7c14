"""The pluggy plugin (entry point ``nats`` in ``shipmates.plugins``). Cheap to import."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipmates.plugin import Selector, hookimpl, local_agent_names

if TYPE_CHECKING:
    from shipmates import Agent
    from shipmates.plugin import RegisterAgent, RegisterChatOption, RegisterCli

    from ._config import NatsSettings
    from ._remote import RemoteCrew

URL_ENV = "SHIPMATES_NATS_URL"
chat_url: dict[str, str | None] = {"url": None}
"""``shipmates chat --nats URL``, handed over by ``register_chat_options`` (wins over the env)."""
_serving: list[bool] = []
"""Non-empty while ``serve`` discovers its local siblings (see :func:`local_only`)."""
_warned: set[str] = set()
_decided: set[str] = set()
"""Remote names the last discovery already ruled on (absorbed, conflicting or excluded)."""
_ours: set[str] = set()
"""Remote names whose proxy a captain absorbed (so they may leave and come back)."""


def _warn(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        print(f"warning: shipmates-nats: {text}", file=sys.stderr)


@hookimpl
def register_cli(register: RegisterCli) -> None:
    from . import _cli

    register("serve", _cli.SERVE_HELP, _cli.configure_serve, _cli.run_serve)
    register("nats", _cli.NATS_HELP, _cli.configure_nats, _cli.run_nats)


def _use_url(url: str) -> None:
    from ._config import CREDENTIALS_IN_URL, url_has_credentials

    if url_has_credentials(url):
        _warn(CREDENTIALS_IN_URL)  # not refused: core would echo the URL, secret included
    chat_url["url"] = url


@hookimpl
def register_chat_options(register: RegisterChatOption) -> None:
    register(
        "--nats",
        metavar="URL",
        apply=_use_url,
        help=f"NATS server for remote siblings (default {URL_ENV}; from shipmates-nats)",
    )


def _settings() -> NatsSettings | None:
    """The captain's NATS settings: ``chat --nats`` or the environment; None when neither names a server."""
    url = chat_url["url"]
    if _serving or (not url and not os.environ.get(URL_ENV)):
        return None
    from ._config import NatsSettings

    return NatsSettings.from_env(url=url)


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Contribute no remote sibling meanwhile: ``serve`` hosts local siblings, never other replicas."""
    _serving.append(True)
    try:
        yield
    finally:
        _serving.pop()


def _crew() -> RemoteCrew | None:
    settings = _settings()
    if settings is None:
        return None
    from ._remote import get_crew

    return get_crew(settings)


@hookimpl
def register_agents(register: RegisterAgent) -> None:
    """With ``SHIPMATES_NATS_URL`` set: every sibling served in the namespace, as a proxy."""
    try:
        crew = _crew()
    except Exception as exc:  # recorded by discovery as this plugin's failure; said at once too
        _warn(f"remote siblings unavailable: {exc}")
        raise
    if crew is None:
        return
    crew.scan()
    crew.start_polling()
    _decided.clear()
    for proxy, _view, _dist, insts in crew.siblings():
        if not _remote_allowed(proxy.name, proxy.provenance.distribution):
            continue
        _decided.add(proxy.name)
        register(proxy, name=proxy.name, provenance=proxy.provenance, instances=[i.id for i in insts])


def _remote_allowed(name: str, distribution: str | None) -> bool:
    """``SHIPMATES_NATS_AGENTS`` / ``SHIPMATES_NATS_EXCLUDE`` pick remote siblings only.

    They settle a clash between a local sibling and a remote one from the same distribution,
    which the general allow/deny lists cannot tell apart.
    """
    selector = Selector.from_env("SHIPMATES_NATS_AGENTS", "SHIPMATES_NATS_EXCLUDE")
    return selector.allows(name, distribution, "remote")


def _allowed(name: str, distribution: str | None) -> bool:
    """The general allow/deny lists, for a remote sibling that appeared after discovery."""
    selector = Selector.from_env("SHIPMATES_AGENTS", "SHIPMATES_EXCLUDE_AGENTS")
    return selector.allows(name, distribution, "remote")


_retry = {"at": 0.0, "busy": False}
RETRY_SECONDS = 10.0


def _connect_in_background() -> None:
    if _retry["busy"] or time.monotonic() - float(_retry["at"]) < RETRY_SECONDS:
        return
    _retry.update(at=time.monotonic(), busy=True)

    def attempt() -> None:
        try:
            crew = _crew()
            if crew is not None:
                crew.scan()
                crew.start_polling()
        except Exception as exc:
            _warn(f"NATS still unavailable ({exc}); retrying every {RETRY_SECONDS:.0f}s")
        finally:
            _retry["busy"] = False

    threading.Thread(target=attempt, name="shipmates-nats-connect", daemon=True).start()


@hookimpl
def refresh_agents(captain: Agent) -> None:
    """Absorb siblings that appeared since discovery; drop those whose replicas all vanished.

    Uses the background poller's latest scan, so it costs nothing when nothing changed.
    """
    settings = _settings()
    if settings is None or not hasattr(captain, "absorb"):
        return
    from ._remote import POLL_INTERVAL, find_crew

    crew = find_crew(settings)
    if crew is None:
        _connect_in_background()  # NATS was unreachable at start: try again, never blocking a turn
        return
    if time.monotonic() - crew.scanned_at > 3 * POLL_INTERVAL:
        crew.scan()  # the poller is behind (or was never started): look now
    served: dict[str, list[Any]] = {}
    for proxy, _view, _dist, _insts in crew.siblings():
        served.setdefault(proxy.name, []).append(proxy)
    local: set[str] | None = None
    for name, proxies in served.items():
        proxy = proxies[0]
        tool = captain.get_tool(name)
        if len(proxies) > 1 or name == captain.name:
            continue  # same name from two distributions: discovery reports it, nobody absorbs it
        if tool is not None:
            if tool.sibling is proxy:
                proxy.available = True
                _ours.add(name)
            elif name not in _decided:
                _warn(
                    f"remote {proxy.label} not absorbed: captain '{captain.name}' already has '{name}' "
                    f"({tool.provenance.describe() if tool.provenance else 'a tool'})"
                )
            continue
        if name in _decided and name not in _ours:
            continue  # discovery refused it (conflict, exclusion, rejection): its report stands
        local = local_agent_names() if local is None else local
        if name in local:
            _warn(
                f"remote {proxy.label} not absorbed: a local sibling is also named '{name}'; "
                "choose one with SHIPMATES_AGENTS or SHIPMATES_EXCLUDE_AGENTS"
            )
            continue
        dist = proxy.provenance.distribution
        if not (_allowed(name, dist) and _remote_allowed(name, dist)):
            continue
        try:
            captain.absorb(proxy, provenance=proxy.provenance)
        except Exception as exc:
            _warn(f"remote {proxy.label} not absorbed: {exc}")
            continue
        proxy.available = True
        _ours.add(name)
    for name in list(_ours):  # every replica gone: unavailable, off the captain's tools
        if name in served:
            continue
        gone = crew.proxies.get(name)
        if gone is not None:
            gone.available = False
        tool = captain.get_tool(name)
        if tool is not None and gone is not None and tool.sibling is gone:
            captain.remove(name)
