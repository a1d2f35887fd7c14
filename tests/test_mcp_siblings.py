"""MCP servers as siblings: declared in the user config or by a package, started on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import PackageSpec, wait_for

TIDES = '''
import os, pathlib, sys
from mcp.server.mcpserver import MCPServer

pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
server = MCPServer("tides")


@server.tool()
def high_tide(port: str) -> str:
    """The time of the next high tide at a port."""
    return f"next high tide at {port.split()[-1].strip('?')}: 06:12"


server.run()
'''


@pytest.fixture
def tides(tmp_path: Path) -> tuple[Path, Path]:
    """An MCP server written with the MCP SDK (stdio), and the file it writes when it starts."""
    script = tmp_path / "tides_server.py"
    script.write_text(TIDES)
    return script, tmp_path / "tides-started"


def write_config(text: str) -> Path:
    path = Path(os.environ["SHIPMATES_HOME"]) / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def declare(tides: tuple[Path, Path], *, direct: bool = False) -> Path:
    script, started = tides
    return write_config(
        f"""
        [mcp_servers.tides]
        command = {json.dumps(sys.executable)}
        args = [{json.dumps(str(script))}, {json.dumps(str(started))}]
        description = "Tide tables: the next high tide at a port."
        direct = {"true" if direct else "false"}

        [mcp_servers.sunk]
        command = {json.dumps(sys.executable)}
        args = ["-c", "raise SystemExit(3)"]
        description = "Sunk: a server that exits at once."
        """
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipmates", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_listing_declares_without_starting(tides: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    config = declare(tides)
    monkeypatch.setenv("SHIPMATES_AGENTS", "fib,tides,sunk")
    rows = json.loads(cli("agents", "--json").stdout)
    listed = {row["name"]: row for row in rows if row["status"] != "excluded"}
    assert sorted(listed) == ["fib", "sunk", "tides"]
    assert listed["tides"]["status"] == "ok"
    assert listed["tides"]["origin"] == "mcp"
    assert str(config) in listed["tides"]["location"]
    assert not tides[1].exists()  # listing started no server


def test_captain_uses_a_stdio_mcp_server(tides: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    declare(tides)
    monkeypatch.setenv("SHIPMATES_AGENTS", "fib,tides,sunk")
    from shipmates._crew._assemble import assemble

    crew = assemble()
    assert {"fib", "tides", "sunk"} <= set(crew.captain.siblings)
    assert not tides[1].exists()  # loading started no server either: first use does

    assert "06:12" in crew.captain.invoke("when is the next high tide at Brest?")
    assert tides[1].exists()

    # The broken server is reported with its name; the rest of the crew answers.
    broken = crew.captain.invoke("ask sunk about anything")
    assert "MCP server 'sunk'" in broken and "did not start or answer" in broken
    from shipmates._cli._chat_session import ChatSession

    roster = {r.name: r.status for r in ChatSession(crew, memory=0).records()}
    assert roster["sunk"] == "unavailable" and roster["tides"] == "ok"  # as /agents shows it
    assert "55" in crew.captain.invoke("what is fib 10?")
    assert "06:12" in crew.captain.invoke("high tide at Roscoff")


def test_direct_tools_go_to_the_captain(tides: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    declare(tides, direct=True)
    monkeypatch.setenv("SHIPMATES_AGENTS", "tides")
    from shipmates._crew._assemble import assemble

    crew = assemble()
    assert crew.captain.get_tool("tides__high_tide") is not None
    assert crew.captain.get_tool("tides") is None
    assert "06:12" in crew.captain.invoke("next high tide at Brest")


def test_a_package_declares_a_server(tides: tuple[Path, Path], fake_site: Any) -> None:
    script, started = tides
    fake_site.add(
        PackageSpec(
            "tides-mcp",
            "tides_mcp",
            "2.0.0",
            f"SERVER = {{'command': {sys.executable!r}, 'args': [{str(script)!r}, {str(started)!r}]}}\n",
            {"shipmates.mcp_servers": {"tides": "tides_mcp:SERVER"}},
        )
    )
    discovery = fake_site.discover(only=["tides"])
    record = discovery.agents["tides"]
    assert (record.provenance.distribution, record.provenance.version) == ("tides-mcp", "2.0.0")
    assert "06:12" in record.sibling.invoke("high tide at Brest")


def test_a_bad_declaration_names_the_table() -> None:
    write_config('[mcp_servers.tides]\nargs = ["x"]\n')
    proc = cli("agents", "--json")
    assert "[mcp_servers.tides]" in proc.stderr + proc.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_server_process_stops_with_the_captain(
    tides: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(tides)
    monkeypatch.setenv("SHIPMATES_AGENTS", "tides")
    proc = cli("chat", "--once", "next high tide at Brest")
    assert "06:12" in proc.stdout, proc.stderr
    pid = int(tides[1].read_text())
    wait_for(lambda: not _alive(pid), 10, what=f"the MCP server process {pid} to stop")
