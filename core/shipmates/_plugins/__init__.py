"""Plugins: the hook specifications and their callback types (``_hookspecs``), the plugin host
that loads plugins and calls hooks in isolation (``_host``), and the built-in plugins
(``_builtin_*``, listed in ``_host.DEFAULT_PLUGINS``).
"""
