"""Connection settings (URL, namespace, credentials, TLS) from flags or environment, and connect()."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._errors import NatsConnectError
from ._wire import fast_headers

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
    "token_file": "SHIPMATES_NATS_TOKEN_FILE",
    "password_file": "SHIPMATES_NATS_PASSWORD_FILE",
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
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    nkey: str | None = field(default=None, repr=False)
    """Path of an nkey seed file, or (from ``SHIPMATES_NATS_NKEY``) the seed itself."""
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

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or self.user or self.nkey or self.creds) or any(
            urlsplit(u).username for u in self.servers
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> NatsSettings:
        """Settings from ``SHIPMATES_NATS_*``; keyword overrides win. ``token_file``/``password_file``
        (overrides, or ``SHIPMATES_NATS_TOKEN_FILE``/``_PASSWORD_FILE``) name files holding the secret."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {k: env[v] for k, v in _ENV.items() if env.get(v)}
        if env.get("SHIPMATES_NATS_MAX_BYTES"):
            values["max_bytes"] = int(env["SHIPMATES_NATS_MAX_BYTES"])
        given = {k: v for k, v in overrides.items() if v is not None}
        for secret in ("token", "password"):  # a flag's file, else the variable's, else the variable
            flag_file, env_file = given.pop(f"{secret}_file", None), values.pop(f"{secret}_file", None)
            if (flag_file or env_file) and secret not in given:
                values[secret] = read_secret(flag_file or env_file, secret)
        values.update(given)
        settings = cls(**values)
        check_namespace(settings.namespace)
        return settings

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NatsSettings:
        """Flags (see :func:`add_arguments`) override the environment; secrets on the command
        line are refused (:func:`refuse_secret_flags`)."""
        refuse_secret_flags(args)
        nkey = getattr(args, "nkey", None)
        if nkey and not os.path.exists(nkey) and looks_like_seed(nkey):
            raise NatsConnectError(
                "--nkey-file takes the path of a seed file, and a seed on the command line is "
                "visible to every user in the process list: write the seed to a file only you can "
                "read (chmod 600) and pass its path, or set SHIPMATES_NATS_NKEY"
            )
        url = getattr(args, "url", None)
        if url and url_has_credentials(url):
            raise NatsConnectError(CREDENTIALS_IN_URL)
        keys = (*_ENV, "token_file", "password_file")
        return cls.from_env(**{k: getattr(args, k, None) for k in keys if k not in ("token", "password")})


_SECRET_FLAGS = {
    "token": "--token-file FILE or SHIPMATES_NATS_TOKEN",
    "password": "--password-file FILE or SHIPMATES_NATS_PASSWORD",
}
CREDENTIALS_IN_URL = (
    "the --nats URL carries credentials, which every user can read in the process list: give the "
    "URL without them and the credentials in SHIPMATES_NATS_TOKEN_FILE (or SHIPMATES_NATS_USER with "
    "SHIPMATES_NATS_PASSWORD_FILE; serve also takes --token-file/--password-file), or put the whole "
    "URL in SHIPMATES_NATS_URL"
)
_SEED_RE = re.compile(r"^S[A-Z][A-Z2-7]{50,}$")


def looks_like_seed(value: str) -> bool:
    """An nkey seed (``SU...``), as opposed to the path of a file holding one."""
    return bool(_SEED_RE.match(value.strip()))


def url_has_credentials(url: str) -> bool:
    return any("@" in (urlsplit(u.strip()).netloc or "") for u in url.split(","))


def refuse_secret_flags(args: argparse.Namespace) -> None:
    """Raise when ``--token`` or ``--password`` was given: the value is in the process list."""
    for secret, fix in _SECRET_FLAGS.items():
        if getattr(args, secret, None) is not None:
            raise NatsConnectError(
                f"--{secret} puts the {secret} in the process list, where every user of this machine "
                f"can read it (ps, /proc/PID/cmdline): put it in a file only you can read "
                f"(chmod 600) and use {fix}"
            )


def read_secret(path: str, what: str) -> str:
    """The secret in the file at ``path`` (surrounding whitespace stripped).

    Errors never show the file's content, nor the path when no such file exists (it may be the
    secret itself, given by mistake). Warns once when others may read the file.
    """
    flag = f"--{what}-file"
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NatsConnectError(
            f"the {what} file given by {flag} (or SHIPMATES_NATS_{what.upper()}_FILE) does not exist: "
            f"it takes the path of a file holding the {what}, not the {what} itself"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NatsConnectError(
            f"cannot read the {what} file {path} ({type(exc).__name__}); check it"
        ) from None
    if not text:
        raise NatsConnectError(f"the {what} file {path} is empty; write the {what} into it")
    if "\n" in text or "\r" in text:
        raise NatsConnectError(f"the {what} file {path} has more than one line; keep only the {what}")
    if stat.S_IMODE(mode) & 0o077:
        _warn_once(f"{path} holding the NATS {what} can be read by other users: chmod 600 {path}")
    return text


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        print(f"warning: shipmates-nats: {text}", file=sys.stderr)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url if "://" in url else f"nats://{url}").hostname or ""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 as a destination is this host


def exposure_warning(s: NatsSettings) -> str | None:
    """What is wrong with connecting as ``s``: a server beyond loopback, without credentials or TLS."""
    remote = [u for u in s.servers if not _is_loopback(u)]
    if not remote or s.has_credentials or _wants_tls(s):
        return None
    return (
        f"NATS at {s.display_url} is reached beyond loopback with neither credentials nor TLS: "
        "anyone who can reach the server can read and answer these calls; use "
        "--token-file / --user with --password-file / --nkey-file / --creds (or their SHIPMATES_NATS_* "
        "variables) and a tls:// URL"
    )


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
    add_secret_arguments(g)
    g.add_argument(
        "--nkey-file",
        "--nkey",
        dest="nkey",
        metavar="SEED_FILE",
        help="nkey seed file [SHIPMATES_NATS_NKEY: a seed file, or the seed]",
    )
    g.add_argument("--creds", metavar="FILE", help="credentials file [SHIPMATES_NATS_CREDS]")
    g.add_argument("--tls-ca", dest="tls_ca", metavar="PEM", help="CA bundle [SHIPMATES_NATS_TLS_CA]")
    g.add_argument("--tls-cert", dest="tls_cert", metavar="PEM", help="client cert [SHIPMATES_NATS_TLS_CERT]")
    g.add_argument("--tls-key", dest="tls_key", metavar="PEM", help="client key [SHIPMATES_NATS_TLS_KEY]")
    g.add_argument("--tls-hostname", dest="tls_hostname", help="expected server name in its certificate")


def add_secret_arguments(g: Any) -> None:
    """``--token-file``, ``--user``, ``--password-file``; ``--token``/``--password`` only to refuse them."""
    g.add_argument(
        "--token-file", metavar="FILE", help="file holding the auth token [SHIPMATES_NATS_TOKEN_FILE]"
    )
    g.add_argument("--user", help="user name [SHIPMATES_NATS_USER]")
    g.add_argument(
        "--password-file", metavar="FILE", help="file holding the password [SHIPMATES_NATS_PASSWORD_FILE]"
    )
    for secret in _SECRET_FLAGS:  # kept so they are refused with the fix, not taken as --X-file
        g.add_argument(f"--{secret}", help=argparse.SUPPRESS)


def _wants_tls(s: NatsSettings) -> bool:
    return bool(s.tls_ca or s.tls_cert or any(u.startswith("tls://") for u in s.servers))


def _tls_context(s: NatsSettings) -> Any:
    if not _wants_tls(s):
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
    if s.nkey and not os.path.exists(s.nkey) and looks_like_seed(s.nkey):
        opts["nkeys_seed_str"] = s.nkey.strip()  # SHIPMATES_NATS_NKEY holds the seed itself
    elif s.nkey:
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
    for secret in (s.token, s.password, s.nkey if s.nkey and looks_like_seed(s.nkey) else None):
        if secret:
            text = text.replace(secret, "***")  # whatever the library put in its message
    low = text.lower()
    if "authorization" in low or "authentication" in low or "user authentication" in low:
        return (
            f"NATS at {s.display_url} rejected the credentials ({text}); check --token-file/--user/"
            "--password-file/--nkey-file/--creds or the SHIPMATES_NATS_* variables"
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
    from ._nats_import import import_nats

    import_nats(s.url)
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

    warning = exposure_warning(s)
    if warning:
        _warn_once(warning)
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
            nc = task.result()
        except Exception as e:
            raise NatsConnectError(_explain(e, s)) from e
        fast_headers(nc)
        return nc
    task.cancel()
    with contextlib.suppress(BaseException):
        await task  # the connect attempt is abandoned
    raise NatsConnectError(_explain(fatal.result() if fatal.done() else (last[-1] if last else None), s))
