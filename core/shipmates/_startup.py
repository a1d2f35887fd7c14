"""Start-up tricks, in one place: what the ``shipmates`` command (chat, the REPL, ``serve``)
does so that its first answer or prompt comes sooner, with behaviour unchanged.

- **The garbage collector during start-up** (:class:`GcPause`): imports, discovery and
  building the crew create tens of thousands of objects that all live on; the collector would
  run dozens of times meanwhile, walking them again and again and finding no garbage. It is
  paused until the process is ready (the crew built, the prompt drawn, the server
  subscribed), then those objects are frozen out of its sight (``gc.freeze()``: the pattern
  Python's docs give for long-lived start-up objects) and it runs as usual.
- **At exit** (:func:`freeze_for_exit`): the interpreter's last full collection is spared.
- **litellm** (:func:`start_litellm_import`, :func:`wait_for_litellm`): its import takes
  seconds, mostly holding the GIL; the REPL starts it in a thread once the prompt is drawn,
  and the first turn waits for it without blocking the event loop.
- **pydantic's plugin scan** (:func:`skip_pydantic_plugin_scan_if_none`): skipped when no
  pydantic plugin is installed; tools with plain parameters then skip pydantic altogether
  (:func:`no_pydantic_plugin`).

This module imports only the standard library (the entry-point scan when it needs it): the CLI
imports it before anything heavy.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import threading

_LOADER = "pydantic.plugin._loader"
_checked = False


def skip_pydantic_plugin_scan_if_none() -> None:
    """Give pydantic an empty plugin cache when no ``pydantic`` entry point is installed.

    The first time pydantic builds a validator in a process, ``pydantic.plugin._schema_validator``
    imports ``pydantic.plugin._loader``, which imports ``importlib.metadata`` (~8 ms: email,
    zipfile, csv...) and whose ``get_plugins()`` reads the ``entry_points.txt`` of every installed
    distribution (13-35 ms with 80-1000 distributions), keeping the result in
    ``_loader._plugins`` for the process. With no distribution declaring a ``pydantic`` entry
    point it loads nothing, and shipmates' own cached entry-point scan (which reads the
    ``pydantic`` group too) already knows whether that is so. Then pydantic finds the result
    ready: a stand-in for ``pydantic.plugin._loader`` with the same names and an empty plugin
    cache, or, when pydantic already imported its loader, that empty cache set on it. The
    validators pydantic builds are exactly the ones it would have built.

    Anyone with a pydantic plugin installed sees no change: pydantic is left alone and scans and
    loads its plugins as usual. Not done with ``PYDANTIC_DISABLE_PLUGINS``: an environment
    variable would leak into child processes (a subprocess a tool starts) and switch their
    plugins off.
    """
    global _checked
    if _checked:
        return
    _checked = True
    try:
        if not no_pydantic_plugin():
            return
        loader: Any = sys.modules.get(_LOADER)
        if loader is None:
            sys.modules[_LOADER] = _loader_standin()
        elif loader._plugins is None and not loader._loading_plugins:
            loader._plugins = {}
    except Exception:  # pydantic changed its loader, or the scan failed: it scans as usual
        return


def _loader_standin() -> Any:
    """``pydantic.plugin._loader`` as it is once its scan found no plugin. Anything it does not
    have (or a reset of ``_plugins`` to None, as pydantic's own tests do) hands over to the
    real module, which then behaves as usual."""
    module: Any = types.ModuleType(_LOADER, "shipmates' stand-in: no pydantic plugin is installed")

    def real() -> Any:
        import importlib

        if sys.modules.get(_LOADER) is module:
            del sys.modules[_LOADER]
        return importlib.import_module(_LOADER)

    def get_plugins() -> Any:
        if module._plugins is None:
            return real().get_plugins()
        return module._plugins.values()  # empty, as pydantic's own cache would be

    def missing_attribute(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(real(), name)

    from ._crew._entrypoints import PYDANTIC_GROUP

    module.__dict__.update(
        PYDANTIC_ENTRY_POINT_GROUP=PYDANTIC_GROUP,
        _plugins={},
        _loading_plugins=False,
        get_plugins=get_plugins,
    )
    module.__getattr__ = missing_attribute
    return module


_no_plugin: bool | None = None


def no_pydantic_plugin() -> bool:
    """True when no distribution declares a ``pydantic`` entry point (the answer is kept for
    the process): tools may then skip pydantic for plain parameters, as nothing would
    observe the validators it builds."""
    global _no_plugin
    if _no_plugin is None:
        from ._crew._entrypoints import PYDANTIC_GROUP, entry_points

        try:
            _no_plugin = not entry_points(PYDANTIC_GROUP)
        except Exception:  # the scan failed: pydantic, as usual
            _no_plugin = False
    return _no_plugin


# -- the garbage collector -------------------------------------------------------------------


class GcPause:
    """The collector paused for start-up; :meth:`end` (or leaving the ``with`` block) freezes
    what start-up built and lets it run again. Does nothing when ``active`` is false (the
    process does not own its collector: tests, an embedding program) or when the collector was
    already off. Ending twice is harmless."""

    def __init__(self, active: bool = True) -> None:
        self.active = active and gc.isenabled()
        if self.active:
            gc.disable()

    def end(self, *, collect: bool = False) -> None:
        """Freeze the objects start-up made (``gc.freeze()``) and resume collecting.

        ``collect``: first collect what start-up left as garbage (a long-running server, such
        as ``serve``, whose heap is then frozen for good: no long collection pauses later).
        """
        if self.active:
            self.active = False
            if collect:
                gc.collect()
            gc.freeze()
            gc.enable()

    def __enter__(self) -> GcPause:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


def freeze_for_exit() -> None:
    """Keep the interpreter's last garbage collection from walking every object at exit.

    At exit CPython runs one more full collection over every object still alive; with pydantic
    and a crew loaded that is 30-50 ms, a fifth of a one-shot turn, spent proving that objects
    about to vanish with the process are garbage. ``gc.freeze()`` takes them out of its sight.
    The rest of the exit is unchanged: atexit handlers (plugins', logging's) run, stdout and
    stderr are flushed, modules are torn down and free their objects by reference count. Only
    finalizers of objects caught in reference cycles no longer run at exit, which Python never
    promised; nothing shipmates keeps depends on them (the REPL appends to its history file as
    it goes). Only for a process that exits next (the console script, ``python -m
    shipmates``), never for one that goes on (tests, embedding programs).
    """
    gc.freeze()


# -- litellm -----------------------------------------------------------------------------------

LITELLM_POLL = 0.02
"""Seconds between checks whether litellm's background import has finished (a turn waiting)."""


def start_litellm_import(model: Any) -> threading.Thread | None:
    """Start importing litellm in a background thread when ``model`` is reached through litellm.

    ``model`` is a model setting: None (the session default), a name, or a Model. Returns the
    import thread (cheap to call again: always the same thread), or None when the model is a
    registered one (such as ``offline``) and litellm is not needed.
    """
    from ._models._registry import get_model

    try:
        resolved = get_model(model)
    except Exception:  # the turn reports a bad model setting properly
        return None
    from ._models import _litellm

    if not isinstance(resolved, _litellm.LiteLLMModel):
        return None
    return _litellm.preload()


async def wait_for_litellm(model: Any, waiting: Callable[[bool], None] | None = None) -> None:
    """Wait, without blocking the event loop (a cancellation still stops it), until litellm's
    background import is done; starts it when nothing did yet. Returns at once for registered
    models such as ``offline``. ``waiting(True)`` is called when there is something to wait
    for, ``waiting(False)`` when the wait ends (a "loading litellm" label, say)."""
    import asyncio

    thread = start_litellm_import(model)
    if thread is None or not thread.is_alive():
        return
    if waiting is not None:
        waiting(True)
    try:
        while thread.is_alive():
            await asyncio.sleep(LITELLM_POLL)
    finally:
        if waiting is not None:
            waiting(False)
