"""OpenTelemetry in tests: the SDK's in-memory exporter behind the process's tracer provider
(set once: OpenTelemetry allows one per process), and a loopback OTLP/HTTP receiver for the spans
of another process (`shipmates serve`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_exporter: Any = None


def memory_exporter() -> Any:
    """The in-memory exporter of this process's tracer provider (made on first use)."""
    global _exporter
    if _exporter is None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    return _exporter


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """OpenTelemetry on (``SHIPMATES_OTEL=1``) with spans kept in memory; yields the exporter."""
    from shipmates.plugin import reset_plugins

    exporter = memory_exporter()  # before the plugin loads: it keeps the provider it finds
    exporter.clear()
    monkeypatch.setenv("SHIPMATES_OTEL", "1")
    reset_plugins()
    yield exporter
    monkeypatch.delenv("SHIPMATES_OTEL")
    reset_plugins()


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint on loopback: ``url`` for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            receiver.spans.append(_received(span))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _received(span: Any) -> ReceivedSpan:
    attributes: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        attributes[kv.key] = getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
    return ReceivedSpan(
        span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), attributes
    )


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()
