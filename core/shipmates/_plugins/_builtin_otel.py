"""Built-in plugin: OpenTelemetry spans of every run, following the GenAI semantic conventions.

Loaded only when enabled (:func:`shipmates._settings.otel_enabled`: ``SHIPMATES_OTEL=1`` or an
``OTEL_EXPORTER_OTLP_*`` variable) and the ``shipmates[otel]`` extra is installed: otherwise this
module is never imported and runs pay nothing. It consumes the ``run_event`` hook:

- ``invoke_agent {agent}`` per agent run (a sibling's run under the captain's call span),
- ``execute_tool {tool}`` per tool call and delegation,
- ``chat {model}`` per model call, with ``gen_ai.usage.input_tokens`` / ``output_tokens``.

Spans go to the application's tracer provider when it set one, else to one made here that
exports over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``SHIPMATES_OTEL=console`` prints them
instead). A remote call carries the context of its ``execute_tool`` span in its headers
(:func:`inject`), and the serving replica continues it (:func:`attach`): one trace id across
machines.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .._run import _stream_events as ev
from .._run._context import parent_call_id
from .._settings import otel_exporter
from ._hookspecs import hookimpl

_run_span: ContextVar[Span | None] = ContextVar("shipmates_otel_run_span", default=None)
"""The span of the agent run whose events are being emitted: the run loop emits them all in the
run's own context (its calls' tasks and threads copy it), so concurrent runs never mix."""
_tokens: dict[int, Token[Span | None]] = {}
_calls: dict[tuple[int, str | None], Span] = {}
"""Tool-call spans by (their run's span, call id), until the call finishes."""
_lock = threading.Lock()


def _setup() -> None:
    """A tracer provider with an exporter, unless the application set its own."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "shipmates"}))
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter | None = None
    where = otel_exporter()
    if where == "console":
        exporter = ConsoleSpanExporter()
    elif where == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


_setup()


def _tracer() -> trace.Tracer:
    return trace.get_tracer("shipmates")


def _parent(span: Span | None) -> context.Context | None:
    return trace.set_span_in_context(span) if span is not None else None


@hookimpl
def run_event(event: ev.RunEvent) -> None:
    if isinstance(event, ev.ToolCallStarted):
        _call_started(event)
    elif isinstance(event, ev.ToolCallFinished):
        _call_finished(event)
    elif isinstance(event, ev.ModelCallFinished):
        _model_call(event)
    elif isinstance(event, ev.RunStarted):
        _run_started(event)
    elif isinstance(event, ev.RunFinished):
        _run_finished(event)


def _run_started(event: ev.RunStarted) -> None:
    # A sibling's run goes under the call that delegated; a top-level run continues the current
    # context (the application's span, or a remote caller's).
    caller = _call_span(event.parent_call_id) if event.parent_call_id is not None else None
    span = _tracer().start_span(
        f"invoke_agent {event.agent}",
        context=_parent(caller),
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": event.agent,
            "gen_ai.request.model": event.model,
        },
    )
    with _lock:
        _tokens[id(span)] = _run_span.set(span)


def _run_finished(event: ev.RunFinished) -> None:
    span = _run_span.get()
    if span is None:
        return
    with _lock:
        token = _tokens.pop(id(span), None)
    if token is not None:
        with contextlib.suppress(ValueError):  # not the context it was set in: nothing to undo
            _run_span.reset(token)
    span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
    span.set_attribute("shipmates.run.status", event.status)
    if event.usage.cost_usd is not None:
        span.set_attribute("shipmates.usage.cost_usd", event.usage.cost_usd)
    if event.status in ("error", "cancelled", "budget_exhausted"):
        span.set_attribute("error.type", event.status)
        span.set_status(Status(StatusCode.ERROR, event.error or event.reason or event.status))
    span.end()


def _call_span(call_id: str | None) -> Span | None:
    with _lock:
        return _calls.get((id(_run_span.get()), call_id))


def _call_started(event: ev.ToolCallStarted) -> None:
    call = event.call
    span = _tracer().start_span(
        f"execute_tool {call.tool}",
        context=_parent(_run_span.get()),
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.agent.name": call.agent,
            "gen_ai.tool.name": call.tool,
            "gen_ai.tool.call.id": call.call_id,
            "gen_ai.tool.type": "agent" if call.is_delegation else "function",
        },
    )
    with _lock:
        _calls[(id(_run_span.get()), call.call_id)] = span


def _call_finished(event: ev.ToolCallFinished) -> None:
    call = event.call
    with _lock:
        span = _calls.pop((id(_run_span.get()), call.call_id), None)
    if span is None:
        return
    if call.status != "ok":
        span.set_attribute("error.type", call.status)
        span.set_status(Status(StatusCode.ERROR, (call.error or call.status)[:500]))
    span.end()


def _model_call(event: ev.ModelCallFinished) -> None:
    run = _run_span.get()
    end = time.time_ns()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.agent.name": event.agent,
        "gen_ai.request.model": event.model,
        "gen_ai.usage.input_tokens": event.usage.input_tokens,
        "gen_ai.usage.output_tokens": event.usage.output_tokens,
    }
    if "/" in event.model:
        attributes["gen_ai.provider.name"] = event.model.split("/", 1)[0]
    if event.usage.cost_usd is not None:
        attributes["shipmates.usage.cost_usd"] = event.usage.cost_usd
    span = _tracer().start_span(
        f"chat {event.model}",
        context=_parent(run),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=end - int(event.duration * 1e9),
    )
    span.end(end_time=end)


# -- across processes -------------------------------------------------------------------------


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the running call's trace context in ``headers`` (the standard propagator: W3C
    ``traceparent``, ``tracestate``, baggage)."""
    propagate.inject(headers, context=_parent(_call_span(parent_call_id())))


def attach(headers: Mapping[str, str]) -> Callable[[], None]:
    """Continue the trace in ``headers`` in this context; returns the function that ends it."""
    token = context.attach(propagate.extract(dict(headers)))
    return lambda: context.detach(token)
