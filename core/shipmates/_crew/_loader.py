"""Loading entry points (siblings and plugins alike): failure reasons and strict mode."""

from __future__ import annotations

import os


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
