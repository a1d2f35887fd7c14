"""One OpenTelemetry trace across machines: the captain, the `serve` replica it calls over NATS,
and that replica's own sibling (the standard propagator in the request headers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats_helpers import settings
from support import wait_for
from support.otel import OtlpReceiver, otlp_receiver, spans

pytestmark = [pytest.mark.nats, pytest.mark.slow]
__all__ = ["otlp_receiver", "spans"]  # fixtures, used by name


def test_captain_replica_and_its_sibling_share_one_trace(
    nats_server: Any, serve: Any, spans: Any, otlp_receiver: OtlpReceiver
) -> None:
    from shipmates import Agent
    from shipmates_nats import get_crew

    served = serve(
        nats_server.url,
        "--namespace",
        "totel",
        agents="relay",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"},
    )
    crew = get_crew(settings(nats_server.url, "totel"))
    crew.scan()
    captain = Agent("captain", model="offline")
    captain.absorb(crew.proxies["relay"])
    result = asyncio.run(captain.arun("relay: echo this"))
    assert "echo" in result.output, result.output

    local = {s.name: s for s in spans.get_finished_spans()}
    delegation = local["execute_tool relay"]
    trace_id = f"{delegation.context.trace_id:032x}"
    assert f"{local['invoke_agent captain'].context.trace_id:032x}" == trace_id

    def remote() -> dict[str, Any]:
        return {s.name: s for s in otlp_receiver.spans}

    wait_for(lambda: "invoke_agent relay" in remote(), what="the replica's spans", timeout=20)
    wait_for(lambda: "execute_tool echo" in remote(), what="the replica sibling's span", timeout=20)
    received = remote()
    relay, echo = received["invoke_agent relay"], received["execute_tool echo"]
    assert relay.trace_id == echo.trace_id == trace_id, (relay, echo, trace_id)
    assert relay.parent_span_id == f"{delegation.context.span_id:016x}"  # under the captain's call
    assert echo.parent_span_id == relay.span_id
    assert relay.attributes["gen_ai.agent.name"] == "relay"
    assert echo.attributes["gen_ai.tool.name"] == "echo"
    served.stop()
