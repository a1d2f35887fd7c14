"""The ``shipmates`` command: parsing (``_main``), the chat command (``_chat``), the chat session
without I/O (``_chat_session``), the REPL shell over it (``_repl``, with ``_indicator`` and
``_completion``), slash commands and their context (``_commands``), every text shown
(``_views``; ``_trace`` is the live-trace plugin), and ``shipmates new`` (``_scaffold`` with
``_template/``). Settings come from :mod:`shipmates._settings`, start-up tricks from
:mod:`shipmates._startup`.
"""

from ._main import main

__all__ = ["main"]
