"""shipmates: AI agents as installable packages.

A captain discovers sibling agents registered under the ``shipmates.agents`` entry-point
group, absorbs each as a tool that delegates to the sibling's own ``invoke``, and runs
the agent loop against any litellm model or the offline default router.

Importing this package is cheap: heavy parts (pydantic-backed agents, pluggy, litellm,
prompt-toolkit) load on first use of the names that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._crew._records import AgentRecord, Discovery
from ._crew._sibling import Provenance, Sibling, is_sibling
from ._errors import (
    AbsorbError,
    EndSession,
    InvalidNameError,
    MaxTurnsExceeded,
    ModelError,
    NameConflictError,
    NotASiblingError,
    PluginLoadError,
    SelfAbsorptionError,
    ShipmatesError,
)
from ._lazy import lazy_exports
from ._run._events import ToolCallEvent
from ._settings import SettingsError

__version__ = "0.1.0"

# name -> private module that defines it; imported on first attribute access.
_LAZY = {
    "Agent": "_run._agent",
    "RunOptions": "_run._run_loop",
    "RunResult": "_run._run_loop",
    "Budget": "_run._budget",
    "BudgetExhausted": "_run._budget",
    "RunEvent": "_run._stream_events",
    "RunStarted": "_run._stream_events",
    "TextDelta": "_run._stream_events",
    "ToolCallStarted": "_run._stream_events",
    "ToolCallFinished": "_run._stream_events",
    "ModelCallFinished": "_run._stream_events",
    "RunFinished": "_run._stream_events",
    "Usage": "_run._usage",
    "AgentUsage": "_run._usage",
    "StreamingModel": "_models._model",
    "Tool": "_run._tool",
    "tool": "_run._tool",
    "Session": "_run._session",
    "absorb_crew": "_crew._absorb",
    "AbsorbReport": "_crew._absorb",
    "discover": "_crew._discovery",
    "selector_matches": "_crew._selector",
    "Model": "_models._model",
    "ModelResponse": "_models._model",
    "ToolCall": "_models._model",
    "get_model": "_models._registry",
    "DEFAULT_MODEL": "_models._model",
    "hookimpl": "_plugins._hookspecs",
    "hookspec": "_plugins._hookspecs",
    "get_plugin_manager": "_plugins._host",
}

__all__ = [
    "DEFAULT_MODEL",
    "AbsorbError",
    "AbsorbReport",
    "Agent",
    "AgentRecord",
    "AgentUsage",
    "Budget",
    "BudgetExhausted",
    "Discovery",
    "EndSession",
    "InvalidNameError",
    "MaxTurnsExceeded",
    "Model",
    "ModelCallFinished",
    "ModelError",
    "ModelResponse",
    "NameConflictError",
    "NotASiblingError",
    "PluginLoadError",
    "Provenance",
    "RunEvent",
    "RunFinished",
    "RunOptions",
    "RunResult",
    "RunStarted",
    "SelfAbsorptionError",
    "Session",
    "SettingsError",
    "ShipmatesError",
    "Sibling",
    "StreamingModel",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "ToolCallFinished",
    "ToolCallStarted",
    "Usage",
    "__version__",
    "absorb_crew",
    "discover",
    "get_model",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "is_sibling",
    "selector_matches",
    "tool",
]

if TYPE_CHECKING:
    from ._crew._absorb import AbsorbReport, absorb_crew
    from ._crew._discovery import discover
    from ._crew._selector import selector_matches
    from ._models._model import DEFAULT_MODEL, Model, ModelResponse, StreamingModel, ToolCall
    from ._models._registry import get_model
    from ._plugins._hookspecs import hookimpl, hookspec
    from ._plugins._host import get_plugin_manager
    from ._run._agent import Agent
    from ._run._budget import Budget, BudgetExhausted
    from ._run._run_loop import RunOptions, RunResult
    from ._run._session import Session
    from ._run._stream_events import (
        ModelCallFinished,
        RunEvent,
        RunFinished,
        RunStarted,
        TextDelta,
        ToolCallFinished,
        ToolCallStarted,
    )
    from ._run._tool import Tool, tool
    from ._run._usage import AgentUsage, Usage


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
