"""Fixtures for the NATS tests: real nats-server processes from the wheel, real `shipmates serve`.

Test siblings live in a generated distribution (``shipmates-natscrew``) written into a temp
site directory with the discovery engineer's kit (tests/support); serve subprocesses get it on
PYTHONPATH with ``SHIPMATES_AGENTS`` naming only them, so the developer's installs never matter.
The isolation of every test (tests/support/isolation.py) applies here too; on top of it the
plugin is enabled and its process state forgotten around each test.

The siblings note what they do in a journal file (``NATSCREW_JOURNAL``, one per test: the
``journal`` fixture) so a test can wait until a call has reached a served sibling instead of
sleeping and hoping it has.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PackageSpec, write_dist_info

CREW_CODE = '''
"""Test siblings served over NATS."""
import asyncio, os, time
from pydantic import BaseModel, Field

JOURNAL = os.environ.get("NATSCREW_JOURNAL")


def _note(line):
    if JOURNAL:
        with open(JOURNAL, "a") as f:
            f.write(line + "\\n")


class Echo:
    name = "echo"
    description = "Echo test sibling: repeats what it is asked, with the serving process id."
    timeout = 5

    async def ainvoke(self, query):
        from shipmates.plugin import delegation_path
        from shipmates_nats._invoke import current_traceparent
        if query.startswith("sleep "):
            _note(f"sleeping {os.getpid()} {query}")
            await asyncio.sleep(float(query.split()[1]))
        if query == "trace":
            return str(current_traceparent.get())
        if query == "stack":
            return ",".join(delegation_path())
        if query.endswith("budget"):
            from shipmates.plugin import current_budget
            return str(current_budget())
        if query.startswith("big "):
            return "x" * int(query.split()[1])
        if query == "boom":
            raise RuntimeError("echo exploded")
        return f"echo {os.getpid()}: {query}"


class Square(BaseModel):
    n: int = Field(description="the number to square")
    note: str = "none"


class Typed:
    name = "square"
    description = "Squares an integer n."
    input_model = Square

    def invoke(self, arg):
        assert isinstance(arg, Square), type(arg)
        return f"{arg.n * arg.n} ({arg.note})"


class Jobber:
    name = "jobber"
    description = "A long job, delegated durably."
    durable = True
    timeout = 30

    async def ainvoke(self, query):
        _note(f"start {os.getpid()} {query}")
        await asyncio.sleep(float(os.environ.get("NATSCREW_JOB_SECONDS", "0.3")))
        _note(f"done {os.getpid()} {query}")
        return f"job {query} by {os.getpid()}"


def echo():
    return Echo()


def calc():
    from shipmates import Agent, tool

    @tool
    def double(n: int) -> int:
        """Double the integer n."""
        return 2 * n

    return Agent("calc", "A calculator agent that can double a number.", model="offline", tools=[double])


def square():
    return Typed()


def relay():
    from shipmates import Agent

    return Agent("relay", "Relays a question to the echo sibling.", model="offline", tools=[Echo()])


def jobber():
    return Jobber()
'''


@pytest.fixture(scope="session")
def crew_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("natscrew-site")
    spec = PackageSpec(
        "shipmates-natscrew",
        "shipmates_natscrew",
        "1.2.3",
        CREW_CODE,
        {
            "shipmates.agents": {
                n: f"shipmates_natscrew:{n}" for n in ("echo", "square", "jobber", "calc", "relay")
            }
        },
    )
    write_dist_info(spec, site)
    return site


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """The file the served test siblings note their steps in (``sleeping PID QUERY``, ``start PID KEY``,
    ``done PID KEY``); every `serve` of the test writes to it. It exists once the first note is made."""
    return tmp_path / "journal.txt"


@pytest.fixture(autouse=True)
def _nats_plugin(_isolate_shipmates: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here has the plugin enabled, on top of the shared isolation (which runs first)."""
    monkeypatch.setenv("SHIPMATES_PLUGINS", "nats")
    _reset()
    yield
    _reset()


def _reset() -> None:
    from shipmates.plugin import reset_plugins
    from shipmates_nats import _plugin, _remote, _versions

    _remote.reset_crews()
    _plugin._decided.clear()
    _plugin._ours.clear()
    _plugin._warned.clear()
    _plugin._retry.update(at=0.0, busy=False)
    _plugin.chat_url["url"] = None
    _versions.chat_require["ranges"] = None
    reset_plugins()


@pytest.fixture(scope="module")
def nats_server() -> Iterator[Any]:
    from shipmates_nats import NatsServer

    server = NatsServer().start()
    try:
        yield server
    finally:
        server.close()


class Served:
    """A `shipmates serve` subprocess; its stdout/stderr are collected."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self.ready = threading.Event()
        self._readers = [
            threading.Thread(target=self._read, args=(proc.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str], marks_ready: bool) -> None:
        for line in stream:
            into.append(line)
            if marks_ready and line.startswith("serving "):
                self.ready.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def read_to_end(self, timeout: float = 5) -> None:
        """Once the process has exited: wait until all its output is collected."""
        for reader in self._readers:
            reader.join(timeout)

    def stop(self, sig: int | None = None, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@pytest.fixture
def serve(crew_site: Path, tmp_path: Path, journal: Path) -> Iterator[Callable[..., Served]]:
    """``serve(url, *flags, agents="echo", env={...}, wait=True)`` -> a running `shipmates serve`.

    Its siblings note their steps in ``journal`` (``env`` may name another file)."""
    started: list[Served] = []

    def start(
        url: str,
        *flags: str,
        agents: str = "echo,square",
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Served:
        full = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
        full.update(
            {
                "PYTHONPATH": os.pathsep.join([str(crew_site), full.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep
                ),
                "SHIPMATES_HOME": str(tmp_path / "serve-home"),
                "SHIPMATES_PLUGINS": "nats",
                "SHIPMATES_AGENTS": agents,
                "PYTHONUNBUFFERED": "1",
                "NATSCREW_JOURNAL": str(journal),
            }
        )
        full.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipmates", "serve", "--nats", url, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full,
        )
        served = Served(proc)
        started.append(served)
        if wait:
            deadline = time.monotonic() + 30
            while not served.ready.wait(0.05):
                if proc.poll() is not None or time.monotonic() > deadline:
                    served.stop()
                    served.read_to_end()
                    raise AssertionError(f"serve did not start: {served.text()}")
        return served

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(5)
