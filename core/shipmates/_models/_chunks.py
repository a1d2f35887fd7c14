"""The chunks of a litellm stream, kept for ``litellm.stream_chunk_builder`` with plain text merged.

``stream_chunk_builder`` costs about 50 µs per chunk (pydantic attribute access, usage and
provider look-ups on every one): a 2,000-token answer took 110 ms to rebuild after its last
token, a tenth of the whole stream (bench/bench_stream.py). Most chunks are nothing but a
piece of text, identical to the one before in everything else, so a run of them is given to the
builder as one chunk carrying the run's text (a copy of its first chunk: litellm's own objects
are never changed). Every chunk with anything else (tool calls, reasoning, a finish reason,
usage, logprobs, provider fields, a field this code does not know) is kept as it came, so the
builder sees the same content, tool calls and usage either way.
"""

from __future__ import annotations

import copy
from typing import Any

_MISSING = object()
_VARYING = frozenset({"created", "choices"})
"""Chunk fields that may differ within a merged run (the builder reads them from its first chunk)."""
_STAMPS = frozenset({"created_at"})
"""Hidden parameters that may differ within a merged run."""
_CHOICE = frozenset({"delta", "index"})
_TEXT = frozenset({"content", "role"})


class Chunks:
    """The chunks of one stream, in order, each run of plain-text chunks as one."""

    __slots__ = ("head", "kept", "parts")

    def __init__(self) -> None:
        self.kept: list[Any] = []
        self.head: _Plain | None = None
        """The first chunk of the current run of plain-text chunks (None: not in one)."""
        self.parts: list[str] = []

    def add(self, chunk: Any) -> None:
        """Keep ``chunk`` (merged into the run before it when both are plain text)."""
        plain = _plain(chunk)
        head = self.head
        if plain is not None and head is not None and head.takes(plain):
            self.parts.append(plain.text)
            return
        self._close_run()
        self.kept.append(chunk)
        if plain is not None:
            self.head = plain
            self.parts = [plain.text]

    def chunks(self) -> list[Any]:
        """The chunks for ``stream_chunk_builder``."""
        self._close_run()
        return self.kept

    def _close_run(self) -> None:
        head, parts = self.head, self.parts
        self.head = None
        if head is None or len(parts) < 2:
            return
        merged = copy.deepcopy(self.kept[-1])  # the head is the last chunk kept
        merged.choices[0].delta.content = "".join(parts)
        self.kept[-1] = merged


class _Plain:
    """A chunk that is nothing but text: its text, and what a chunk must share to join its run."""

    __slots__ = ("hidden", "role", "text", "top")

    def __init__(self, text: str, role: Any, top: dict[str, Any], hidden: Any) -> None:
        self.text = text
        self.role = role
        self.top = top
        self.hidden = hidden

    def takes(self, other: _Plain) -> bool:
        """Whether ``other`` (the next chunk) says nothing this run's first chunk does not."""
        if other.role is not None and other.role != self.role:
            return False
        return _alike(self.top, other.top, _VARYING) and _alike(self.hidden, other.hidden, _STAMPS)


def _alike(a: Any, b: Any, varying: frozenset[str]) -> bool:
    """Two dicts with the same keys and values but for ``varying`` (or two Nones)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a is None and b is None
    if len(a) != len(b):
        return False
    for key, value in b.items():  # noqa: SIM110 (a generator costs as much as the comparison)
        if a.get(key, _MISSING) != value and key not in varying:
            return False
    return True


def _fields(obj: Any) -> dict[str, Any]:
    """An object's fields, declared and extra (litellm keeps most in pydantic's extras)."""
    own = getattr(obj, "__dict__", None)
    if own is None:
        return {}
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**own, **extra} if extra else own


def _plain(chunk: Any) -> _Plain | None:
    """The chunk as plain text: one choice whose delta has text (and maybe a role), nothing else
    set anywhere in the chunk; else None."""
    top = _fields(chunk)
    choices = top.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or top.get("usage") is not None:
        return None
    choice = _fields(choices[0])
    if choice.get("index") != 0:
        return None
    for key, value in choice.items():
        if value is not None and key not in _CHOICE:
            return None
    delta = _fields(choice.get("delta"))
    text = delta.get("content")
    if not isinstance(text, str):
        return None
    for key, value in delta.items():
        if value is not None and key not in _TEXT:
            return None
    return _Plain(text, delta.get("role"), top, getattr(chunk, "_hidden_params", None))
