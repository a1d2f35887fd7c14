"""A served name stays with the distribution the captain absorbed; /refresh chooses as discovery did.

- A rival distribution that starts serving an absorbed name is reported once as a conflict naming
  both provenances (distribution, version, hosts) and never answers a call, not even when the
  absorbed distribution's replicas all leave; the name comes back only with them.
- ``refresh_agents`` applies the session's allow/deny lists (``chat --only/--exclude``) before
  looking at the siblings installed here: under ``--exclude 'local:*'`` or ``--only 'remote:*'``
  (the README's one-machine recipe) a served sibling that is also installed is taken (back).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from support import sibling_spec, wait_for, write_dist_info

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _refreshed(captain: Any, check: Any) -> Any:
    from shipmates import get_plugin_manager

    get_plugin_manager().hook.refresh_agents(captain=captain)
    return check()


def test_a_rival_distribution_never_takes_an_absorbed_name(
    nats_server: Any, serve: Any, monkeypatch: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from shipmates import Agent, absorb_crew, discover
    from shipmates_nats import _remote

    monkeypatch.setattr(_remote, "POLL_INTERVAL", 0.2)
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "rv1")
    monkeypatch.setenv("SHIPMATES_AGENTS", "echo")
    real = serve(nats_server.url, "--namespace", "rv1", agents="echo")
    captain = Agent("captain", model="offline")
    report = absorb_crew(captain, discover())
    assert report.absorbed == ["echo"]
    absorbed = captain.siblings["echo"]

    site = tmp_path / "rival-site"
    write_dist_info(
        sibling_spec("echo", dist="other-echo", version="2.0.0", reply="impostor got: {query}"), site
    )
    serve(nats_server.url, "--namespace", "rv1", agents="echo", env={"PYTHONPATH": str(site)})
    crew = absorbed.crew
    wait_for(lambda: len(crew.scan()["echo"].by_distribution()) == 2, 10, what="the rival in discovery")

    answers = []
    for i in range(20):
        _refreshed(captain, lambda: None)  # before each turn, as the REPL does
        answers.append(captain.invoke(f"echo call {i}"))
    assert all(f"echo {real.pid}: " in a for a in answers), answers
    assert not any("impostor" in a for a in answers)
    assert captain.siblings["echo"] is absorbed
    err = capfd.readouterr().err
    host = socket.gethostname()
    conflict = [line for line in err.splitlines() if "conflict: the name 'echo'" in line]
    assert len(conflict) == 1, err  # said once, not before every turn
    assert f"other-echo 2.0.0 on host(s) {host}" in conflict[0]
    assert f"keeps shipmates-natscrew 1.2.3 on host(s) {host}" in conflict[0]

    # the absorbed distribution leaves: the name goes with it, the rival does not inherit it
    real.stop()
    wait_for(lambda: _refreshed(captain, lambda: "echo" not in captain.siblings), 10, what="echo to leave")
    for _ in range(3):
        assert _refreshed(captain, lambda: "echo" not in captain.siblings)
    assert absorbed.available is False
    # ...and comes back with it
    back = serve(nats_server.url, "--namespace", "rv1", agents="echo")
    wait_for(lambda: _refreshed(captain, lambda: "echo" in captain.siblings), 10, what="echo to return")
    assert captain.siblings["echo"] is absorbed
    assert f"echo {back.pid}: " in captain.invoke("echo again")


@pytest.mark.parametrize("choice", [["--exclude", "local:*"], ["--only", "remote:*"]])
def test_refresh_applies_the_chat_lists_before_local_names(
    nats_server: Any, serve: Any, crew_site: Path, tmp_path: Path, choice: list[str]
) -> None:
    """The README's one-machine recipe: the same distribution installed here and served. The chat
    was told to use served siblings only, so one served after it started is absorbed before a turn."""
    ns = "rv2" + choice[0].strip("-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(crew_site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "SHIPMATES_HOME": str(tmp_path / "home"),
            "SHIPMATES_PLUGINS": "nats",
            "SHIPMATES_AGENTS": "echo",
            "SHIPMATES_NATS_NAMESPACE": ns,
            "PYTHONUNBUFFERED": "1",
        }
    )
    chat = subprocess.Popen(
        [sys.executable, "-m", "shipmates", "chat", "--nats", nats_server.url, *choice],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stdin, stdout = chat.stdin, chat.stdout
    assert stdin is not None and stdout is not None
    answers: list[str] = []
    threading.Thread(target=lambda: answers.extend(iter(stdout.readline, "")), daemon=True).start()
    try:
        replica = serve(nats_server.url, "--namespace", ns, agents="echo")

        def answered() -> bool:
            stdin.write("echo from the chat\n")  # a turn: the crew is refreshed before it
            stdin.flush()
            return any(f"echo {replica.pid}: " in line for line in answers)

        wait_for(answered, 20, step=0.5, what="the served echo to answer a turn")
    finally:
        stdin.close()
        chat.wait(30)
    err = chat.stderr.read() if chat.stderr is not None else ""
    assert "a local sibling is also named 'echo'" not in err, err
    assert chat.returncode == 0, err
