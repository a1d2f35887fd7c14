"""A broken observer of replayed remote tool calls is said once, in one line (as shipmates says its
own hook failures), not on every call, and without a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from nats_helpers import settings

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def test_a_failing_observer_of_remote_tool_calls_is_said_once(
    nats_server: Any, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from shipmates import Agent, get_plugin_manager, hookimpl
    from shipmates_nats import get_crew

    serve(nats_server.url, "--namespace", "w1", agents="calc")
    crew = get_crew(settings(nats_server.url, "w1"))
    crew.scan()

    class Broken:
        @hookimpl
        def tool_call_finished(self, event: Any) -> None:
            raise RuntimeError("observer exploded")

    pm = get_plugin_manager()
    pm.register(Broken(), name="broken-observer")
    try:
        captain = Agent("captain", model="offline")
        captain.absorb(crew.proxies["calc"])
        for n in (1, 2, 3):
            assert str(2 * n) in captain.invoke(f"calc: double {n}")
    finally:
        pm.unregister(name="broken-observer")
    said = [r for r in caplog.records if "observer exploded" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    line = said[0].getMessage()
    assert "broken-observer" in line and "tool_call_finished" in line and "\n" not in line
    assert said[0].exc_info is None
