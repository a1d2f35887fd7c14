"""Durable results cannot be forged: only a worker that took the job can make the caller accept one.

A raw nats-py client with no credentials (the server has no auth) publishes forged results for a
job's key, the old way (``NS.results.<key>``, deduplicated on the key) and even on the job's exact
result subject, with no signature or a wrong one, through JetStream and core NATS alike: the
caller still gets the real sibling's answer, now and on every re-call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import until

pytestmark = [pytest.mark.nats, pytest.mark.slow]

NS = "forge"
OK = {"Shipmates-Status": "ok"}


async def _forge(url: str, key: str, *, exact: bool) -> None:
    """Publish forged results for ``key``: on the key's subject, and with ``exact`` on the job's own
    result subject too (as if its tag had leaked), unsigned and signed with the wrong secret."""
    import nats
    from shipmates_nats._durable import job_secret
    from shipmates_nats._protocol import result_mac, result_tag, results_subject

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.publish(f"{NS}.results.{key}", b"forged", headers={**OK, "Nats-Msg-Id": key})
    if exact:
        subject = results_subject(NS, key, result_tag(job_secret(NS, "jobber", "shipmates-natscrew", key)))
        wrong = result_mac(b"not the job's secret", key, OK, b"forged")
        await js.publish(subject, b"forged", headers=OK)
        await nc.publish(subject, b"forged", headers={**OK, "Shipmates-Mac": wrong})
        await js.publish(subject, b"forged", headers={**OK, "Shipmates-Mac": wrong})
    await nc.flush()
    await nc.close()


def _starts(journal: Path, query: str) -> int:
    return sum(line.endswith(f" {query}") for line in noted(journal, "start "))


def test_forged_results_are_never_accepted(
    nats_server: Any, serve: Any, journal: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from shipmates_nats import get_crew

    serve(nats_server.url, "--namespace", NS, agents="jobber", env={"NATSCREW_JOB_SECONDS": "0.5"})
    crew = get_crew(settings(nats_server.url, NS))
    crew.scan()
    jobber = crew.proxies["jobber"]

    async def while_it_runs() -> str:
        call = asyncio.ensure_future(jobber.adelegate("live", key="k-live", timeout=20))
        await until(lambda: call.done() or _starts(journal, "live"), 15, what="the job to start")
        await _forge(nats_server.url, "k-live", exact=True)  # the caller is waiting right now
        return await call

    real = asyncio.run(while_it_runs())
    assert real.startswith("job live by "), real
    assert "discarded a durable result for sibling 'jobber' (key k-live)" in capfd.readouterr().err

    # forged on the key's subject after the fact: a re-call returns the stored real result, no rerun
    asyncio.run(_forge(nats_server.url, "k-live", exact=False))
    assert jobber.delegate("live", key="k-live", timeout=20) == real
    assert _starts(journal, "live") == 1

    # the stored result itself overwritten by a forgery: the re-call runs the job again, never "forged"
    asyncio.run(_forge(nats_server.url, "k-live", exact=True))
    assert jobber.delegate("live", key="k-live", timeout=20).startswith("job live by ")

    # forged before the job is even submitted: the worker does not take it for done, the caller
    # does not take it for the answer
    asyncio.run(_forge(nats_server.url, "k-early", exact=True))
    assert jobber.delegate("early", key="k-early", timeout=20).startswith("job early by ")
    assert _starts(journal, "early") == 1


def test_the_caller_secret_is_user_only_and_stable() -> None:
    from shipmates.plugin import state_dir
    from shipmates_nats._durable import SECRET_FILE, _secrets, caller_secret, job_secret

    first = caller_secret()
    assert (state_dir() / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    _secrets.clear()  # as a new process would: the same file, the same secret
    assert caller_secret() == first
    assert job_secret("ns", "jobber", "Shipmates_NatsCrew", "k") == job_secret(
        "ns", "jobber", "shipmates-natscrew", "k"
    )
    assert job_secret("ns", "jobber", "x", "k") != job_secret("ns", "jobber", "x", "k2")
