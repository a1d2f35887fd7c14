"""`serve` caps the caller's timeout header: long calls cannot hold its call slots for longer.

A raw nats-py client plays the hostile caller (any NATS client can set the header); the served
`echo` sibling notes in the journal when a call starts sleeping, so the test waits on that.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted
from support import until

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def test_capped_timeout_reads_the_header_safely() -> None:
    from shipmates_nats._protocol import capped_timeout

    assert capped_timeout(None, 5, 600) == 5
    assert capped_timeout("30", 5, 600) == 30  # a caller may ask for longer than the default
    assert capped_timeout("1e9", 5, 600) == 600
    for junk in ("inf", "nan", "-3", "0", "soon", ""):
        assert capped_timeout(junk, 5, 600) == 5, junk
    assert capped_timeout("inf", 900, 600) == 600  # the cap holds even over the sibling's own timeout


async def _request(nc: Any, subject: str, body: str, timeout_header: str, wait: float = 30) -> Any:
    from shipmates_nats import _protocol as p

    return await nc.request(subject, body.encode(), timeout=wait, headers={p.H_TIMEOUT: timeout_header})


def test_huge_timeouts_are_cut_and_the_replica_answers_on(
    nats_server: Any, serve: Any, journal: Path
) -> None:
    """Four calls asking for ~forever (1e9 s, inf, nan) fill --max-inflight 4; each is cut at
    --max-timeout with a timeout error saying so, and the replica goes on answering."""
    import nats
    from shipmates_nats import _protocol as p

    serve(nats_server.url, "--namespace", "cap", "--max-inflight", "4", "--max-timeout", "2", agents="echo")
    subject = p.invoke_subject("cap", "echo", "shipmates-natscrew")

    async def scenario() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            hogs = [
                asyncio.ensure_future(_request(nc, subject, f"sleep 1000 #{i}", header))
                for i, header in enumerate(("1e9", "1e9", "inf", "nan"))
            ]
            await until(lambda: len(noted(journal, "sleeping")) == 4, 20, what="4 calls holding every slot")
            for reply in await asyncio.gather(*hogs):
                assert reply.headers[p.H_ERROR_CODE] == p.E_TIMEOUT
                error = reply.headers[p.H_ERROR]
                assert "within 2s" in error and "--max-timeout" in error and "echo" in error, error
            after = await asyncio.gather(*(_request(nc, subject, f"after {i}", "1e9") for i in range(8)))
            assert [r.data.decode().split(": ", 1)[1] for r in after] == [f"after {i}" for i in range(8)]
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_call_whose_caller_gave_up_waiting_for_a_slot_is_not_run(
    nats_server: Any, serve: Any, journal: Path
) -> None:
    """With one slot held by a capped long call, a call asking for 0.5 s is answered with a timeout
    once the slot frees (its caller has stopped waiting): it never runs."""
    import nats
    from shipmates_nats import _protocol as p

    serve(nats_server.url, "--namespace", "cap1", "--max-inflight", "1", "--max-timeout", "2", agents="echo")
    subject = p.invoke_subject("cap1", "echo", "shipmates-natscrew")

    async def scenario() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            hog = asyncio.ensure_future(_request(nc, subject, "sleep 1000", "1e9"))
            await until(lambda: noted(journal, "sleeping"), 20, what="the long call to hold the slot")
            late = await _request(nc, subject, "sleep 0.1 late", "0.5", wait=20)
            assert late.headers[p.H_ERROR_CODE] == p.E_TIMEOUT
            assert "did not start within 0.5s" in late.headers[p.H_ERROR], late.headers
            assert "--max-inflight" in late.headers[p.H_ERROR]
            assert (await hog).headers[p.H_ERROR_CODE] == p.E_TIMEOUT
            assert len(noted(journal, "sleeping")) == 1  # the late call never reached the sibling
            assert (await _request(nc, subject, "again", "5")).data.decode().endswith(": again")
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_serve_validates_its_limits(serve: Any, nats_server: Any) -> None:
    for flags in (("--max-timeout", "0"), ("--max-timeout", "nan"), ("--max-inflight", "0")):
        refused = serve(nats_server.url, *flags, agents="echo", wait=False)
        assert refused.proc.wait(30) == 2, flags
        refused.read_to_end()
        assert f"argument {flags[0]}" in refused.text(), refused.text()


def test_a_durable_job_asking_for_forever_is_cut_at_the_cap(nats_server: Any, serve: Any) -> None:
    """Durable workers apply the same cap: a job whose caller asks for 1e9 s ends at --max-timeout
    with a timeout error instead of holding one of the sibling's worker slots for good."""
    import time

    from nats_helpers import settings
    from shipmates_nats import get_crew

    serve(
        nats_server.url,
        "--namespace",
        "capjob",
        "--max-timeout",
        "1",
        agents="jobber",
        env={"NATSCREW_JOB_SECONDS": "60"},
    )
    crew = get_crew(settings(nats_server.url, "capjob"))
    crew.scan()
    begun = time.monotonic()
    with pytest.raises(Exception) as info:
        crew.proxies["jobber"].delegate("forever", key="capjob-1", timeout=1e9)
    assert "within 1s" in str(info.value), info.value
    assert time.monotonic() - begun < 30  # the cap, not the job's 60 s nor the caller's 1e9 s
