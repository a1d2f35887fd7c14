"""The crew: where siblings come from and how a captain gets them.

Pipeline: entry points are read (``_entrypoints``), picked by allow/deny lists (``_selector``),
loaded in isolation (``_loader``, ``_discovery``) into records (``_records``), then absorbed into a
captain (``_absorb``, ``_assemble``). ``_sibling`` is the sibling contract every member satisfies.
"""
