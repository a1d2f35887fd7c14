"""Spare pydantic its plugin scan when no pydantic plugin is installed.

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

from __future__ import annotations

import sys
import types
from typing import Any

from ._crew._entrypoints import PYDANTIC_GROUP, entry_points

_LOADER = "pydantic.plugin._loader"
_checked = False


def skip_pydantic_plugin_scan_if_none() -> None:
    """Give pydantic an empty plugin cache when no ``pydantic`` entry point is installed."""
    global _checked
    if _checked:
        return
    _checked = True
    try:
        if entry_points(PYDANTIC_GROUP):
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
        try:
            _no_plugin = not entry_points(PYDANTIC_GROUP)
        except Exception:  # the scan failed: pydantic, as usual
            _no_plugin = False
    return _no_plugin
