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
  yields these joins the captain's stream); :func:`run_streamed` runs an agent with a callback
  for each event, called as the run makes it (no queue and no task switch per event, as
  ``Agent.stream`` has).
- **Budgets**: :class:`Budget` (its header form: :meth:`Budget.to_header`,
  :meth:`Budget.from_header`), :func:`current_budget` (what the running call may still spend, to
  send with a remote request), :func:`set_budget` / :func:`reset_budget` (run a served call under
  its caller's).
- **Tracing**: :func:`inject_trace_context` / :func:`attach_trace_context` carry the
  OpenTelemetry trace across a remote call when ``shipmates[otel]`` is on (no-ops otherwise).
- **Delegation path**: :func:`delegation_path`, :func:`set_delegation_path`,
  :func:`reset_delegation_path` (a served call continues its caller's path).
- **Selection**: :class:`Selector` (allow/deny lists by name, distribution and origin, as
  shipmates reads ``SHIPMATES_AGENTS`` and the like), :func:`selector_matches`,
  :func:`agent_selector` (the session's lists), :func:`local_agent_names`.
- **Models**: :func:`add_model_arguments` (``--model``, ``--api-base``, ``--api-key-env``,
  ``-o``, ``--model-timeout``, as ``chat`` has them), :func:`model_session` (the session's model
  and settings from those flags, the environment and the config file, for a block) and
  :func:`model_label` (which model a sibling uses), so a command such as ``serve`` runs its
  siblings on the model the user chose.
- **Directories**: :func:`state_dir`, :func:`cache_dir`.
- **Output**: :func:`table` (rows as aligned columns, as ``shipmates agents`` prints them).
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

import sys
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "Budget",
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
    "add_model_arguments",
    "agent_selector",
    "attach_trace_context",
    "background_loop",
    "cache_dir",
    "current_budget",
    "delegation_path",
    "hookimpl",
    "inject_trace_context",
    "lazy_exports",
    "load_local_agent",
    "local_agent_names",
    "model_label",
    "model_session",
    "on_background_loop",
    "plugin_host",
    "report_tool_call",
    "reset_budget",
    "reset_delegation_path",
    "reset_plugins",
    "run_streamed",
    "run_sync",
    "selector_matches",
    "set_budget",
    "set_delegation_path",
    "sibling_spec",
    "state_dir",
    "submit",
    "table",
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
    "Budget": "_run._budget",
    "set_budget": "_run._budget",
    "reset_budget": "_run._budget",
    "RunEvent": "_run._stream_events",
    "run_streamed": "_run._stream",
    "background_loop": "_runtime",
    "on_background_loop": "_runtime",
    "run_sync": "_runtime",
    "submit": "_runtime",
    "cache_dir": "_paths",
    "state_dir": "_paths",
    "Selector": "_crew._selector",
    "selector_matches": "_crew._selector",
    "GcPause": "_startup",
    "table": "_cli._views",
    "add_model_arguments": "_cli._models_command",
    "model_session": "_cli._models_command",
    "model_label": "_models._session",
}

if TYPE_CHECKING:
    import pluggy

    from ._cli._models_command import add_model_arguments, model_session
    from ._cli._views import table
    from ._crew._selector import Selector, selector_matches
    from ._crew._sibling import DEFAULT_TOOL_TIMEOUT, SiblingSpec, sibling_spec
    from ._models._session import model_label
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
    from ._run._budget import Budget, reset_budget, set_budget
    from ._run._events import ToolCallEvent
    from ._run._stream import run_streamed
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
    return (_stack or _delegation_stack()).set(path)


def reset_delegation_path(token: Token[tuple[str, ...]]) -> None:
    """Restore the delegation path :func:`set_delegation_path` replaced."""
    (_stack or _delegation_stack()).reset(token)


def current_budget() -> Budget | None:
    """What the running call's run tree may still spend (the tightest of the budgets in force),
    or None when it runs under no budget."""
    parent_call, ambient = _budget_vars or _load_budget_vars()
    link = parent_call.get()
    spend = getattr(link[1], "spend", None) if link is not None else None
    if spend is None:
        spend = ambient.get()
    return spend.remaining() if spend is not None else None


_budget_vars: tuple[ContextVar[Any], ContextVar[Any]] | None = None
"""The context variables :func:`current_budget` reads, imported once (as ``_stack``: a remote
call reads them on every request)."""


def _load_budget_vars() -> tuple[ContextVar[Any], ContextVar[Any]]:
    global _budget_vars
    from ._run._budget import ambient
    from ._run._context import parent_call

    _budget_vars = (parent_call, ambient)
    return _budget_vars


_OTEL = "shipmates._plugins._builtin_otel"


def inject_trace_context(headers: MutableMapping[str, str]) -> bool:
    """With OpenTelemetry on, put the running call's trace context in ``headers`` (the standard
    propagator: ``traceparent``, ``tracestate``, baggage) and return True; False when it is off."""
    otel = sys.modules.get(_OTEL)  # imported only by a plugin host that enabled it
    if otel is None:
        return False
    otel.inject(headers)
    return True


def attach_trace_context(headers: Mapping[str, str]) -> Callable[[], None] | None:
    """With OpenTelemetry on, continue the trace of ``headers`` (a remote caller's) in this context
    and return the function that ends it; None when it is off."""
    otel = sys.modules.get(_OTEL)
    return otel.attach(headers) if otel is not None else None


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


def load_local_agent(name: str) -> Any:
    """The sibling installed here as ``name`` (its ``shipmates.agents`` entry point), loaded as
    discovery loads one; raises :class:`LookupError` when none is installed, or naming why it
    failed to load (a plugin's fallback for a sibling ``SHIPMATES_PREFER`` takes from elsewhere)."""
    from ._crew._discovery import _Candidate, _load, _provenance
    from ._crew._entrypoints import AGENTS_GROUP, entry_points

    for ep in entry_points(AGENTS_GROUP):
        if ep.name == name:
            record = _load(_Candidate(ep.name, _provenance(ep), entry=ep), False, None, None)
            if record.status != "ok":
                raise LookupError(record.one_line())
            return record.sibling
    raise LookupError(f"no sibling named {name!r} is installed here")


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
