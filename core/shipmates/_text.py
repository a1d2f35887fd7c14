"""Text from outside the process, made safe: for a terminal, and for the JSON parser.

Sibling answers, tool results, descriptions, model text and remote events are written by
someone else. Before shipmates writes them to a terminal, :func:`terminal_safe` removes every
control sequence (colours, cursor moves, window titles, screen clears, hyperlinks) and control
character except newline and tab, so the only styling on the screen is shipmates' own and no
line can be forged with a carriage return. :func:`parse_json_object` parses a model's tool
arguments with bounded size and nesting, so hostile JSON is a tool error, not a
``RecursionError``.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

# ESC-introduced sequences (ECMA-48): CSI, OSC/DCS/SOS/PM/APC strings up to their terminator
# (or the end of the text when unterminated), then any other two-character escape; the 8-bit
# C1 forms likewise. Then every C0/C1 control character but newline and tab, and DEL.
_CONTROL = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?            # CSI ... final byte
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)  # OSC, DCS, SOS, PM, APC
  | \x1b[\x20-\x2f]*[\x30-\x7e]?                                     # other escapes
  | [\x00-\x08\x0b-\x1f\x7f-\x9f]                                    # lone controls, CR included
    """,
    re.VERBOSE | re.DOTALL,
)

MAX_ARGUMENTS_CHARS = 1_000_000
"""The longest tool-argument text shipmates parses."""
MAX_ARGUMENTS_DEPTH = 64
"""The deepest nesting of arrays and objects shipmates parses in tool arguments."""


def terminal_safe(text: str) -> str:
    """``text`` without terminal control sequences or control characters (newline and tab stay)."""
    if text.isprintable():  # the common case: nothing to strip, no regex pass
        return text
    return _CONTROL.sub("", text.replace("\r\n", "\n"))


def print_safe(text: str, file: IO[str]) -> None:
    """``print(terminal_safe(text), file=file)``: for listings and warnings with outside text."""
    print(terminal_safe(text), file=file)


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class JsonLimitError(ValueError):
    """JSON text over the size or nesting limit; the message says which and the limit."""


def parse_json_object(
    text: str, *, max_chars: int = MAX_ARGUMENTS_CHARS, max_depth: int = MAX_ARGUMENTS_DEPTH
) -> Any:
    """``json.loads(text)`` within limits: raises :class:`JsonLimitError` or ``ValueError``."""
    if len(text) > max_chars:
        raise JsonLimitError(f"{len(text)} characters, over the limit of {max_chars}")
    if ("[" in text or "{" in text) and (depth := nesting_depth(text)) > max_depth:
        raise JsonLimitError(f"nested {depth} levels deep, over the limit of {max_depth}")
    return json.loads(text)
