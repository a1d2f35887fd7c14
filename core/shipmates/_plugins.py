"""The process-wide pluggy plugin manager (minimal version; entry-point loading to come)."""

from __future__ import annotations

import pluggy

from ._hookspecs import PROJECT, ShipmatesSpec

_pm: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The shared plugin manager: built-in plugin plus installed ``shipmates.plugins``."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(ShipmatesSpec)
        from . import _builtin

        pm.register(_builtin, name="shipmates.builtin")
        _pm = pm
    return _pm


def reset_plugin_manager() -> None:
    """Forget the shared plugin manager (tests, or after changing the plugin env vars)."""
    global _pm
    _pm = None
