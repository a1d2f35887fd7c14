"""A sibling that tries to end the process is that sibling's failure: the caller goes on."""

from __future__ import annotations

import asyncio
import sys

import pytest
from shipmates import Agent


class Exiter:
    """A sibling that calls sys.exit() (sync, on a worker thread) or raises it (async)."""

    description = "Quits"

    def __init__(self, name: str, *, use_async: bool) -> None:
        self.name = name
        if use_async:
            self.ainvoke = self._ainvoke

    def invoke(self, query: str) -> str:
        sys.exit(3)

    async def _ainvoke(self, query: str) -> str:
        raise SystemExit("bye from async")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sys_exit_in_a_sibling_is_an_error_result_and_invoke_keeps_working(use_async: bool) -> None:
    captain = Agent("captain", tools=[Exiter("quitter", use_async=use_async)], model="offline")
    answer = captain.invoke("quitter now")
    assert "sibling 'quitter'" in answer
    assert "tried to end the process (SystemExit:" in answer
    assert captain.invoke("quitter again") == answer  # the shared loop survived: no hang
    result = asyncio.run(captain.arun("quitter once more"))
    assert result.status == "ok"
    assert result.tool_calls[0].status == "error"


def test_sys_exit_escaping_a_sync_run_reaches_its_caller_and_the_next_run_works() -> None:
    class ExitingModel:
        model_id = "exiting"

        async def complete(self, messages: object, tools: object, **_: object) -> object:
            raise SystemExit(4)

    agent = Agent("solo", model=ExitingModel())  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as info:
        agent.invoke("hello")
    assert info.value.code == 4
    assert Agent("other", model="offline").invoke("hello").startswith("I'm the offline router")
