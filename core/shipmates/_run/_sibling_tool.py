"""A sibling as a tool: the captain's side of delegation (see :meth:`shipmates.Agent.absorb`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._crew._sibling import Provenance, SiblingSpec, sibling_spec
from .._errors import AbsorbError
from ._context import run_request
from ._tool import Tool, ToolArgumentsError, validation_message

Binder = Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def describe_sibling(spec: SiblingSpec) -> str:
    """The absorbed tool's description: the sibling's own, then its tools and skills."""
    text = spec.description.strip() or f"The sibling agent '{spec.name}'."
    tools = []
    for t in spec.tools:
        first = t.description.strip().splitlines()[0][:100] if t.description.strip() else ""
        tools.append(f"{t.name} ({first})" if first else t.name)
    if (tools or spec.skills) and not text.endswith((".", "!", "?")):
        text += "."
    if tools:
        text += f" Its tools: {', '.join(tools)}."
    if spec.skills:
        text += f" Its skills: {', '.join(spec.skills)}."
    return text


def sibling_tool(sibling: Any, *, provenance: Provenance | None = None, timeout: float | None = None) -> Tool:
    """Build the tool that delegates to ``sibling`` (or its :class:`SiblingSpec`); ``timeout``
    overrides the sibling's own."""
    spec = sibling if isinstance(sibling, SiblingSpec) else sibling_spec(sibling)
    parameters, bind = _model_input(spec) if spec.input_model is not None else _query_input(spec.name)
    streamed = None
    if callable(getattr(spec.sibling, "astream", None)):  # loads the stream machinery only then
        from ._stream import streaming_call

        streamed = streaming_call(spec.sibling)  # astream(query): its events join the captain's stream
    return Tool(
        spec.name,
        describe_sibling(spec),
        parameters,
        spec.call if streamed is None else streamed,
        bind=bind,
        is_async=spec.is_async or streamed is not None,
        timeout=spec.timeout if timeout is None else timeout,
        sibling=spec.sibling,
        provenance=provenance,
    )


def _model_input(spec: SiblingSpec) -> tuple[dict[str, Any], Binder]:
    """A sibling with an ``input_model``: its schema, and arguments validated into an instance."""
    name = spec.name
    try:
        parameters = spec.input_schema() or {}
    except Exception as exc:
        raise AbsorbError(
            f"cannot absorb sibling '{name}': the JSON schema of its input_model "
            f"{getattr(spec.input_model, '__name__', spec.input_model)!r} cannot be built ({exc})"
        ) from exc
    validate = spec.input_model.model_validate
    from pydantic import ValidationError

    def bind(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            return (validate(arguments),), {}
        except ValidationError as exc:
            raise ToolArgumentsError(validation_message(name, exc, parameters)) from None

    return parameters, bind


def query_description(name: str) -> str:
    """The ``query`` parameter's description (a small model sometimes sends it as the value)."""
    return f"What to ask {name}, in plain language."


def _query_input(name: str) -> tuple[dict[str, Any], Binder]:
    """A plain sibling: one string parameter, ``query``."""
    described = query_description(name)
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": described}},
        "required": ["query"],
    }
    empty: dict[str, Any] = {}
    placeholder = described.casefold().rstrip(".")

    def bind(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        query = arguments.get("query")
        if isinstance(query, str):
            if not query.strip() or query.strip().casefold().rstrip(".") == placeholder:
                request = run_request.get()
                if request:  # a small model's slip: pass on what the user asked, as it should have
                    return (request,), empty
                raise ToolArgumentsError(
                    f"error: the query for '{name}' was "
                    f"{'empty' if not query.strip() else 'the description of the parameter'}, not a "
                    f"request. Call '{name}' again with what the user asked, in their words and with "
                    "their numbers."
                )
            return (query,), empty
        strings = [v for v in arguments.values() if isinstance(v, str)]
        if query is None and len(strings) == 1:  # a model that renamed the parameter
            return (strings[0],), empty
        raise ToolArgumentsError(
            f"error: invalid arguments for sibling '{name}': it takes one string parameter "
            f'\'query\' (what to ask it), got {arguments!r}. Call it again as {{"query": "..."}}'
        )

    return parameters, bind
