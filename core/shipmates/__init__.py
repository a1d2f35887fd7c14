"""shipmates: AI agents as installable packages.

A captain discovers sibling agents registered under the ``shipmates.agents`` entry-point
group, absorbs each as a tool that delegates to the sibling's own ``invoke``, and runs
the agent loop against any litellm model or the offline default router.

Importing this package is cheap: heavy parts (pydantic-backed agents, pluggy, litellm,
prompt-toolkit) load on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from ._events import ToolCallEvent
from ._records import AgentRecord, Discovery
from ._sibling import Provenance, Sibling, is_sibling

__version__ = "0.1.0"

# name -> private module that defines it; imported on first attribute access.
_LAZY = {
    "Agent": "_agent",
    "RunResult": "_agent",
    "Tool": "_tool",
    "tool": "_tool",
    "Session": "_session",
    "absorb_crew": "_absorb",
    "AbsorbReport": "_absorb",
    "discover": "_discovery",
    "selector_matches": "_loading",
    "Model": "_models",
    "ModelResponse": "_models",
    "ToolCall": "_models",
    "get_model": "_models",
    "DEFAULT_MODEL": "_models",
    "hookimpl": "_hookspecs",
    "hookspec": "_hookspecs",
    "get_plugin_manager": "_plugins",
}

__all__ = [
    "DEFAULT_MODEL",
    "AbsorbError",
    "AbsorbReport",
    "Agent",
    "AgentRecord",
    "Discovery",
    "EndSession",
    "InvalidNameError",
    "MaxTurnsExceeded",
    "Model",
    "ModelError",
    "ModelResponse",
    "NameConflictError",
    "NotASiblingError",
    "PluginLoadError",
    "Provenance",
    "RunResult",
    "SelfAbsorptionError",
    "Session",
    "ShipmatesError",
    "Sibling",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
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
    from ._absorb import AbsorbReport, absorb_crew
    from ._agent import Agent, RunResult
    from ._discovery import discover
    from ._hookspecs import hookimpl, hookspec
    from ._loading import selector_matches
    from ._models import DEFAULT_MODEL, Model, ModelResponse, ToolCall, get_model
    from ._plugins import get_plugin_manager
    from ._session import Session
    from ._tool import Tool, tool


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipmates' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
