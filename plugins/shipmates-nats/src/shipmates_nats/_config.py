"""Connection settings (URL, namespace, credentials, TLS) from flags or environment, and connect()."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ._errors import NatsConnectError

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_NAMESPACE = "shipmates"
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_TIMEOUT = 600.0
"""``serve``'s cap on a call's run time when ``--max-timeout`` is not given (or the sibling's own timeout)."""
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# flag attribute -> environment variable
_ENV = {
    "url": "SHIPMATES_NATS_URL",
    "namespace": "SHIPMATES_NATS_NAMESPACE",
    "token": "SHIPMATES_NATS_TOKEN",
    "user": "SHIPMATES_NATS_USER",
    "password": "SHIPMATES_NATS_PASSWORD",
    "nkey": "SHIPMATES_NATS_NKEY",
    "creds": "SHIPMATES_NATS_CREDS",
    "tls_ca": "SHIPMATES_NATS_TLS_CA",
    "tls_cert": "SHIPMATES_NATS_TLS_CERT",
    "tls_key": "SHIPMATES_NATS_TLS_KEY",
    "tls_hostname": "SHIPMATES_NATS_TLS_HOSTNAME",
}


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` or raise: it becomes a subject token and part of stream names."""
    if not _NAMESPACE_RE.match(namespace):
        raise NatsConnectError(
            f"invalid NATS namespace {namespace!r}: use 1-32 letters, digits, '_' or '-' "
            "(it prefixes every subject the crew uses)"
        )
    return namespace


@dataclass(frozen=True)
class NatsSettings:
    """Where and how to connect. ``servers`` may list several URLs (a cluster)."""

    url: str = DEFAULT_URL
    namespace: str = DEFAULT_NAMESPACE
    token: str | None = None
    user: str | None = None
    password: str | None = None
    nkey: str | None = None
    """Path of an nkey seed file."""
    creds: str | None = None
    """Path of a ``.creds`` file (JWT + nkey seed)."""
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_hostname: str | None = None
    connect_timeout: float = 5.0
    max_bytes: int = DEFAULT_MAX_BYTES
    """Largest request or response body shipmates sends or accepts."""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    @property
    def display_url(self) -> str:
        """The URL(s) without any embedded password, for messages."""
        return ",".join(re.sub(r"//[^@/]*@", "//", u) for u in self.servers)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> NatsSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {k: env[v] for k, v in _ENV.items() if env.get(v)}
        if env.get("SHIPMATES_NATS_MAX_BYTES"):
            values["max_bytes"] = int(env["SHIPMATES_NATS_MAX_BYTES"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        check_namespace(settings.namespace)
        return settings

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NatsSettings:
        """Flags (see :func:`add_arguments`) override the environment."""
        return cls.from_env(**{k: getattr(args, k, None) for k in _ENV})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --nats, --namespace, credential and TLS flags (defaults come from SHIPMATES_NATS_*)."""
    g = parser.add_argument_group("NATS connection (each flag defaults to its SHIPMATES_NATS_* variable)")
    g.add_argument(
        "--nats",
        dest="url",
        metavar="URL",
        help=f"server URL(s), comma separated [SHIPMATES_NATS_URL, default {DEFAULT_URL}]",
    )
    g.add_argument(
        "--namespace",
        metavar="NS",
        help=f"subject prefix isolating this crew [SHIPMATES_NATS_NAMESPACE, default {DEFAULT_NAMESPACE}]",
    )
    g.add_argument("--token", help="auth token [SHIPMATES_NATS_TOKEN]")
    g.add_argument("--user", help="user name [SHIPMATES_NATS_USER]")
    g.add_argument("--password", help="password; prefer SHIPMATES_NATS_PASSWORD")
    g.add_argument("--nkey", metavar="SEED_FILE", help="nkey seed file [SHIPMATES_NATS_NKEY]")
    g.add_argument("--creds", metavar="FILE", help="credentials file [SHIPMATES_NATS_CREDS]")
    g.add_argument("--tls-ca", dest="tls_ca", metavar="PEM", help="CA bundle [SHIPMATES_NATS_TLS_CA]")
    g.add_argument("--tls-cert", dest="tls_cert", metavar="PEM", help="client cert [SHIPMATES_NATS_TLS_CERT]")
    g.add_argument("--tls-key", dest="tls_key", metavar="PEM", help="client key [SHIPMATES_NATS_TLS_KEY]")
    g.add_argument("--tls-hostname", dest="tls_hostname", help="expected server name in its certificate")


def _tls_context(s: NatsSettings) -> Any:
    if not (s.tls_ca or s.tls_cert or any(u.startswith("tls://") for u in s.servers)):
        return None
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.tls_ca)
    if s.tls_cert:
        ctx.load_cert_chain(s.tls_cert, s.tls_key)
    return ctx


def connect_options(s: NatsSettings, *, name: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (reconnect forever once connected)."""
    opts: dict[str, Any] = {
        "servers": s.servers,
        "name": name,
        "connect_timeout": max(1, int(s.connect_timeout)),
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "ping_interval": 5,
        "max_outstanding_pings": 2,
    }
    if s.token:
        opts["token"] = s.token
    if s.user:
        opts["user"] = s.user
        opts["password"] = s.password or ""
    if s.nkey:
        opts["nkeys_seed"] = s.nkey
    if s.creds:
        opts["user_credentials"] = s.creds
    tls = _tls_context(s)
    if tls is not None:
        opts["tls"] = tls
        if s.tls_hostname:
            opts["tls_hostname"] = s.tls_hostname
    return opts


def _explain(error: BaseException | None, s: NatsSettings) -> str:
    text = f"{type(error).__name__}: {error}" if error else "no answer"
    low = text.lower()
    if "authorization" in low or "authentication" in low or "user authentication" in low:
        return (
            f"NATS at {s.display_url} rejected the credentials ({text}); check --token/--user/"
            "--password/--nkey/--creds or the SHIPMATES_NATS_* variables"
        )
    if "ssl" in low or "certificate" in low or "tls" in low:
        return (
            f"TLS with NATS at {s.display_url} failed ({text}); check --tls-ca/--tls-cert/--tls-key "
            "and that the URL scheme is tls://"
        )
    if "nkeys" in low or "nacl" in low:
        return f"nkey or creds authentication needs `pip install 'shipmates-nats[nkeys]'` ({text})"
    return (
        f"cannot reach NATS at {s.display_url} ({text}); start one with `shipmates nats up` or "
        "pass --nats URL / set SHIPMATES_NATS_URL"
    )


async def connect(s: NatsSettings, *, name: str = "shipmates", **callbacks: Any) -> Any:
    """Connect or raise :class:`NatsConnectError` within ``connect_timeout`` with a clear reason.

    A rejected credential fails at once instead of retrying.
    """
    import nats

    last: list[BaseException] = []
    fatal: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    user_error_cb = callbacks.pop("error_cb", None)

    async def error_cb(e: BaseException) -> None:
        last.append(e)
        low = str(e).lower()
        if not fatal.done() and (
            "authorization" in low
            or "authentication" in low
            or "certificate verify failed" in low
            or "wrong_version_number" in low
        ):
            fatal.set_result(e)
        if user_error_cb is not None:
            await user_error_cb(e)

    opts = connect_options(s, name=name)
    opts.update(callbacks)
    task = asyncio.ensure_future(nats.connect(error_cb=error_cb, **opts))
    try:
        waiting: set[asyncio.Future[Any]] = {task, fatal}
        done, _ = await asyncio.wait(waiting, timeout=s.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    if task in done:
        try:
            return task.result()
        except Exception as e:
            raise NatsConnectError(_explain(e, s)) from e
    task.cancel()
    with contextlib.suppress(BaseException):
        await task  # the connect attempt is abandoned
    raise NatsConnectError(_explain(fatal.result() if fatal.done() else (last[-1] if last else None), s))
