"""Replicas, SIGKILL mid-stream, durable delegation, server restart, credentials, a cluster, nats up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import until, wait_for

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _proxy(url: str, ns: str, name: str, **kw: Any) -> Any:
    from shipmates_nats import get_crew

    crew = get_crew(settings(url, ns, **kw))
    wait_for(lambda: name in crew.scan(), 10)
    return crew.proxies[name]


def test_two_replicas_share_the_load(nats_server: Any, serve: Any) -> None:
    a = serve(nats_server.url, "--namespace", "r1", agents="echo")
    b = serve(nats_server.url, "--namespace", "r1", agents="echo")
    echo = _proxy(nats_server.url, "r1", "echo")
    wait_for(lambda: len(echo.crew.scan()["echo"].instances) == 2, 10)

    async def many() -> list[str]:
        return await asyncio.gather(*(echo.ainvoke(f"q{i}") for i in range(60)))

    pids = {answer.split(":")[0].split()[1] for answer in asyncio.run(many())}
    assert pids == {str(a.pid), str(b.pid)}


def test_sigkill_one_replica_mid_stream(nats_server: Any, serve: Any, journal: Path) -> None:
    """Plain calls complete on the survivor or fail clearly; durable jobs all complete exactly once."""
    from shipmates_nats import RemoteCallError
    from shipmates_nats._durable import existing_result, job_secret, signed
    from shipmates_nats._protocol import result_tag

    env = {"NATSCREW_JOB_SECONDS": "0.4"}  # the siblings note their steps in `journal`
    flags = ("--namespace", "r2", "--ack-wait", "1")
    victim = serve(nats_server.url, *flags, agents="echo,jobber", env=env)
    serve(nats_server.url, *flags, agents="echo,jobber", env=env)
    echo = _proxy(nats_server.url, "r2", "echo")
    jobber = _proxy(nats_server.url, "r2", "jobber")
    assert jobber.durable
    echo.served_timeout = 1.5  # a call stuck on the dead replica fails fast and clearly
    wait_for(lambda: len(echo.crew.scan()["echo"].instances) == 2, 10)
    keys = [f"job-{i}" for i in range(12)]

    async def stream() -> tuple[list[Any], list[Any]]:
        calls = [asyncio.ensure_future(echo.ainvoke("sleep 0.5")) for _ in range(30)]
        jobs = [asyncio.ensure_future(jobber.adelegate(k, key=k, timeout=30)) for k in keys]
        # until the victim is in the middle of plain calls and of a durable job
        mine = (f"sleeping {victim.pid} ", f"start {victim.pid} ")
        await until(lambda: all(noted(journal, m) for m in mine), 20, what="the victim to be working")
        victim.proc.kill()  # SIGKILL mid-stream
        more = [asyncio.ensure_future(echo.ainvoke("after")) for _ in range(10)]
        done = await asyncio.wait_for(asyncio.gather(*calls, *more, return_exceptions=True), 20)
        results = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), 40)
        return list(done), list(results)

    started = time.monotonic()
    plain, durable = asyncio.run(stream())
    assert time.monotonic() - started < 45
    ok = [r for r in plain if isinstance(r, str)]
    failed = [r for r in plain if not isinstance(r, str)]
    assert ok, plain
    assert all(isinstance(e, RemoteCallError) and "'echo'" in str(e) for e in failed), failed
    assert all(r.startswith("echo ") for r in ok)
    # durable: every job has exactly one result, by whichever replica finished it
    pairs = zip(durable, keys, strict=True)
    assert all(isinstance(r, str) and r.startswith(f"job {k} by ") for r, k in pairs), durable

    async def stored() -> list[Any]:
        import nats

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        secrets = {k: job_secret("r2", "jobber", "shipmates-natscrew", k) for k in keys}
        found = [await existing_result(js, "r2", k, result_tag(secrets[k])) for k in keys]
        assert all(signed(m, secrets[k], k) for m, k in zip(found, keys, strict=True) if m is not None)
        info = await js.stream_info("SHIPMATES_R2_RESULTS")
        await nc.close()
        return [found, info.state.messages]

    lines = journal.read_text().splitlines()
    started_there = [ln.split()[2] for ln in lines if ln.startswith(f"start {victim.pid} ")]
    interrupted = [k for k in started_there if f"done {victim.pid} {k}" not in lines]
    assert interrupted, "the SIGKILL should have interrupted at least one durable job"
    assert all(durable[keys.index(k)].split(" by ")[1] != str(victim.pid) for k in interrupted)
    found, count = asyncio.run(stored())
    assert all(m is not None for m in found) and count == len(keys)
    # asking again with the same key returns the same single result, without running it again
    before = journal.read_text().count("start")
    assert jobber.delegate("anything", key=keys[0], timeout=10) == durable[0]
    import shipmates_nats

    again = shipmates_nats.delegate("jobber", "x", key=keys[1], settings=settings(nats_server.url, "r2"))
    assert again == durable[1]
    assert journal.read_text().count("start") == before


def test_server_restart_clients_reconnect(serve: Any) -> None:
    from shipmates_nats import NatsServer

    with NatsServer() as server:
        serve(server.url, "--namespace", "r3", agents="echo")
        echo = _proxy(server.url, "r3", "echo")
        assert echo.invoke("before").startswith("echo ")
        server.restart()

        def works() -> bool:
            try:
                return echo.invoke("after").endswith("after")
            except Exception:
                return False

        wait_for(works, 20, step=0.2)


def test_wrong_credentials(serve: Any, tmp_path: Path) -> None:
    from shipmates_nats import NatsConnectError, NatsServer, get_crew

    for name, token in (("wrong", "wrong"), ("right", "s3cret")):
        (tmp_path / name).write_text(f"{token}\n")
        (tmp_path / name).chmod(0o600)

    with NatsServer(extra_args=["--auth", "s3cret"]) as server:
        started = time.monotonic()
        with pytest.raises(NatsConnectError, match="rejected the credentials"):
            get_crew(settings(server.url, token="wrong"))
        assert time.monotonic() - started < 3
        bad = serve(server.url, "--token-file", str(tmp_path / "wrong"), wait=False)
        assert bad.proc.wait(20) == 1
        assert "rejected the credentials" in bad.text()
        serve(server.url, "--namespace", "r4", "--token-file", str(tmp_path / "right"), agents="echo")
        assert _proxy(server.url, "r4", "echo", token="s3cret").invoke("hi").endswith("hi")
    with NatsServer(extra_args=["--user", "ann", "--pass", "pw"]) as server:
        with pytest.raises(NatsConnectError, match="rejected the credentials"):
            get_crew(settings(server.url, user="ann", password="nope"))
        assert get_crew(settings(server.url, user="ann", password="pw")).scan() == {}


def test_cluster_of_three(serve: Any) -> None:
    from shipmates_nats import NatsServer

    seed = NatsServer(name="n1", cluster_port=-1, jetstream=False).start()
    others: list[Any] = []
    try:
        for n in ("n2", "n3"):
            peer = NatsServer(name=n, cluster_port=-1, jetstream=False, routes=[seed.cluster_url])
            others.append(peer.start())
        serve(seed.url, "--namespace", "c1", "--no-durable", agents="echo")
        echo = _proxy(others[1].url, "c1", "echo")  # the captain is on another server
        assert echo.invoke("across").endswith("across")
        from shipmates_nats import RemoteCallError

        with pytest.raises(RemoteCallError, match="needs JetStream"):  # this cluster runs without it
            echo.delegate("durably", timeout=5)
    finally:
        for s in [*others, seed]:
            s.close()


def test_nats_up_and_down(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update({"SHIPMATES_HOME": str(tmp_path / "home"), "SHIPMATES_PLUGINS": "nats"})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipmates", "nats", *args],
            env=env,
            text=True,
            capture_output=True,
            timeout=30,
        )

    up = cli("up", "--port", "-1", "--detach")
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip()
    assert url.startswith("nats://127.0.0.1:")
    assert "JetStream on" in up.stderr
    pid = int((tmp_path / "home" / "state" / "nats" / "pid").read_text())
    try:
        assert cli("url").stdout.strip() == url
        from shipmates_nats import get_crew

        assert get_crew(settings(url)).scan() == {}
        assert (tmp_path / "home" / "state" / "nats" / "jetstream").is_dir()
    finally:
        down = cli("down")
    assert down.returncode == 0

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 5, step=0.1, what=f"nats-server (pid {pid}) to stop")
    assert signal.SIGTERM  # the server stopped on SIGTERM from `nats down`
