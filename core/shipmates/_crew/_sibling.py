"""The sibling contract: what any object must offer to be absorbed by a captain.

A sibling is any object with a ``name``, a ``description`` and either
``invoke(query) -> str`` or ``async ainvoke(query) -> str``. It need not subclass
:class:`shipmates.Agent`. When it has both, ``ainvoke`` is used if it is a coroutine
function (else ``invoke``, run in a worker thread). Optional attributes a captain honours:

- ``input_model``: a pydantic model class. The absorbed tool exposes its JSON schema and
  the sibling receives a validated instance instead of a ``query`` string.
- ``timeout``: seconds (int or float) the captain waits for this sibling before reporting a
  timeout; without it the captain's ``tool_timeout`` applies (:data:`DEFAULT_TOOL_TIMEOUT`, or
  ``SHIPMATES_TOOL_TIMEOUT``).
- ``tools`` (objects with ``name`` and optionally ``description``, functions, or plain strings)
  and ``skills`` (strings, or objects with ``name``): listed in the absorbed tool's description
  (and a served sibling's card) so the model knows what the sibling can do.
- ``provenance``: a :class:`Provenance` saying where it comes from, used when the captain is
  not told (remote siblings carry one).
- ``available``: ``False`` while the sibling cannot answer (a remote one whose replicas all
  left); read live, so listings show it as unavailable.

:func:`sibling_spec` reads all of these once into a :class:`SiblingSpec`; everything that
interprets a sibling (tool building, listings, the REPL, plugins serving siblings) uses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

from .._errors import NotASiblingError
from .._settings import tool_timeout_from
from ._loader import exception_line

T = TypeVar("T")

DEFAULT_TOOL_TIMEOUT = 120.0
"""Seconds a tool or sibling may run before its call becomes a timeout error."""


def default_tool_timeout() -> float:
    """``SHIPMATES_TOOL_TIMEOUT`` when set, else :data:`DEFAULT_TOOL_TIMEOUT`.

    Raises :class:`~shipmates.SettingsError` for a value that is not a finite number of
    seconds above 0 (``nan``, ``inf``, ``0``, ``-1``): it would make every call time out.
    """
    configured = tool_timeout_from()
    return DEFAULT_TOOL_TIMEOUT if configured is None else configured


def tool_timeout(value: float | None = None) -> float:
    """``value`` checked (a finite number of seconds > 0, else ``ValueError``), or
    :func:`default_tool_timeout` when None."""
    if value is None:
        return default_tool_timeout()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValueError(f"tool_timeout must be a finite number of seconds > 0, got {value!r}")
    return float(value)


class SiblingAttributeError(NotASiblingError):
    """Reading one of a sibling's attributes raised; ``attribute`` names it, ``__cause__`` is the error.

    Discovery records it as that sibling's load failure and :func:`~shipmates.absorb_crew` as a
    rejection: one broken property never stops the rest of the crew.
    """

    def __init__(self, attribute: str, exc: BaseException) -> None:
        super().__init__(f"reading its {attribute!r} attribute raised {exception_line(exc)}")
        self.attribute = attribute


def _reading(attribute: str, read: Callable[[], T]) -> T:
    """``read()``, with any exception it raises (SystemExit included) a SiblingAttributeError."""
    try:
        return read()
    except (Exception, SystemExit) as exc:
        raise SiblingAttributeError(attribute, exc) from exc


def _attr(obj: object, attribute: str) -> Any:
    """``getattr(obj, attribute, None)`` that turns any other exception into a SiblingAttributeError."""
    try:  # not through _reading: this runs a dozen times per sibling loaded
        return getattr(obj, attribute, None)
    except (Exception, SystemExit) as exc:
        raise SiblingAttributeError(attribute, exc) from exc


@runtime_checkable
class Sibling(Protocol):
    """Structural type of a sibling (``invoke`` and/or ``ainvoke`` besides these)."""

    name: str
    description: str


def _contract(obj: object) -> tuple[str, str, Any, Any]:
    """``(name, description, invoke, ainvoke)``; NotASiblingError (or SiblingAttributeError)."""
    if inspect.isclass(obj):
        raise NotASiblingError(f"got the class {obj.__qualname__}, not an instance")
    name, description = _attr(obj, "name"), _attr(obj, "description")
    invoke, ainvoke = _attr(obj, "invoke"), _attr(obj, "ainvoke")
    missing = []
    if not isinstance(name, str):
        missing.append("a str 'name'")
    if not isinstance(description, str):
        missing.append("a str 'description'")
    if not (callable(invoke) or callable(ainvoke)):
        missing.append("an 'invoke(query) -> str' or 'async ainvoke(query) -> str' method")
    if missing:
        raise NotASiblingError(f"{type(obj).__qualname__} object lacks " + ", ".join(missing))
    return cast("str", name), cast("str", description), invoke, ainvoke


def is_sibling(obj: object) -> bool:
    """True when ``obj`` satisfies the sibling contract (False when reading it raises)."""
    try:
        _contract(obj)
    except NotASiblingError:
        return False
    return True


def why_not_sibling(obj: object) -> str:
    """A one-line explanation of why ``obj`` is not a sibling (empty when it is)."""
    try:
        _contract(obj)
    except NotASiblingError as exc:
        return str(exc)
    return ""


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
        return asdict(self)


CODE = Provenance()


class ToolInfo(NamedTuple):
    """One of a sibling's own tools, as listed to a model or in a card."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class SiblingSpec:
    """A sibling's contract read once (see the module docstring); build it with :func:`sibling_spec`."""

    sibling: Any
    name: str
    description: str
    call: Callable[..., Any]
    """``ainvoke`` when :attr:`is_async`, else ``invoke``."""
    is_async: bool
    timeout: float | None = None
    """The sibling's own timeout in seconds, if it sets one."""
    input_model: Any = None
    """Its pydantic input model (a class with ``model_validate``), or None: it takes a query string."""
    tools: tuple[ToolInfo, ...] = ()
    skills: tuple[str, ...] = ()
    provenance: Provenance | None = None
    """The sibling's own ``provenance`` attribute, if it is a :class:`Provenance`."""

    @property
    def available(self) -> bool:
        """False while the sibling says it cannot answer (read live, not once)."""
        return is_available(self.sibling)

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    def input_schema(self) -> dict[str, Any] | None:
        """The JSON schema of :attr:`input_model` without its title; None without a model.

        Raises whatever pydantic raises when the schema cannot be built.
        """
        if self.input_model is None:
            return None
        schema = dict(self.input_model.model_json_schema())
        schema.pop("title", None)
        return schema


def is_available(sibling: Any) -> bool:
    """False while ``sibling`` says it cannot answer (its ``available`` attribute is False, or
    reading it raises)."""
    try:
        return getattr(sibling, "available", True) is not False
    except (Exception, SystemExit):
        return False


def sibling_spec(sibling: Any) -> SiblingSpec:
    """Read ``sibling``'s contract: how to call it and every optional attribute.

    The one place a sibling's attributes are read. Raises :class:`~shipmates.NotASiblingError`
    when it does not satisfy the contract, and its subclass :class:`SiblingAttributeError`
    (naming the attribute) when reading one raises.
    """
    name, description, invoke, ainvoke = _contract(sibling)
    is_async = callable(ainvoke) and (
        _reading("ainvoke", lambda: inspect.iscoroutinefunction(ainvoke)) or not callable(invoke)
    )
    timeout = _attr(sibling, "timeout")
    input_model = _attr(sibling, "input_model")
    provenance = _attr(sibling, "provenance")
    return SiblingSpec(
        sibling,
        name,
        description,
        cast("Callable[..., Any]", ainvoke if is_async else invoke),
        is_async,
        float(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else None,
        input_model
        if input_model is not None and _reading("input_model", lambda: hasattr(input_model, "model_validate"))
        else None,
        _reading("tools", lambda: tuple(_tools(getattr(sibling, "tools", None) or ()))),
        _reading("skills", lambda: _skills(getattr(sibling, "skills", None) or ())),
        provenance if isinstance(provenance, Provenance) else None,
    )


def _skills(items: Any) -> tuple[str, ...]:
    return tuple(s if isinstance(s, str) else str(getattr(s, "name", s)) for s in items)


def _tools(items: Any) -> list[ToolInfo]:
    found = []
    for item in items:
        if isinstance(item, str):
            found.append(ToolInfo(item))
            continue
        name = getattr(item, "name", None) or getattr(item, "__name__", None)
        if isinstance(name, str):
            description = getattr(item, "description", "")
            found.append(ToolInfo(name, description if isinstance(description, str) else ""))
    return found
