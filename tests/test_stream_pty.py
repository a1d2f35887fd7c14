"""In a terminal, the REPL writes the captain's answer as the model generates it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import plugin_spec, write_dist_info
from support.pty import PROMPT, finish, repl_spawner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
]

# A streaming model whose answer stops halfway until the file named in the prompt exists: the
# test creates it only once the first half is on screen.
DRIP_CODE = """
import asyncio
import os

from shipmates import ModelResponse, hookimpl


class Drip:
    model_id = "drip"

    async def complete(self, messages, tools):
        raise AssertionError("the REPL streams")

    async def stream(self, messages, tools):
        gate = messages[-1]["content"].split()[-1]
        first, last = ["The ", "first ", "words ", "arrive; "], ["the ", "last ", "words ", "follow."]
        for word in first:
            yield word
        while not os.path.exists(gate):
            await asyncio.sleep(0.01)
        for word in last:
            yield word
        yield ModelResponse(content="".join(first + last), usage={"prompt_tokens": 5, "completion_tokens": 8})


@hookimpl
def register_models(register):
    register(Drip())
"""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(plugin_spec("drip", DRIP_CODE), site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPMATES_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(site),
        SHIPMATES_HOME=str(tmp_path / "home"),
        SHIPMATES_AGENTS="",
        SHIPMATES_PLUGINS="drip",
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
    )
    with repl_spawner(env, base_args=["--model", "drip", "--usage"]) as start:
        yield start


def test_the_first_words_are_on_screen_before_the_last_are_generated(spawn: object, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    child = spawn()  # type: ignore[operator]
    child.expect_exact(PROMPT)
    child.sendline(f"go {gate}")
    child.expect_exact("The first words arrive;")
    assert not gate.exists()  # the model is still waiting: the rest is not generated yet
    gate.touch()
    child.expect_exact("the last words follow.")
    child.expect_exact("usage: 13 tokens (5 in; 8 out), 1 model call, cost unknown")
    assert "The first" not in child.before  # written once, as it came: not again at the end
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
