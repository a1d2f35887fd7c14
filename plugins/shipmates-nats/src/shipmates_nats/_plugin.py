"""The pluggy plugin (entry point ``nats`` in ``shipmates.plugins``). Cheap to import."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipmates.plugin import Selector, agent_selector, hookimpl, local_agent_names, selector_matches

if TYPE_CHECKING:
    from shipmates import Agent
    from shipmates.plugin import RegisterAgent, RegisterChatOption, RegisterCli

    from ._config import NatsSettings
    from ._remote import RemoteCrew, RemoteSibling

URL_ENV = "SHIPMATES_NATS_URL"
chat_url: dict[str, str | None] = {"url": None}
"""``shipmates chat --nats URL``, handed over by ``register_chat_options`` (wins over the env)."""
_serving: list[bool] = []
"""Non-empty while ``serve`` discovers its local siblings (see :func:`local_only`)."""
_warned: set[str] = set()
_decided: set[str] = set()
"""Remote names the last discovery already ruled on (absorbed, conflicting or excluded)."""
_ours: dict[str, RemoteSibling] = {}
"""Remote names whose proxy a captain absorbed: that proxy (its distribution) may leave and come
back; no other distribution ever takes the name."""


def warn(text: str) -> None:
    """One line on stderr, once per text: the plugin's warnings, never a traceback, never
    repeated on every call."""
    if text not in _warned:
        _warned.add(text)
        print(f"warning: shipmates-nats: {text}", file=sys.stderr)


@hookimpl
def register_cli(register: RegisterCli) -> None:
    from . import _cli

    register("serve", _cli.SERVE_HELP, _cli.configure_serve, _cli.run_serve)
    register("nats", _cli.NATS_HELP, _cli.configure_nats, _cli.run_nats)
    from . import _upcli as up

    register("up", up.UP_HELP, up.configure_up, up.run_up)
    register("down", up.DOWN_HELP, up.configure_down, up.run_down)
    register("scale", up.SCALE_HELP, up.configure_scale, up.run_scale)
    register("status", up.STATUS_HELP, up.configure_status, up.run_status)


def _use_url(url: str) -> None:
    from ._config import CREDENTIALS_IN_URL, url_has_credentials

    if url_has_credentials(url):
        warn(CREDENTIALS_IN_URL)  # not refused: core would echo the URL, secret included
    chat_url["url"] = url


@hookimpl
def register_chat_options(register: RegisterChatOption) -> None:
    register(
        "--nats",
        metavar="URL",
        apply=_use_url,
        help=f"NATS server for remote siblings (default {URL_ENV}; from shipmates-nats)",
    )
    register(
        "--require",
        metavar="RANGES",
        apply=_use_require,
        help="version ranges of remote siblings, e.g. 'fib>=1.2,<2' (SHIPMATES_REQUIRE; from shipmates-nats)",
    )


def _use_require(ranges: str) -> None:
    from ._versions import use_chat_require  # packaging: only when the option is given

    use_chat_require(ranges)


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
        warn(f"remote siblings unavailable: {exc}")
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
        if proxy.fallback is None and prefers_remote(proxy.name, proxy.distribution):
            _load_fallback(proxy)
        register(proxy, name=proxy.name, provenance=proxy.provenance, instances=[i.id for i in insts])


def prefers_remote(name: str, distribution: str | None) -> bool:
    """The prefer tokens (``--prefer``, ``SHIPMATES_PREFER`` or the config file's ``[agents]
    prefer``) name the served ``name`` and not the one installed here (``remote:fib``): discovery
    keeps the remote one, and the local copy becomes its fallback."""
    tokens = agent_selector().preferred()
    return any(
        selector_matches(t, name, distribution, "remote")
        and not selector_matches(t, name, None, "entry-point")
        for t in tokens
    )


def _load_fallback(proxy: RemoteSibling) -> None:
    """Give ``proxy`` the local copy of its sibling, when one is installed here."""
    if proxy.name not in local_agent_names():
        return
    from shipmates.plugin import load_local_agent

    try:
        proxy.fallback = load_local_agent(proxy.name)
    except LookupError as exc:
        warn(f"no local fallback for {proxy.label}: {exc}")
        return
    proxy.update(proxy.card, proxy.instances, proxy.hosts)  # /agents names the fallback


def _remote_allowed(name: str, distribution: str | None) -> bool:
    """``SHIPMATES_NATS_AGENTS`` / ``SHIPMATES_NATS_EXCLUDE`` pick remote siblings only.

    They settle a clash between a local sibling and a remote one from the same distribution,
    which the general allow/deny lists cannot tell apart.
    """
    selector = Selector.from_env("SHIPMATES_NATS_AGENTS", "SHIPMATES_NATS_EXCLUDE")
    return selector.allows(name, distribution, "remote")


def _wanted(selector: Selector, proxy: RemoteSibling) -> bool:
    """The session's lists (``--only``/``--exclude`` and the environment) and the remote-only ones."""
    return selector.allows(proxy.name, proxy.distribution, "remote") and _remote_allowed(
        proxy.name, proxy.distribution
    )


def _local_rival(name: str, selector: Selector) -> bool:
    """True when a sibling installed here is named ``name`` and the session's lists keep it
    (``--exclude 'local:*'`` or ``--only 'remote:*'`` leave the name to the served one)."""
    return name in local_agent_names() and selector.allows(name, None, "entry-point")


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
            warn(f"NATS still unavailable ({exc}); retrying every {RETRY_SECONDS:.0f}s")
        finally:
            _retry["busy"] = False

    threading.Thread(target=attempt, name="shipmates-nats-connect", daemon=True).start()


@hookimpl
def refresh_agents(captain: Agent) -> None:
    """Absorb siblings that appeared since discovery; drop those whose replicas all vanished.

    Uses the background poller's latest scan, so it costs nothing when nothing changed. A name
    stays with the distribution the captain absorbed: another one serving it is reported as a
    conflict and never called.
    """
    settings = _settings()
    if settings is None or not hasattr(captain, "absorb"):
        return
    from ._remote import POLL_INTERVAL, RemoteSibling, find_crew

    crew = find_crew(settings)
    if crew is None:
        _connect_in_background()  # NATS was unreachable at start: try again, never blocking a turn
        return
    if time.monotonic() - crew.scanned_at > 3 * POLL_INTERVAL:
        crew.scan()  # the poller is behind (or was never started): look now
    served: dict[str, list[RemoteSibling]] = {}
    for proxy, _view, _dist, _insts in crew.siblings():
        served.setdefault(proxy.name, []).append(proxy)
    for name, sibling in captain.siblings.items():
        if isinstance(sibling, RemoteSibling) and sibling.crew is crew:
            _ours.setdefault(name, sibling)  # absorbed by discovery
    selector = agent_selector()
    for name, proxies in served.items():
        if name != captain.name:
            _refresh_name(captain, crew.ns, name, proxies, selector)
    for name, proxy in list(_ours.items()):  # every replica gone: unavailable, off the captain's tools
        if proxy in served.get(name, ()):
            continue
        proxy.available = False
        tool = captain.get_tool(name)
        if tool is not None and tool.sibling is proxy and proxy.fallback is None:
            captain.remove(name)  # (with a fallback it stays: the local copy answers meanwhile)


def _refresh_name(
    captain: Agent, ns: str, name: str, proxies: list[RemoteSibling], selector: Selector
) -> None:
    """Settle one served name: keep (or take back) the captain's own distribution, absorb a new one."""
    ours = _ours.get(name)
    tool = captain.get_tool(name)
    if ours is not None:
        for rival in proxies:
            if rival is not ours:
                warn(
                    f"conflict: the name '{name}' is also served by {rival.where} in namespace {ns}; "
                    f"captain '{captain.name}' keeps {ours.where} and sends the other no calls: stop "
                    "that `shipmates serve` or serve it under another name"
                )
        if tool is None and ours in proxies:
            _take(captain, ours)  # its replicas are back
        elif tool is not None and tool.sibling is ours:
            ours.available = True
        return
    if tool is not None and len(proxies) == 1 and _takes_over(tool, proxies[0]):
        proxies[0].fallback = tool.sibling  # the local copy answers whenever no replica does
        proxies[0].update(proxies[0].card, proxies[0].instances, proxies[0].hosts)
        captain.remove(name)
        _take(captain, proxies[0])
        return
    if tool is not None:
        if name not in _decided:
            warn(
                f"remote {proxies[0].label} not absorbed: captain '{captain.name}' already has "
                f"'{name}' ({tool.provenance.describe() if tool.provenance else 'a tool'})"
            )
        return
    if name in _decided:
        return  # discovery refused it (conflict, exclusion, rejection): its report stands
    wanted = [x for x in proxies if _wanted(selector, x)]  # the lists first: they may rule out the local one
    if len(wanted) > 1:
        warn(
            f"conflict: the name '{name}' is served by {' and by '.join(x.where for x in wanted)} in "
            f"namespace {ns}; none is absorbed: pick one with SHIPMATES_NATS_AGENTS or "
            "SHIPMATES_NATS_EXCLUDE (by distribution)"
        )
    elif wanted and _local_rival(name, selector):
        warn(
            f"remote {wanted[0].label} not absorbed: a local sibling is also named '{name}'; choose "
            "one with --only/--exclude (local:NAME, remote:NAME) or SHIPMATES_EXCLUDE_AGENTS"
        )
    elif wanted:
        _take(captain, wanted[0])


def _takes_over(tool: Any, proxy: RemoteSibling) -> bool:
    """True when ``SHIPMATES_PREFER`` wants ``proxy`` instead of the local sibling behind ``tool``."""
    provenance = getattr(tool, "provenance", None)
    local = provenance is not None and provenance.origin != "remote"
    return local and prefers_remote(proxy.name, proxy.distribution)


def _take(captain: Agent, proxy: RemoteSibling) -> None:
    try:
        captain.absorb(proxy, provenance=proxy.provenance)
    except Exception as exc:
        warn(f"remote {proxy.label} not absorbed: {exc}")
        return
    proxy.available = True
    _ours[proxy.name] = proxy
