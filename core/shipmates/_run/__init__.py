"""Running an agent: its definition (``_agent``), the run loop (``_run_loop``), one model turn's
tool calls (``_tool_calls``), tools (``_tool``), siblings as tools (``_sibling_tool``), memory
(``_session``), the delegation context (``_context``) and the events hooks observe (``_events``).
"""
