"""Helpers shared by agent and plugin loading; free of pluggy so listing stays cheap to import."""

from __future__ import annotations

import os

from ._entrypoints import normalize_dist


def is_strict() -> bool:
    """True when ``SHIPMATES_STRICT`` asks to re-raise load failures."""
    return os.environ.get("SHIPMATES_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


def exception_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def module_missing(exc: BaseException, module: str) -> bool:
    """True when ``exc`` says ``module`` itself (or a parent package) is missing, not a dependency."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return False
    return module == exc.name or module.startswith(exc.name + ".")


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
