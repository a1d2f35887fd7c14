"""``shipmates mcp serve`` through the MCP SDK's own client, over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from support import until, wait_for

Body = Callable[[Client], Awaitable[None]]

SLOW = """
import asyncio, pathlib

class Slow:
    name = "slow"
    description = "Takes its time."

    async def ainvoke(self, query):
        marks = pathlib.Path(query)
        (marks / "started").write_text("")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            (marks / "cancelled").write_text("")
            raise
        return "done"

    def invoke(self, query):
        raise RuntimeError("sync path not expected")

def build_agent():
    return Slow()
"""

BROKEN = "raise ImportError('the broken sibling cannot import')\n"


@pytest.fixture
def served_env(fake_site: Any) -> dict[str, str]:
    """The environment of a ``shipmates mcp serve`` child: the dev venv's fib plus fake siblings."""
    fake_site.sibling("slow", code=SLOW)
    fake_site.sibling("broken", code=BROKEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_AGENTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_site.path), env.get("PYTHONPATH", "")])
    env["SHIPMATES_AGENTS"] = "fib,slow,broken"
    return env


def stdio(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "shipmates", "mcp", "serve", *args], env=env
    )


def run(server: Any, body: Body) -> None:
    async def main() -> None:
        async with Client(server, read_timeout_seconds=60) as client:
            await body(client)

    asyncio.run(main())


async def check_crew(client: Client, marks: Path) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(listed) == ["fib", "slow"]  # broken is left out, the server still runs
    assert listed["fib"].description.startswith("Computes Fibonacci numbers")
    assert listed["fib"].input_schema["required"] == ["query"]

    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    result = await client.call_tool("fib", {"query": "what is fib 10?"}, progress_callback=on_progress)
    assert not result.is_error
    assert "55" in result.content[0].text
    assert any(m and "calling fibonacci" in m for m in progress), progress

    failed = await client.call_tool("fib", {"n": 3, "m": 4})
    assert failed.is_error
    assert "'query'" in failed.content[0].text

    # A cancelled call cancels the delegation in the server.
    call = asyncio.ensure_future(client.call_tool("slow", {"query": str(marks)}))
    await until(lambda: (marks / "started").exists(), timeout=30, what="the slow sibling to start")
    call.cancel()
    await until(lambda: (marks / "cancelled").exists(), timeout=30, what="the delegation to be cancelled")
    # The server still answers after the cancellation.
    assert "55" in (await client.call_tool("fib", {"query": "fib 10"})).content[0].text


def test_stdio_serves_the_crew(served_env: dict[str, str], tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as errlog:
        server = stdio(served_env)

        async def main() -> None:
            from mcp.client.stdio import stdio_client

            async with stdio_client(server, errlog=errlog) as (read, write):
                from mcp import ClientSession

                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await check_crew(session, tmp_path)  # type: ignore[arg-type]

        asyncio.run(main())
    assert "left out broken" in errors.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(served_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    errors = tmp_path / "http-stderr.txt"
    with errors.open("w") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipmates", "mcp", "serve", "--http", f"127.0.0.1:{port}"],
            env=served_env,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
        )
        try:
            wait_for(lambda: "serving streamable HTTP" in errors.read_text() or proc.poll() is not None, 60)
            assert proc.poll() is None, errors.read_text()
            yield f"http://127.0.0.1:{port}/mcp", errors
        finally:
            proc.terminate()
            proc.wait(30)


def test_streamable_http_serves_the_crew(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, errors = http_server
    marks = tmp_path / "marks"
    marks.mkdir()

    async def body(client: Client) -> None:
        await check_crew(client, marks)

    run(url, body)
    assert "left out broken" in errors.read_text()


def test_captain_alone_is_one_tool(served_env: dict[str, str]) -> None:
    async def body(client: Client) -> None:
        listed = (await client.list_tools()).tools
        assert [t.name for t in listed] == ["captain"]
        result = await client.call_tool("captain", {"query": "what is fib 12?"})
        assert not result.is_error
        assert "144" in result.content[0].text

    run(stdio(served_env, "--captain", "--only", "fib"), body)


NOISY = """
print("noise on stdout at import")


class Noisy:
    name = "noisy"
    description = "Prints on stdout, which must not reach the protocol channel."

    def invoke(self, query):
        print("noise on stdout while answering")
        return "quiet answer"


def build_agent():
    return Noisy()
"""


def test_an_installed_wheel_is_served_over_stdio(
    wheel_builder: Any, make_sibling_package: Any, throwaway_venv: Any
) -> None:
    from support import sibling_spec

    noisy = wheel_builder.build(make_sibling_package(sibling_spec("noisy", code=NOISY)))
    venv = throwaway_venv(*wheel_builder.demo("fib"), *noisy)
    garbage: list[Exception] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            garbage.append(message)

    async def main() -> None:
        server = StdioServerParameters(
            command=str(venv.bin / "shipmates"), args=["mcp", "serve"], env=venv.env()
        )
        async with Client(server, read_timeout_seconds=60, message_handler=on_message) as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == ["fib", "noisy"]
            assert "6765" in (await client.call_tool("fib", {"query": "fib 20"})).content[0].text
            assert (await client.call_tool("noisy", {"query": "hi"})).content[0].text == "quiet answer"

    asyncio.run(main())
    assert garbage == []  # nothing but the protocol was written on stdout


def test_mcp_serve_takes_the_model_settings_chat_takes(capsys: pytest.CaptureFixture[str]) -> None:
    # A crew served to Claude Desktop runs on a local model as a chat would: same flags, same checks.
    from support.cli import run_cli

    status, _, err = run_cli(capsys, "mcp", "serve", "--model", "openai/x", "--model-timeout", "-3")
    assert status == 2
    assert "--model-timeout=-3.0 is not valid" in err
    status, out, _ = run_cli(capsys, "mcp", "serve", "--help")
    assert status == 0
    for flag in ("--api-base URL", "--api-key-env VAR", "-o KEY=VALUE", "--model-timeout SECONDS"):
        assert flag in out
