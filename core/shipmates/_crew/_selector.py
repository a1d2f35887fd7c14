"""Allow/deny selection of siblings and plugins by name, distribution and origin: one policy.

A :class:`Selector` holds an allow-list (``None``: everything is allowed; empty: nothing is)
and a deny-list of tokens. A token is a sibling or plugin name, a distribution name (PEP 503
normalised, so ``Shipmates_Fib`` names ``shipmates-fib``), or either narrowed by origin:
``local:NAME`` / ``remote:NAME``, and ``local:*`` / ``remote:*`` for all of one origin.
Agents (``SHIPMATES_AGENTS`` / ``SHIPMATES_EXCLUDE_AGENTS``), plugins (``SHIPMATES_PLUGINS`` /
``SHIPMATES_EXCLUDE_PLUGINS``) and remote siblings all use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._entrypoints import normalize_dist

LOCAL = "entry-point"
"""The default origin: anything not served over the network counts as ``local:``."""


def parse_names(items: Iterable[str] | str) -> frozenset[str]:
    """Tokens from a list, or from one comma-separated string (as the environment variables take)."""
    if isinstance(items, str):
        items = items.split(",")
    return frozenset(item.strip() for item in items if item.strip())


@dataclass(frozen=True)
class Selector:
    """Which siblings or plugins to keep: an allow-list and a deny-list of tokens.

    ``allow_label`` and ``deny_label`` name where the lists came from in exclusion reasons
    (an environment variable, ``only=``, ``--exclude``).
    """

    allow: frozenset[str] | None = None
    """Tokens to keep; ``None`` keeps everything, an empty set keeps nothing."""
    deny: frozenset[str] = frozenset()
    """Tokens to drop, even when allowed."""
    allow_label: str = "allow"
    deny_label: str = "deny"
    prefer: frozenset[str] | None = None
    """Tokens naming the one copy that wins a name clash (``--prefer``); None: :func:`preferred`."""
    require: tuple[str, ...] | None = None
    """Version ranges of remote siblings (``fib>=1.2``); None: :func:`required`."""

    def preferred(self) -> frozenset[str]:
        """The prefer tokens: ``--prefer``, else ``SHIPMATES_PREFER``, else the config file's."""
        return preferred() if self.prefer is None else self.prefer

    def required(self) -> tuple[str, ...]:
        """The version ranges: given, else ``SHIPMATES_REQUIRE``, else the config file's."""
        return required() if self.require is None else self.require

    @classmethod
    def from_env(cls, allow_var: str, deny_var: str, *, environ: Mapping[str, str] | None = None) -> Selector:
        """The lists in two comma-separated variables: an unset ``allow_var`` allows everything,
        an empty one nothing; the variable names label the reasons."""
        env = os.environ if environ is None else environ
        allow = env.get(allow_var)
        return cls(
            None if allow is None else parse_names(allow),
            parse_names(env.get(deny_var, "")),
            allow_label=allow_var,
            deny_label=deny_var,
        )

    @staticmethod
    def match(token: str, name: str, distribution: str | None, origin: str = LOCAL) -> bool:
        """True when one token names ``name`` or (PEP 503 normalised) ``distribution``.

        A ``local:`` or ``remote:`` prefix narrows the token to siblings of that origin (remote:
        served over the network; local: everything else), and ``local:*`` / ``remote:*`` name all
        of them: the same distribution installed here and served elsewhere can be told apart.
        """
        token = token.strip()
        scope, colon, rest = token.partition(":")
        if colon and scope in ("local", "remote"):
            if (scope == "remote") != (origin == "remote"):
                return False
            token = rest.strip()
            if token == "*":
                return True
        if not token:
            return False
        if token == name:
            return True
        return distribution is not None and normalize_dist(token) == normalize_dist(distribution)

    def exclusion(self, name: str, distribution: str | None = None, origin: str = LOCAL) -> str | None:
        """Why ``name`` (from ``distribution``, of ``origin``) is left out, or None when it is kept."""
        if self.allow is not None and not any(self.match(t, name, distribution, origin) for t in self.allow):
            if self.allow:
                return f"not in the allow-list ({self.allow_label})"
            return f"the allow-list ({self.allow_label}) is empty"
        if self.denies(name, distribution, origin):
            return f"excluded by the deny-list ({self.deny_label})"
        return None

    def denies(self, name: str, distribution: str | None = None, origin: str = LOCAL) -> bool:
        """True when a deny token names ``name`` (whatever the allow-list says)."""
        return any(self.match(t, name, distribution, origin) for t in self.deny)

    def allows(self, name: str, distribution: str | None = None, origin: str = LOCAL) -> bool:
        """True when ``name`` is kept."""
        return self.exclusion(name, distribution, origin) is None


def selector_matches(token: str, name: str, distribution: str | None, origin: str = LOCAL) -> bool:
    """True when an allow/deny token names ``name`` or (PEP 503 normalised) ``distribution``.

    The rule of :meth:`Selector.match`; see :class:`Selector` for whole allow/deny lists.
    """
    return Selector.match(token, name, distribution, origin)


PREFER_ENV = "SHIPMATES_PREFER"
REQUIRE_ENV = "SHIPMATES_REQUIRE"


def preferred(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """``SHIPMATES_PREFER`` (else the config file's ``[agents] prefer``): tokens (as in the lists)
    naming the one copy that wins a name clash."""
    env = os.environ if environ is None else environ
    if PREFER_ENV in env:
        return parse_names(env[PREFER_ENV])
    from .._config import read_config

    return parse_names(read_config().prefer or ())


def required(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``SHIPMATES_REQUIRE`` (else the config file's ``[agents] require``): version ranges, as
    text; a plugin that calls remote siblings parses and applies them (shipmates-nats)."""
    env = os.environ if environ is None else environ
    if REQUIRE_ENV in env:
        return (env[REQUIRE_ENV],)
    from .._config import read_config

    return read_config().require or ()
