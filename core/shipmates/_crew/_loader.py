"""Loading entry points (siblings and plugins alike): one importer, one set of failure reasons.

:func:`load_entry_point` imports ``module:attr.attr`` and turns every failure into a
:class:`EntryPointError` of one of four kinds (``missing``: the module is not installed;
``raised``: importing it raised; ``attribute``: the attribute is not there; ``malformed``:
the value is not ``module:attribute``). :meth:`EntryPointError.reason` adds the fix, worded the
same for siblings and plugins; only the way to leave the entry out (``hint``) differs.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Literal

from ._entrypoints import parse_value

FailureKind = Literal["missing", "raised", "attribute", "malformed"]


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


class EntryPointError(Exception):
    """An entry point that could not be loaded; ``str()`` says what went wrong (not the fix).

    The original exception is the ``__cause__``.
    """

    def __init__(self, kind: FailureKind, detail: str, value: str) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail
        self.value = value
        """The entry point's value, ``"module:attr"``."""

    def reason(self, *, entry: str, source: str, hint: str) -> str:
        """The one-line reason with its fix: ``entry`` is the entry point's name, ``source`` the
        distribution that declares it, ``hint`` how to leave it out (``"or exclude it with ..."``)."""
        if self.kind == "missing":
            fix = f"reinstall {source} or fix its entry point {entry} = {self.value}"
        elif self.kind == "raised":
            fix = f"fix {source} (or report it to its authors)"
        else:
            fix = f"fix the entry point {entry} in {source}"
        return f"{self.detail}; {fix} {hint}"


def load_entry_point(value: str) -> Any:
    """Import ``"package.module:attr.attr"`` and return the object; raise :class:`EntryPointError`.

    ``SystemExit`` raised by the import counts as a failure too.
    """
    try:
        module_name, attr = parse_value(value)
    except ValueError as exc:
        raise EntryPointError("malformed", str(exc), value) from exc
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        line = exception_line(exc)
        if module_missing(exc, module_name):
            detail = f"module {module_name!r} is not installed (module {module_name!r} not found: {line})"
            raise EntryPointError("missing", detail, value) from exc
        raise EntryPointError("raised", f"importing {module_name!r} raised {line}", value) from exc
    for part in filter(None, (attr or "").split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise EntryPointError("attribute", f"{value}: {exception_line(exc)}", value) from exc
    return obj
