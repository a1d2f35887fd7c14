"""Importing shipmates stays cheap: no litellm, no prompt_toolkit (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("litellm", "prompt_toolkit", "openai")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    env = {**os.environ, "SHIPMATES_PLUGINS": "", "SHIPMATES_AGENTS": ""}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import shipmates",
        "import shipmates; shipmates.Agent",
        "import shipmates; shipmates.tool; shipmates.Session; shipmates.absorb_crew; shipmates.get_model",
        # Running on the offline default must not pull litellm in either.
        "import shipmates\nfrom shipmates import Agent, tool\n"
        "@tool\ndef double(n: int) -> int:\n    'Double n.'\n    return 2 * n\n"
        "assert Agent('a', tools=[double]).invoke('double 4') == '8'",
    ],
    ids=["import", "agent", "public-names", "offline-run"],
)
def test_import_does_not_load_heavy_dependencies(code: str) -> None:
    assert _loaded_after(code) == dict.fromkeys(HEAVY, False)


def test_agent_without_function_tools_does_not_need_pydantic() -> None:
    probe = "import sys, shipmates\nshipmates.Agent('a')\nprint('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_litellm_model_name_resolves_without_import() -> None:
    code = "import shipmates\nm = shipmates.get_model('openai/gpt-4o-mini')\nassert m.model_id"
    assert _loaded_after(code)["litellm"] is False


def test_a_crew_is_absorbed_before_the_run_loop_loads() -> None:
    # The REPL shows its prompt once the crew is absorbed; the run loop, the event stream and
    # the small-model checks load with the first turn, so the prompt does not wait for them.
    probe = (
        "import sys\nfrom shipmates import Agent\n"
        "class Plain:\n    name, description = 'plain', 'Echoes.'\n"
        "    def invoke(self, query):\n        return query\n"
        "captain = Agent('captain')\ncaptain.absorb(Agent('fib', description='Fibonacci.'))\n"
        "captain.absorb(Plain())\nassert len(captain.tool_schemas()) == 2\n"
        "print(sorted(m for m in ('shipmates._run._run_loop', 'shipmates._run._stream', "
        "'shipmates._run._stream_events', 'shipmates._run._slips') if m in sys.modules))\n"
        "print(captain.invoke('hi'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, *answer = out.stdout.strip().splitlines()
    assert loaded == "[]"
    assert answer  # and the first run loads them


def test_no_config_file_costs_no_pathlib_or_toml(tmp_path: Path) -> None:
    # Every chat and serve reads the config file; without one that is a stat, nothing more.
    probe = (
        "import sys\nfrom shipmates._config import read_config\n"
        "from shipmates._mcp._discover import _config_servers\n"
        "assert read_config().models == {} and _config_servers() == {}\n"
        "print(sorted(m for m in ('pathlib', 'tomllib', 'shipmates._mcp._servers') if m in sys.modules))"
    )
    env = {**os.environ, "SHIPMATES_HOME": str(tmp_path), "SHIPMATES_PLUGINS": "", "SHIPMATES_AGENTS": ""}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
