"""Name rules shared by tools and siblings: what model APIs accept as a function name."""

from __future__ import annotations

import re

from ._errors import InvalidNameError

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
_TOOL_NAME_RE = re.compile(TOOL_NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    """True when ``name`` is a string model APIs accept as a tool name."""
    return isinstance(name, str) and _TOOL_NAME_RE.match(name) is not None


def check_name(name: object, *, what: str = "tool") -> str:
    """Return ``name`` or raise :class:`InvalidNameError` saying how to fix it."""
    if not is_valid_name(name):
        raise InvalidNameError(
            f"invalid {what} name {name!r}: names must match {TOOL_NAME_PATTERN} "
            "(letters, digits, '_' or '-', at most 64 characters), which is what model APIs accept"
        )
    return name  # type: ignore[return-value]
