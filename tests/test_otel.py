"""OpenTelemetry (``shipmates[otel]``): spans that follow the GenAI semantic conventions for every
agent run, tool call and model call of a delegation tree, in one trace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from support import litellm_offline
from support.otel import spans
from test_usage import TOKENS, _tree, delegating

_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib
__all__ = ["delegating", "spans"]  # fixtures, used by name

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


def test_a_depth_2_delegation_is_one_trace_of_genai_spans(delegating: None, spans: Any) -> None:
    result = asyncio.run(_tree().arun("go"))
    assert result.output == "[[[leaf says hi]]]"
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def parent(span: Any) -> str:
        return by_id[span.parent.span_id].name if span.parent is not None else "-"

    tree = sorted((s.name, parent(s)) for s in finished)
    assert tree == sorted(
        [
            ("invoke_agent captain", "-"),
            ("chat usagetest/captain", "invoke_agent captain"),
            ("execute_tool middle", "invoke_agent captain"),
            ("invoke_agent middle", "execute_tool middle"),
            ("chat usagetest/middle", "invoke_agent middle"),
            ("execute_tool leaf", "invoke_agent middle"),
            ("invoke_agent leaf", "execute_tool leaf"),
            ("chat usagetest/leaf", "invoke_agent leaf"),
            ("chat usagetest/middle", "invoke_agent middle"),
            ("chat usagetest/captain", "invoke_agent captain"),
        ]
    )
    assert len({s.context.trace_id for s in finished}) == 1
    named = {s.name: s for s in finished}
    leaf_chat = dict(named["chat usagetest/leaf"].attributes or {})
    assert leaf_chat == {
        "gen_ai.operation.name": "chat",
        "gen_ai.agent.name": "leaf",
        "gen_ai.request.model": "usagetest/leaf",
        "gen_ai.provider.name": "usagetest",
        "gen_ai.usage.input_tokens": TOKENS["leaf"][0],
        "gen_ai.usage.output_tokens": TOKENS["leaf"][1],
    }
    tool = dict(named["execute_tool middle"].attributes or {})
    assert tool["gen_ai.tool.name"] == "middle" and tool["gen_ai.tool.type"] == "agent"
    assert tool["gen_ai.agent.name"] == "captain" and tool["gen_ai.tool.call.id"] == "call-captain"
    captain = dict(named["invoke_agent captain"].attributes or {})
    assert captain["gen_ai.operation.name"] == "invoke_agent" and captain["gen_ai.agent.name"] == "captain"
    assert captain["gen_ai.usage.input_tokens"] == result.usage.input_tokens == 243
    assert captain["gen_ai.usage.output_tokens"] == result.usage.output_tokens


def test_without_otel_nothing_is_imported_or_traced() -> None:
    code = (
        "import sys, asyncio, shipmates\n"
        "asyncio.run(shipmates.Agent('a').arun('hi'))\n"
        "from shipmates.plugin import plugin_host\n"
        "assert not plugin_host().implemented('run_event')\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    env = {"PATH": "", "SHIPMATES_PLUGINS": "", "SHIPMATES_AGENTS": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    on = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shipmates.plugin import plugin_host; print(plugin_host().implemented('run_event'))",
        ],
        check=True,
        env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert on.stdout.strip() == "True"


def test_a_bad_shipmates_otel_value_is_a_settings_error() -> None:
    from shipmates import SettingsError
    from shipmates._settings import otel_enabled

    assert otel_enabled({"SHIPMATES_OTEL": "console"}) and not otel_enabled({})
    assert not otel_enabled({"SHIPMATES_OTEL": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    with pytest.raises(SettingsError, match="SHIPMATES_OTEL='maybe'"):
        otel_enabled({"SHIPMATES_OTEL": "maybe"})


def test_concurrent_runs_of_the_same_agents_make_separate_traces(delegating: None, spans: Any) -> None:
    async def both() -> None:
        await asyncio.gather(_tree().arun("go"), _tree().arun("go"))

    asyncio.run(both())
    finished = spans.get_finished_spans()
    traces: dict[int, list[str]] = {}
    for span in finished:
        traces.setdefault(span.context.trace_id, []).append(span.name)
    assert len(traces) == 2 and all(len(names) == 10 for names in traces.values()), traces
    ids = {s.context.span_id for s in finished}
    assert all(s.parent is None or s.parent.span_id in ids for s in finished)  # no dangling parent
