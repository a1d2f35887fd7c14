"""Plugins: the hook specifications (``_hookspecs``), the plugin host that loads plugins and calls
hooks in isolation (``_host``), and the built-in plugin (``_builtin``).
"""
