"""Where shipmates keeps per-user files: state (history, NATS data) and cache (discovery).

``SHIPMATES_HOME`` overrides everything (``$SHIPMATES_HOME/state`` and ``$SHIPMATES_HOME/cache``);
otherwise ``$XDG_STATE_HOME/shipmates`` and ``$XDG_CACHE_HOME/shipmates``, defaulting to
``~/.local/state/shipmates`` and ``~/.cache/shipmates``. Directories are created on demand,
user-only (0700), and the files shipmates keeps in them are created user-only (0600): history,
logs and caches are nobody else's to read or to write.
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


def private_dir(path: str) -> str:
    """Create ``path`` (and its parents) if missing; ``path`` itself ends up user-only (0700)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)  # made by an older version, or by a umask that let others in
    return path


def private_file(path: str) -> str:
    """Create ``path`` empty if missing; either way it ends up user-only (0600)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)
    return path


def state_dir() -> Path:
    """The user state directory (history, NATS data), created user-only if missing."""
    from pathlib import Path

    return Path(private_dir(state_path()))


def cache_dir() -> Path:
    """The user cache directory (discovery cache), created user-only if missing."""
    from pathlib import Path

    return Path(private_dir(cache_path()))
