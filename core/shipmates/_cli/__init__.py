"""The ``shipmates`` command: parsing (``_main``), the chat command (``_chat``), the REPL
(``_repl``), slash commands (``_commands``), text rendering (``_views``, ``_trace``), and
``shipmates new`` (``_scaffold`` with ``_template/``).
"""

from ._main import main

__all__ = ["main"]
