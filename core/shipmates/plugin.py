"""The API for plugin authors: what a shipmates plugin may use besides the hooks themselves.

Everything here is public and kept stable; a plugin never needs ``shipmates._*`` (the test
suite checks that first-party plugins do not import it)::

    from shipmates.plugin import RegisterAgent, hookimpl

    @hookimpl
    def register_agents(register: RegisterAgent) -> None:
        register(MySibling())

- **Hooks**: :data:`hookimpl`, the type of each hook's ``register`` callback
  (:class:`RegisterAgent`, :class:`RegisterModel`, :class:`RegisterCommand`,
  :class:`RegisterCli`, :class:`RegisterChatOption`), the :class:`CommandContext` a REPL
  command handler receives, and :func:`plugin_host` (the host that loads plugins and calls
  hooks one plugin at a time; its failures are :class:`HookFailure`).
- **Siblings**: :func:`sibling_spec` reads a sibling's contract once (how to call it, its
  timeout, input model, tools, skills) into a :class:`SiblingSpec`, as shipmates itself does.
- **Tool-call events**: :class:`ToolCallEvent` (keyword-only) and :func:`report_tool_call`
  (hand a call made elsewhere, on a remote replica, to this process's observers);
  :data:`RunEvent`, what the ``run_event`` hook receives (a sibling whose ``astream(query)``
  yields these joins the captain's stream).
- **Delegation path**: :func:`delegation_path`, :func:`set_delegation_path`,
  :func:`reset_delegation_path` (a served call continues its caller's path).
- **Selection**: :class:`Selector` (allow/deny lists by name, distribution and origin, as
  shipmates reads ``SHIPMATES_AGENTS`` and the like), :func:`selector_matches`,
  :func:`agent_selector` (the session's lists), :func:`local_agent_names`.
- **Directories**: :func:`state_dir`, :func:`cache_dir`.
- **Tests**: :func:`reset_plugins`.
- **Cheap imports**: :func:`lazy_exports` gives a plugin package's ``__init__`` names that are
  imported on first use, as ``shipmates`` itself does (``shipmates serve`` and listings stay fast).
- **Runtime**: the process's one background event loop (:func:`background_loop`,
  :func:`submit`, :func:`on_background_loop`) and :func:`run_sync`;
  :data:`DEFAULT_TOOL_TIMEOUT`; :class:`GcPause` (the garbage collector paused while a
  long-running command such as ``serve`` starts, then what start-up built frozen out of its
  sight, as ``shipmates chat`` does).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "CommandContext",
    "CommandHandler",
    "GcPause",
    "HookFailure",
    "HookOutcome",
    "PluginHost",
    "RegisterAgent",
    "RegisterChatOption",
    "RegisterCli",
    "RegisterCommand",
    "RegisterModel",
    "RunEvent",
    "Selector",
    "SiblingSpec",
    "ToolCallEvent",
    "agent_selector",
    "background_loop",
    "cache_dir",
    "delegation_path",
    "hookimpl",
    "lazy_exports",
    "local_agent_names",
    "on_background_loop",
    "plugin_host",
    "report_tool_call",
    "reset_delegation_path",
    "reset_plugins",
    "run_sync",
    "selector_matches",
    "set_delegation_path",
    "sibling_spec",
    "state_dir",
    "submit",
]

# name -> private module that defines it; imported on first attribute access.
_LAZY = {
    "DEFAULT_TOOL_TIMEOUT": "_crew._sibling",
    "SiblingSpec": "_crew._sibling",
    "sibling_spec": "_crew._sibling",
    "CommandContext": "_plugins._hookspecs",
    "CommandHandler": "_plugins._hookspecs",
    "RegisterAgent": "_plugins._hookspecs",
    "RegisterChatOption": "_plugins._hookspecs",
    "RegisterCli": "_plugins._hookspecs",
    "RegisterCommand": "_plugins._hookspecs",
    "RegisterModel": "_plugins._hookspecs",
    "hookimpl": "_plugins._hookspecs",
    "HookFailure": "_plugins._host",
    "HookOutcome": "_plugins._host",
    "PluginHost": "_plugins._host",
    "ToolCallEvent": "_run._events",
    "RunEvent": "_run._stream_events",
    "background_loop": "_runtime",
    "on_background_loop": "_runtime",
    "run_sync": "_runtime",
    "submit": "_runtime",
    "cache_dir": "_paths",
    "state_dir": "_paths",
    "Selector": "_crew._selector",
    "selector_matches": "_crew._selector",
    "GcPause": "_startup",
}

if TYPE_CHECKING:
    import pluggy

    from ._crew._selector import Selector, selector_matches
    from ._crew._sibling import DEFAULT_TOOL_TIMEOUT, SiblingSpec, sibling_spec
    from ._paths import cache_dir, state_dir
    from ._plugins._hookspecs import (
        CommandContext,
        CommandHandler,
        RegisterAgent,
        RegisterChatOption,
        RegisterCli,
        RegisterCommand,
        RegisterModel,
        hookimpl,
    )
    from ._plugins._host import HookFailure, HookOutcome, PluginHost
    from ._run._events import ToolCallEvent
    from ._run._stream_events import RunEvent
    from ._runtime import background_loop, on_background_loop, run_sync, submit
    from ._startup import GcPause


def delegation_path() -> tuple[str, ...]:
    """The agents working on the current request, outermost first (``()`` outside any run)."""
    return (_stack or _delegation_stack()).get()


_stack: ContextVar[tuple[str, ...]] | None = None
"""The delegation stack, imported once: a remote call reads it on every request (an import
statement per call cost more than the rest of reading it)."""


def _delegation_stack() -> ContextVar[tuple[str, ...]]:
    global _stack
    from ._run._context import delegation_stack

    _stack = delegation_stack
    return _stack


def set_delegation_path(path: tuple[str, ...]) -> Token[tuple[str, ...]]:
    """Continue ``path`` (a remote caller's) in this context; undo with :func:`reset_delegation_path`."""
    from ._run._context import delegation_stack

    return delegation_stack.set(path)


def reset_delegation_path(token: Token[tuple[str, ...]]) -> None:
    """Restore the delegation path :func:`set_delegation_path` replaced."""
    from ._run._context import delegation_stack

    delegation_stack.reset(token)


def agent_selector() -> Selector:
    """The allow/deny lists of this session's siblings: ``chat --only/--exclude`` merged with
    ``SHIPMATES_AGENTS`` / ``SHIPMATES_EXCLUDE_AGENTS`` (those alone before a crew is assembled),
    so a plugin adding siblings later (``refresh_agents``) chooses as discovery did."""
    from ._crew._discovery import session_selector

    return session_selector()


def local_agent_names() -> set[str]:
    """The names of the siblings installed here (``shipmates.agents`` entry points), unloaded."""
    from ._crew._entrypoints import AGENTS_GROUP, entry_points

    return {ep.name for ep in entry_points(AGENTS_GROUP)}


def plugin_host(plugin_manager: pluggy.PluginManager | PluginHost | None = None) -> PluginHost:
    """The host of ``plugin_manager`` (default: the process's shared plugins)."""
    from ._plugins._host import host_of

    return host_of(plugin_manager)


def report_tool_call(
    event: ToolCallEvent, *, plugin_manager: pluggy.PluginManager | PluginHost | None = None
) -> list[HookFailure]:
    """Hand a finished call made elsewhere (by a remote replica) to ``tool_call_started`` then
    ``tool_call_finished``, one observer at a time; returns the observers' failures."""
    host = plugin_host(plugin_manager)
    failures = host.call_each("tool_call_started", event=event).failures
    return failures + host.call_each("tool_call_finished", event=event).failures


def reset_plugins() -> None:
    """Forget the loaded plugins, the cached entry points, the models they registered and the
    session's :func:`agent_selector`, so the next use loads them again (a plugin's tests, or
    after changing ``SHIPMATES_PLUGINS``)."""
    from ._crew._discovery import _session_selector
    from ._crew._entrypoints import clear_cache
    from ._models._registry import reset_models
    from ._plugins._host import reset_plugin_manager

    clear_cache()
    _session_selector.clear()
    reset_plugin_manager()
    reset_models()


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, package="shipmates")
