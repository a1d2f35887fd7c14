"""Allow/deny selection of siblings and plugins by name, distribution and origin."""

from __future__ import annotations

import os

from ._entrypoints import normalize_dist


def selector_matches(token: str, name: str, distribution: str | None, origin: str = "entry-point") -> bool:
    """True when an allow/deny token names ``name`` or (PEP 503 normalised) ``distribution``.

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


def env_list(var: str) -> set[str] | None:
    """The comma-separated names in ``var``; None when unset (an empty value gives an empty set)."""
    value = os.environ.get(var)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}
