"""Where shipmates keeps per-user files: state (history, NATS data) and cache (discovery).

``SHIPMATES_HOME`` overrides everything (``$SHIPMATES_HOME/state`` and ``$SHIPMATES_HOME/cache``);
otherwise ``$XDG_STATE_HOME/shipmates`` and ``$XDG_CACHE_HOME/shipmates``, defaulting to
``~/.local/state/shipmates`` and ``~/.cache/shipmates``. Directories are created on demand.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def _base(kind: str, xdg_var: str, default: str) -> str:
    home = os.environ.get("SHIPMATES_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), kind)
    xdg = os.environ.get(xdg_var)
    # The XDG spec says relative values are invalid and must be ignored.
    if not xdg or not os.path.isabs(xdg):
        xdg = os.path.join(os.path.expanduser("~"), default)
    return os.path.join(xdg, "shipmates")


def state_path() -> str:
    """The state directory as a string, without creating it."""
    return _base("state", "XDG_STATE_HOME", os.path.join(".local", "state"))


def cache_path() -> str:
    """The cache directory as a string, without creating it (cheap: used on the warm path)."""
    return _base("cache", "XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    """The user state directory (history, NATS data), created if missing."""
    from pathlib import Path

    path = Path(state_path())
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """The user cache directory (discovery cache), created if missing."""
    from pathlib import Path

    path = Path(cache_path())
    path.mkdir(parents=True, exist_ok=True)
    return path
