"""The README's permission recipe, run by a real nats-server: two crews, one user each.

Crew A (user alice) serves and calls siblings, durable jobs included; crew B's user (bob) tries
everything against crew A and the server refuses it: calls, reading requests and answers,
publishing jobs or results, and reaching crew A's streams through the JetStream API.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import until

pytestmark = [pytest.mark.nats, pytest.mark.slow]

README = Path(__file__).resolve().parents[1] / "README.md"
ALICE = {"user": "alice", "password": "alice-secret-change-me"}
BOB = {"user": "bob", "password": "bob-secret-change-me"}
ECHO_A = "crew-a.agents.echo.shipmates-natscrew.invoke"
JOBS_A = "crew-a.jobs.jobber.shipmates-natscrew"


def recipe() -> str:
    """The configuration block the README gives (the one after the 'permissions recipe' marker)."""
    text = README.read_text()
    found = re.search(r"<!-- permissions recipe.*?-->\s*```text\n(.*?)```", text, re.S)
    assert found, "the README lost its permission recipe"
    return found.group(1)


def test_the_readme_recipe_isolates_two_crews(serve: Any, journal: Path) -> None:
    from shipmates_nats import NatsServer, get_crew

    with NatsServer(config_text=recipe()) as server:
        env = {
            "SHIPMATES_NATS_USER": ALICE["user"],
            "SHIPMATES_NATS_PASSWORD": ALICE["password"],
            "NATSCREW_JOB_SECONDS": "0.05",
        }
        served = serve(server.url, "--namespace", "crew-a", agents="echo,jobber", env=env)
        assert "durable delegation off" not in served.text()  # the recipe covers JetStream

        # crew B: a raw client as bob, collecting what the server refuses and anything it receives
        async def as_bob() -> tuple[list[str], list[str], dict[str, str]]:
            import nats

            refused: list[str] = []
            got: list[str] = []

            async def error_cb(exc: Exception) -> None:
                refused.append(str(exc))

            async def spy(msg: Any) -> None:
                got.append(msg.subject)

            nc = await nats.connect(server.url, inbox_prefix="crew-b._INBOX", error_cb=error_cb, **BOB)
            for subject in ("crew-a.>", "_INBOX.>", ">", "$JS.ACK.>"):
                await nc.subscribe(subject, cb=spy)  # read crew A's requests, answers, acks
            await nc.subscribe("crew-b.>", cb=spy)  # allowed: bob's own crew (sees nothing of A)
            outcomes: dict[str, str] = {}
            attempts = {
                "call": (ECHO_A, b"sleep 0 from-bob"),
                "job": (JOBS_A, b"from-bob"),
                "result": ("crew-a.results.k1.0123456789abcdef0123456789abcdef", b"forged"),
                "read results": (
                    "$JS.API.STREAM.MSG.GET.SHIPMATES_CREW_A_RESULTS",
                    b'{"last_by_subj":"crew-a.results.>"}',
                ),
                "steal jobs": (
                    "$JS.API.CONSUMER.MSG.NEXT.SHIPMATES_CREW_A_JOBS.jobber_shipmates-natscrew",
                    b"{}",
                ),
                "purge": ("$JS.API.STREAM.PURGE.SHIPMATES_CREW_A_JOBS", b""),
            }
            for what, (subject, body) in attempts.items():
                try:
                    await nc.request(subject, body, timeout=1)
                    outcomes[what] = "answered"
                except Exception as exc:
                    outcomes[what] = type(exc).__name__
            await nc.flush()
            await until(lambda: len(refused) >= 4 + len(attempts), 5, what="the server's refusals")
            # meanwhile crew A works normally; bob sees none of it
            crew = await asyncio.to_thread(get_crew, settings(server.url, "crew-a", **ALICE))
            await asyncio.to_thread(crew.scan)
            echo, jobber = crew.proxies["echo"], crew.proxies["jobber"]
            assert (await echo.ainvoke("hello from alice")).endswith("hello from alice")
            # a streamed reply (ack, frames, end on alice's own inbox) works under the recipe too
            assert echo.streams
            streamed = [event async for event in echo.astream("streamed from alice")]
            assert streamed[-1].output.endswith("streamed from alice")
            assert (await jobber.adelegate("a1", key="alice-1", timeout=20)).startswith("job a1 by ")
            await nc.flush()
            await nc.close()
            return refused, got, outcomes

        refused, got, outcomes = asyncio.run(as_bob())
        assert got == [], got
        assert set(outcomes.values()) <= {"NoRespondersError", "TimeoutError"}, outcomes
        text = "\n".join(refused).lower()
        for subject in ("crew-a.>", "_inbox.>", ">"):
            assert f'subscription to "{subject}"' in text, refused
        for subject in (
            ECHO_A,
            JOBS_A,
            "crew-a.results.k1.",
            "$js.api.stream.msg.get.shipmates_crew_a_results",
            "$js.api.consumer.msg.next.shipmates_crew_a_jobs",
            "$js.api.stream.purge.shipmates_crew_a_jobs",
        ):
            assert f'publish to "{subject.lower()}' in text, (subject, refused)
        assert not noted(journal, "sleeping ") and not any("from-bob" in ln for ln in noted(journal, ""))
        assert [ln.split()[2] for ln in noted(journal, "start ")] == ["a1"]  # only alice's job ran

        # crew B works in its own namespace under the same recipe
        bobs = get_crew(settings(server.url, "crew-b", **BOB))
        assert bobs.scan() == {}
