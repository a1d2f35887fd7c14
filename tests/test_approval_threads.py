"""--approve fails closed: calls made by an inner agent on a thread of its own are asked too."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shipmates import Agent, ToolCallEvent, tool


def _inner_agent(ran: list[str]) -> Agent:
    @tool
    def secret(n: int) -> int:
        """Reads a secret number n."""
        ran.append(f"secret({n})")
        return n

    return Agent("inner", tools=[secret], model="offline")


class ThreadedSibling:
    """A sibling that runs an inner agent on a thread it starts itself (no context is copied)."""

    name = "threaded"
    description = "Runs an inner agent on its own thread"

    def __init__(self, ran: list[str], how: str) -> None:
        self.ran = ran
        self.how = how

    def invoke(self, query: str) -> str:
        inner = _inner_agent(self.ran)
        box: dict[str, Any] = {}
        if self.how == "thread":
            thread = threading.Thread(target=lambda: box.update(answer=inner.invoke("secret 7")))
            thread.start()
            thread.join()
        else:
            with ThreadPoolExecutor(1) as pool:
                box["answer"] = pool.submit(inner.invoke, "secret 7").result()
        return str(box["answer"])


def _run(how: str, allow: set[str]) -> tuple[list[str], list[str], str]:
    ran: list[str] = []
    asked: list[str] = []

    def approve(event: ToolCallEvent) -> bool:
        asked.append(f"{event.agent}:{event.tool}")
        return event.tool in allow

    captain = Agent("captain", tools=[ThreadedSibling(ran, how)], model="offline")
    result = asyncio.run(captain.arun("threaded please", approve=approve))
    return ran, asked, result.output


def test_inner_agent_on_its_own_thread_is_asked_and_a_refusal_holds() -> None:
    ran, asked, output = _run("thread", allow={"threaded"})
    assert asked == ["captain:threaded", "inner:secret"]
    assert ran == []  # refused: the inner tool never ran
    assert "refused" in output


def test_inner_agent_through_an_executor_is_asked_and_runs_when_allowed() -> None:
    ran, asked, output = _run("executor", allow={"threaded", "secret"})
    assert asked == ["captain:threaded", "inner:secret"]
    assert ran == ["secret(7)"]
    assert output == "7"


def test_no_approver_in_force_after_the_run() -> None:
    ran: list[str] = []
    assert _inner_agent(ran).invoke("secret 3") == "3"
    assert ran == ["secret(3)"]
