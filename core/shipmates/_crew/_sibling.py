"""The sibling contract: what any object must offer to be absorbed by a captain.

A sibling is any object with a ``name``, a ``description`` and either
``invoke(query) -> str`` or ``async ainvoke(query) -> str``. It need not subclass
:class:`shipmates.Agent`. Optional attributes a captain honours:

- ``input_model``: a pydantic model class. The absorbed tool exposes its JSON schema and
  the sibling receives a validated instance instead of a ``query`` string.
- ``timeout``: seconds the captain waits for this sibling before reporting a timeout.
- ``tools`` (objects with ``name``) and ``skills`` (strings): listed in the absorbed tool's
  description so the model knows what the sibling can do.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Sibling(Protocol):
    """Structural type of a sibling (``invoke`` and/or ``ainvoke`` besides these)."""

    name: str
    description: str


def is_sibling(obj: object) -> bool:
    """True when ``obj`` satisfies the sibling contract."""
    if inspect.isclass(obj):
        return False
    name = getattr(obj, "name", None)
    description = getattr(obj, "description", None)
    if not isinstance(name, str) or not isinstance(description, str):
        return False
    return callable(getattr(obj, "invoke", None)) or callable(getattr(obj, "ainvoke", None))


def why_not_sibling(obj: object) -> str:
    """A one-line explanation of why ``obj`` is not a sibling (empty when it is)."""
    if inspect.isclass(obj):
        return f"got the class {obj.__qualname__}, not an instance"
    missing = []
    if not isinstance(getattr(obj, "name", None), str):
        missing.append("a str 'name'")
    if not isinstance(getattr(obj, "description", None), str):
        missing.append("a str 'description'")
    if not (callable(getattr(obj, "invoke", None)) or callable(getattr(obj, "ainvoke", None))):
        missing.append("an 'invoke(query) -> str' or 'async ainvoke(query) -> str' method")
    if not missing:
        return ""
    return f"{type(obj).__qualname__} object lacks " + ", ".join(missing)


@dataclass(frozen=True)
class Provenance:
    """Where a sibling or plugin comes from, for messages and listings."""

    origin: str = "code"
    """``"entry-point"``, ``"plugin"`` (registered through a hook), ``"remote"`` or ``"code"``."""
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    """The entry point's value, ``"module:attr"``, when it came from one."""
    location: str | None = None
    """Free text for remote origins (for example the NATS URL and instance ids)."""

    def describe(self) -> str:
        """``"shipmates-fib 0.1.0"``, or the origin when no distribution is known."""
        if self.distribution:
            return f"{self.distribution} {self.version or '(unknown version)'}"
        if self.location:
            return f"{self.origin} {self.location}"
        return self.origin

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "location": self.location,
        }


CODE = Provenance()
