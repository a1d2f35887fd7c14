"""`shipmates up`, `status`, `scale`, `down` with real processes: nats-server, the supervisor and its
`serve` workers; plus the crew file's checks and the captain's circuit breakers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import wait_for

FAST = """
[restart]
backoff = {backoff}
backoff_max = 5
healthy_reset = 300
max_restarts = {max_restarts}
window = 60
heartbeat = 0.2
silent_after = 5
drain_timeout = 10
kill_after = 5
"""


def crew_text(
    url: str, ns: str, siblings: dict[str, int], *, backoff: float = 0.3, max_restarts: int = 5
) -> str:
    lines = [f'[crew]\nname = "{ns}"\nnats = "{url}"\nnamespace = "{ns}"\n']
    lines.append(FAST.format(backoff=backoff, max_restarts=max_restarts))
    for name, n in siblings.items():
        lines.append(f"[siblings.{name}]\nreplicas = {n}\n")
    return "\n".join(lines)


def _crew_file(tmp_path: Path, url: str, name: str, siblings: dict[str, int], **kw: Any) -> Path:
    f = tmp_path / f"{name}.toml"
    f.write_text(crew_text(url, name, siblings, **kw))
    return f


class Up:
    """A `shipmates up` process of one crew; ``state()`` is its state.json."""

    def __init__(self, proc: subprocess.Popen[str], name: str, env: dict[str, str]) -> None:
        self.proc, self.name, self.env = proc, name, env
        self.err: list[str] = []
        threading.Thread(target=lambda: self.err.extend(proc.stderr or ()), daemon=True).start()

    def state(self) -> dict[str, Any]:
        from shipmates_nats._supervisor import crew_dir

        try:
            return dict(json.loads((crew_dir(self.name) / "state.json").read_text()))
        except (OSError, ValueError):
            return {"siblings": []}

    def replicas(self, sibling: str) -> list[dict[str, Any]]:
        for s in self.state()["siblings"]:
            if s["name"] == sibling:
                return list(s["replicas"])
        return []

    def serving(self, sibling: str) -> list[int]:
        return [r["pid"] for r in self.replicas(sibling) if r["state"] in ("serving", "busy")]

    def sibling(self, name: str) -> dict[str, Any]:
        return next(s for s in self.state()["siblings"] if s["name"] == name)

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipmates", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def up(crew_site: Path, tmp_path: Path, journal: Path) -> Iterator[Callable[..., Up]]:
    """``up(crew_file, *flags)`` -> a running `shipmates up` (its crew's state dir is this test's)."""
    started: list[Up] = []

    def start(crew_file: Path, *flags: str, name: str | None = None, path: tuple[Path, ...] = ()) -> Up:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
        env.update(
            PYTHONPATH=os.pathsep.join([*map(str, path), str(crew_site), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            SHIPMATES_HOME=os.environ["SHIPMATES_HOME"],
            SHIPMATES_PLUGINS="nats",
            SHIPMATES_AGENTS="echo,square,ghost,spender",
            PYTHONUNBUFFERED="1",
            NATSCREW_JOURNAL=str(journal),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipmates", "up", str(crew_file), *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        handle = Up(proc, name or crew_file.stem, env)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.proc.poll() is None:
            handle.proc.terminate()
            try:
                handle.proc.wait(30)
            except subprocess.TimeoutExpired:
                handle.proc.kill()
        for s in handle.state()["siblings"]:
            for r in s["replicas"]:
                with pytest.raises(ProcessLookupError):
                    os.kill(r["pid"], signal.SIGKILL)  # the supervisor stopped every worker


def _echo(url: str, ns: str) -> Any:
    from shipmates_nats import get_crew

    crew = get_crew(settings(url, ns))
    wait_for(lambda: "echo" in crew.scan(), 20, what="echo served")
    return crew.proxies["echo"]


def _answers(echo: Any, pid: int) -> bool:
    try:
        return bool(echo.invoke("hi").startswith(f"echo {pid}:"))
    except Exception:
        return False


def _sleeping_call(echo: Any, journal: Path) -> tuple[threading.Thread, list[str]]:
    """A 2 s call to ``echo`` in a thread, once it is running on a worker; its answer lands in the list."""
    answer: list[str] = []
    call = threading.Thread(target=lambda: answer.append(echo.invoke("sleep 2")))
    call.start()
    wait_for(lambda: noted(journal, "sleeping"), 10)
    return call, answer


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


pytestmark = [pytest.mark.nats]


# -- crew file --------------------------------------------------------------------------------


def test_crew_file_refuses_inline_secrets_and_names_the_fix(tmp_path: Path) -> None:
    from shipmates_nats._crewfile import load_crew
    from shipmates_nats._errors import NatsSetupError

    f = tmp_path / "c.toml"
    f.write_text('[crew.credentials]\ntoken = "s3cret"\n[siblings.echo]\nreplicas = 1\n')
    with pytest.raises(NatsSetupError, match="token_file") as info:
        load_crew(f)
    assert "s3cret" not in str(info.value)
    f.write_text(
        '[crew]\nbudget_tokens = 100\n[crew.credentials]\ntoken_file = "/run/t"\n'
        '[siblings.echo]\nreplicas = 2\nmodel = "m"\nenv = {A = "1"}\n[restart]\nbackoff = 0.5\n'
    )
    crew = load_crew(f)
    assert crew.name == "c" and crew.siblings["echo"].replicas == 2
    assert crew.worker_env() == {"SHIPMATES_NATS_TOKEN_FILE": "/run/t"}
    assert crew.siblings["echo"].environment() == {"A": "1", "SHIPMATES_MODEL": "m"}
    assert [crew.restart.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert crew.restart.delay(20) == crew.restart.backoff_max == 300


# -- the supervisor ---------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_worker_is_restarted_a_second_up_refused_and_down_stops_all(
    nats_server: Any, up: Any, tmp_path: Path
) -> None:
    f = _crew_file(tmp_path, nats_server.url, "u1", {"echo": 1}, backoff=0.5)
    crew = up(f)
    first = wait_for(lambda: crew.serving("echo"), 30, what="echo serving")[0]
    echo = _echo(nats_server.url, "u1")
    assert _answers(echo, first)

    second = crew.cli("up", str(f))
    assert second.returncode == 1
    assert f"already running (PID {crew.proc.pid})" in second.stderr

    os.kill(first, signal.SIGKILL)
    again = wait_for(lambda: [p for p in crew.serving("echo") if p != first], 30, what="a new worker")[0]
    assert crew.sibling("echo")["restarts"] == 1
    assert f"exited with -{int(signal.SIGKILL)}" in crew.sibling("echo")["last_error"]
    wait_for(lambda: _answers(echo, again), 15, what="echo answering again")

    down = crew.cli("down")
    assert down.returncode == 0, down.stderr
    assert crew.proc.wait(5) == 0
    assert _gone(again)


@pytest.mark.slow
def test_a_crash_looping_sibling_becomes_degraded(nats_server: Any, up: Any, tmp_path: Path) -> None:
    f = _crew_file(tmp_path, nats_server.url, "u2", {"ghost": 1}, backoff=0.05, max_restarts=2)
    crew = up(f)  # `ghost` is not installed: every worker exits at once
    wait_for(lambda: crew.state()["siblings"] and crew.sibling("ghost")["degraded"], 60, what="degraded")
    ghost = crew.sibling("ghost")
    assert ghost["restarts"] == 3 and ghost["replicas"] == []
    assert "no sibling to serve" in ghost["last_error"]
    from shipmates_nats._status import collect

    assert [s["state"] for s in collect([], 0)["siblings"]] == ["degraded"]
    assert crew.proc.poll() is None  # the other siblings (none here) go on
    crew.proc.send_signal(signal.SIGHUP)  # a reload retries a degraded sibling
    wait_for(lambda: crew.sibling("ghost")["restarts"] > 3, 30, what="restarted after the reload")


@pytest.mark.slow
def test_a_stale_pidfile_is_taken_over(nats_server: Any, up: Any, tmp_path: Path) -> None:
    from shipmates_nats._supervisor import crew_dir, running_pid

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (crew_dir("u3") / "up.pid").write_text(f"{dead.pid}\n")
    f = _crew_file(tmp_path, nats_server.url, "u3", {"echo": 1})
    crew = up(f)
    wait_for(lambda: running_pid("u3") == crew.proc.pid, 30, what="the new supervisor holds the pidfile")
    wait_for(lambda: any(f"PID {dead.pid} is gone" in line for line in crew.err), 10)


@pytest.mark.slow
def test_sighup_scales_one_to_three_visible_in_status_json(nats_server: Any, up: Any, tmp_path: Path) -> None:
    f = _crew_file(tmp_path, nats_server.url, "u4", {"echo": 1})
    crew = up(f)
    wait_for(lambda: crew.serving("echo"), 30)
    f.write_text(crew_text(nats_server.url, "u4", {"echo": 3}))
    crew.proc.send_signal(signal.SIGHUP)

    def replicas_in_status() -> list[dict[str, Any]]:
        out = crew.cli("status", "--json", "--wait", "0.5")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        echo = next(s for s in doc["siblings"] if s["name"] == "echo")
        live = [r for r in echo["replicas"] if r["state"] in ("serving", "busy") and r.get("heard")]
        return live if len(live) == 3 and echo["wanted"] == 3 else []

    live = wait_for(replicas_in_status, 60, step=0.2, what="3 echo replicas in status --json")
    assert all(r["local"] and r["host"] for r in live)
    text = crew.cli("status", "--wait", "0.3").stdout
    assert "echo" in text and "3/3" in text


@pytest.mark.slow
def test_sighup_with_a_new_environment_replaces_workers_without_dropping_a_call(
    nats_server: Any, up: Any, tmp_path: Path, journal: Path
) -> None:
    f = _crew_file(tmp_path, nats_server.url, "u8", {"echo": 1})
    crew = up(f)
    old = wait_for(lambda: crew.serving("echo"), 30)[0]
    call, answer = _sleeping_call(_echo(nats_server.url, "u8"), journal)
    f.write_text(crew_text(nats_server.url, "u8", {"echo": 1}) + 'env = { ECHO_FLAVOUR = "new" }\n')
    crew.proc.send_signal(signal.SIGHUP)
    new = wait_for(lambda: [p for p in crew.serving("echo") if p != old], 30, what="a new worker")[0]
    call.join(15)
    assert answer == [f"echo {old}: sleep 2"]  # the old worker drained: its call finished
    wait_for(lambda: _gone(old), 30, what="the old worker gone")
    assert "ECHO_FLAVOUR=new" in Path(f"/proc/{new}/environ").read_bytes().decode(errors="replace")
    wait_for(lambda: [r["pid"] for r in crew.replicas("echo")] == [new], 10, what="only the new worker")


@pytest.mark.slow
def test_scale_down_drains_an_idle_worker_never_the_busy_one(
    nats_server: Any, up: Any, tmp_path: Path, journal: Path
) -> None:
    f = _crew_file(tmp_path, nats_server.url, "u5", {"echo": 2})
    crew = up(f)
    pids = wait_for(lambda: len(crew.serving("echo")) == 2 and crew.serving("echo"), 30)
    call, answer = _sleeping_call(_echo(nats_server.url, "u5"), journal)
    busy = int(noted(journal, "sleeping")[0].split()[1])
    wait_for(lambda: any(r["pid"] == busy and r["state"] == "busy" for r in crew.replicas("echo")), 10)
    scaled = crew.cli("scale", "echo", "1")
    assert scaled.returncode == 0, scaled.stderr
    idle = next(p for p in pids if p != busy)
    wait_for(lambda: _gone(idle), 30, what="the idle worker drained")
    call.join(10)
    assert answer and answer[0].startswith(f"echo {busy}:")
    wait_for(lambda: [r["pid"] for r in crew.replicas("echo")] == [busy], 10, what="only the busy worker")


@pytest.mark.slow
def test_detach_runs_in_the_background_within_max_active_until_down(
    nats_server: Any, up: Any, tmp_path: Path
) -> None:
    from shipmates_nats._supervisor import running_pid

    f = tmp_path / "u7.toml"
    f.write_text(
        crew_text(nats_server.url, "u7", {"echo": 3}).replace("[crew]\n", "[crew]\nmax_active = 2\n")
    )
    crew = up(f, "--detach")  # returns once the background supervisor holds the pidfile
    assert crew.proc.wait(60) == 0, crew.err
    pid = running_pid("u7")
    assert pid is not None and pid != crew.proc.pid
    wait_for(lambda: len(crew.serving("echo")) == 2, 30, what="two workers serving")
    assert len(crew.replicas("echo")) == 2 and crew.sibling("echo")["wanted"] == 3
    workers = crew.serving("echo")
    down = crew.cli("down", "--crew", "u7")
    assert down.returncode == 0, down.stderr
    assert running_pid("u7") is None
    wait_for(lambda: all(_gone(p) for p in [pid, *workers]), 10, what="supervisor and workers gone")


# -- budget ---------------------------------------------------------------------------------

SPENDER = """
def spender():
    from shipmates import Agent

    return Agent("spender", "Spends model tokens.", model="openai/gpt-4o-mini",
                 model_settings={"mock_response": "spent"})
"""


@pytest.fixture(scope="module")
def spend_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support import PackageSpec, write_dist_info

    site = tmp_path_factory.mktemp("spender-site")
    spec = PackageSpec("shipmates-spender", "shipmates_spender", "0.1.0", SPENDER,
                       {"shipmates.agents": {"spender": "shipmates_spender:spender"}})  # fmt: skip
    write_dist_info(spec, site)
    return site


@pytest.mark.slow
def test_a_spent_budget_pauses_new_work_until_the_crew_file_raises_it(
    nats_server: Any, up: Any, tmp_path: Path, spend_site: Path
) -> None:
    from shipmates_nats import RemoteCallError, get_crew

    f = tmp_path / "u6.toml"
    budget = "[crew]\nbudget_tokens = {}\n"
    body = crew_text(nats_server.url, "u6", {"spender": 1}).replace("[crew]\n", "")
    f.write_text(budget.format(25) + body)  # litellm's mock answer: ~10 tokens a call
    crew = up(f, path=(spend_site,))
    wait_for(lambda: crew.serving("spender"), 60)
    remote = get_crew(settings(nats_server.url, "u6"))
    wait_for(lambda: "spender" in remote.scan(), 20)
    spender = remote.proxies["spender"]
    assert spender.invoke("spend") == "spent"
    each = wait_for(lambda: crew.state()["budget"]["spent_tokens"], 10)  # 10 or so tokens a call
    assert 25 / 3 <= each < 25 * 0.8
    assert spender.invoke("spend") == "spent"
    wait_for(lambda: crew.state()["budget"]["spent_tokens"] == 2 * each, 10)
    assert any(f"spent {2 * each / 25:.0%} of its budget" in e for e in crew.state()["events"])
    assert spender.invoke("spend") == "spent"  # over budget now: no new work from here on
    wait_for(lambda: crew.state()["budget"]["paused"], 10)

    def refused() -> str | None:
        try:
            spender.invoke("spend")
        except RemoteCallError as exc:
            return str(exc)
        return None

    message = wait_for(refused, 10, what="the worker pauses")
    assert "budget spent" in message and f"{3 * each} of 25 tokens" in message and "budget_tokens" in message
    f.write_text(budget.format(1000) + body)
    crew.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: crew.state()["budget"]["paused"] is None and crew.state()["budget"]["tokens"] == 1000, 10
    )
    assert wait_for(lambda: refused() is None, 10, what="work resumes")


# -- circuit breakers -------------------------------------------------------------------------


@pytest.mark.slow
def test_breaker_opens_after_failures_and_a_good_probe_closes_it(
    nats_server: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates_nats import RemoteCallError, _breaker
    from shipmates_nats._breaker import CircuitOpenError

    monkeypatch.setenv(_breaker.FAILURES_ENV, "2")
    monkeypatch.setenv(_breaker.COOLDOWN_ENV, "0.5")
    _breaker.reset()
    serve(nats_server.url, "--namespace", "b1", agents="echo")
    echo = _echo(nats_server.url, "b1")
    for _ in range(2):
        with pytest.raises(RemoteCallError, match="exploded"):
            echo.invoke("boom")
    with pytest.raises(CircuitOpenError, match="circuit open for remote sibling 'echo'"):
        echo.invoke("hello")  # fails fast: never reaches the replica
    key = "b1/echo/shipmates-natscrew"
    assert _breaker.states()[key]["state"] == "open"
    from shipmates.plugin import state_dir

    saved = json.loads((state_dir() / "nats-breakers.json").read_text())
    assert saved[key]["state"] == "open"
    echo.update(echo.card, echo.instances, echo.hosts)
    assert "circuit open (2 failures)" in (echo.provenance.location or "")

    def probe(query: str) -> str | None:
        try:
            return str(echo.invoke(query))
        except CircuitOpenError:
            return None

    with pytest.raises(RemoteCallError, match="exploded"):  # a failed probe opens it again
        wait_for(lambda: probe("boom"), 10)
    assert _breaker.states()[key]["state"] == "open"
    assert wait_for(lambda: probe("hello"), 10).endswith(": hello")
    assert _breaker.states()[key]["state"] == "closed"
    _breaker.reset()


class AskEcho:
    """A captain's model that passes the prompt to ``echo``, then answers with what came back."""

    model_id = "ask-echo"

    async def complete(self, messages: list[dict[str, Any]], tools: Any, settings: Any = None) -> Any:
        from shipmates import ModelResponse, ToolCall

        results = [str(m["content"]) for m in messages if m["role"] == "tool"]
        if results:
            return ModelResponse(content=results[-1])
        arguments = json.dumps({"query": messages[-1]["content"]})
        return ModelResponse(tool_calls=[ToolCall(id="c1", name="echo", arguments=arguments)])


@pytest.mark.slow
def test_a_captains_streamed_run_opens_the_breaker_then_fails_fast(
    nats_server: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A captain's run calls a remote sibling through ``astream``: its failures count, and once the
    breaker is open the run's call (and a durable delegation) fails at once, naming the sibling."""
    import asyncio
    import time

    from shipmates import Agent
    from shipmates_nats import _breaker
    from shipmates_nats._breaker import CircuitOpenError

    monkeypatch.setenv(_breaker.FAILURES_ENV, "2")
    monkeypatch.setenv(_breaker.COOLDOWN_ENV, "60")
    _breaker.reset()
    serve(nats_server.url, "--namespace", "b2", agents="echo")
    echo = _echo(nats_server.url, "b2")
    assert echo.streams  # the run takes the streamed path
    captain = Agent("captain", "test captain", model=AskEcho())
    captain.absorb(echo)

    def sibling_call(query: str) -> Any:
        result = asyncio.run(captain.arun(query))
        return next(e for e in result.events if e.tool == "echo")

    for _ in range(2):
        call = sibling_call("boom")
        assert call.status == "error" and "echo exploded" in (call.error or ""), call
    key = "b2/echo/shipmates-natscrew"
    assert _breaker.states()[key]["state"] == "open"

    started = time.monotonic()
    call = sibling_call("hello")
    assert call.status == "error", call
    assert "circuit open for remote sibling 'echo' (shipmates-natscrew 1.2.3)" in (call.error or "")
    assert "2 consecutive failed calls" in (call.error or "") and "shipmates status" in (call.error or "")
    assert time.monotonic() - started < 1.0
    with pytest.raises(CircuitOpenError, match="circuit open for remote sibling 'echo'"):
        echo.delegate("hello")  # the durable path fails fast too
    _breaker.reset()


def test_a_reload_keeps_the_connection_and_reads_credentials_once(tmp_path: Path) -> None:
    # The supervisor's own connection (heartbeats, budget control) is on the running server and
    # namespace: a reload that moved only the workers would have them killed as silent, one by
    # one. And its state, written several times a second, must not depend on the token file.
    from shipmates_nats._crewfile import load_crew
    from shipmates_nats._supervisor import Supervisor

    token = tmp_path / "nats.token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    text = crew_text("nats://127.0.0.1:4222", "keep", {"fib": 1})
    text += f'\n[crew.credentials]\ntoken_file = "{token}"\n'
    path = tmp_path / "keep.toml"
    path.write_text(text)
    sup = Supervisor(load_crew(path))
    assert sup.settings().namespace == "keep"
    token.unlink()  # rotated away: the running crew keeps its settings
    assert sup.snapshot()["crew"] == "keep"
    path.write_text(
        text.replace('namespace = "keep"', 'namespace = "moved"').replace("replicas = 1", "replicas = 2")
    )
    sup.apply_reload()
    assert sup.crew.namespace == "keep" and sup.settings().namespace == "keep"
    assert sup.wanted("fib") == 2  # the rest of the file applies
    assert any("kept the running NATS server, namespace and credentials" in e for e in sup.events)
