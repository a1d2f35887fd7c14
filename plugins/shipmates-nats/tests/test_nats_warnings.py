"""The plugin's warnings are one line each, said once: a broken observer of replayed remote tool
calls does not print on every call, nor a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from nats_helpers import settings

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def test_a_failing_observer_of_remote_tool_calls_is_said_once(
    nats_server: Any, serve: Any, capfd: pytest.CaptureFixture[str]
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
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "observer exploded" in line]
    assert len(lines) == 1, err
    assert "broken-observer" in lines[0] and "tool_call_finished" in lines[0]
    assert "Traceback" not in err
