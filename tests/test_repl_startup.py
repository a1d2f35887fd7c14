"""The REPL's prompt does not wait for litellm: its import starts once the prompt is on the screen.

A test plugin holds ``import litellm`` at a gate (a ``sys.meta_path`` finder) until the test
creates a release file, so "the import is still running" is a state the test controls, not a
race against the clock. The plugin's ``/litellm`` command reports that state from inside the
REPL process. No network and no API key: the first turn must fail with a clear ``error: ...``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shipmates import Agent, ModelResponse
from support import plugin_spec, write_dist_info
from support.pty import PROMPT, ask, finish, repl_spawner

STARTED = "[gate: litellm import started]"

GATE_CODE = """
import os
import sys
import threading
import time

from shipmates import hookimpl

RELEASE = os.environ["GATE_RELEASE_FILE"]
held = threading.Event()  # set once some thread is waiting at the gate


class HeldLoader:
    # Runs litellm's module code only once the release file exists.

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        held.set()
        while not os.path.exists(RELEASE):
            time.sleep(0.01)
        self.loader.exec_module(module)

    def __getattr__(self, name):  # resource readers and the like
        return getattr(self.loader, name)


class Gate:
    # A meta path finder that holds `import litellm` until the release file exists. The wait
    # is in the loader, not here: finders run under the global import lock, loaders only under
    # the module's own lock, so every other import goes on meanwhile.

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "litellm":
            return None
        os.write(2, b"[gate: litellm import started]\\r\\n")
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                spec.loader = HeldLoader(spec.loader)
                return spec
        return None


sys.meta_path.insert(0, Gate())


def state(repl, argument):
    module = sys.modules.get("litellm")
    imported = "yes" if module is not None and hasattr(module, "acompletion") else "no"
    threads = [t for t in threading.enumerate() if t.name == "shipmates-litellm-preload"]
    running = "running" if threads and threads[0].is_alive() else "not running"
    return f"litellm imported: {imported}; import thread: {running}; held at the gate: {held.is_set()}"


@hookimpl
def register_commands(register):
    register("litellm", state, "where litellm's import is (test plugin)")
"""

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
    pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm is not installed"),
]


@pytest.fixture
def gated(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Environment for a REPL on a litellm model, with the gate plugin; and the release file."""
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(plugin_spec("gate", GATE_CODE), site)
    release = tmp_path / "release-litellm"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPMATES_", "PYTHON", "OPENAI", "LITELLM")) and "API_KEY" not in k
    }
    env.update(
        PYTHONPATH=str(site),
        SHIPMATES_HOME=str(tmp_path / "home"),
        SHIPMATES_AGENTS="",  # no siblings: the captain alone
        SHIPMATES_PLUGINS="gate",
        GATE_RELEASE_FILE=str(release),
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect's terminal does not answer cursor-position requests
        TERM="xterm",
    )
    return env, release


@pytest.fixture
def spawn(gated: tuple[dict[str, str], Path]) -> Iterator[Any]:
    with repl_spawner(gated[0], base_args=("--model", "openai/gpt-4o-mini"), timeout=60) as start:
        yield start


def test_prompt_and_commands_before_litellm_then_a_clear_error_without_a_key(
    spawn: Any, gated: tuple[dict[str, str], Path]
) -> None:
    release = gated[1]
    child = spawn()
    # The banner and the prompt are drawn first; only then does the import start.
    assert child.expect_exact([STARTED, PROMPT]) == 1, "litellm's import started before the prompt"
    assert "model: openai/gpt-4o-mini" in child.before
    child.expect_exact(STARTED)
    ask(child, "/help", "this list", "/litellm  where litellm")
    # The import started after the prompt was drawn and is still held: the REPL answers anyway.
    ask(child, "/litellm", "litellm imported: no; import thread: running; held at the gate: True")

    child.sendline("hello")
    child.expect_exact("captain is working (loading litellm)")  # the first turn waits, visibly
    release.touch()
    child.expect_exact("error: no API key for openai: set OPENAI_API_KEY or --api-key-env VAR")
    child.expect_exact(PROMPT)
    ask(child, "/litellm", "litellm imported: yes; import thread: not running")
    ask(child, "/help", "this list")  # the REPL goes on after the failed turn
    child.sendline("/exit")
    child.expect_exact("Goodbye.")
    assert finish(child) == 0
    assert "Traceback" not in (child.before or "")


def test_ctrl_c_while_the_first_turn_waits_for_litellm_and_exit_during_the_import(spawn: Any) -> None:
    child = spawn()
    child.expect_exact(PROMPT)
    child.sendline("hello")
    child.expect_exact("captain is working (loading litellm)")
    child.sendintr()
    child.expect_exact("cancelled (the conversation before this turn is kept)")
    child.expect_exact(PROMPT)
    ask(child, "/litellm", "litellm imported: no; import thread: running")
    child.sendcontrol("d")  # leave while the import thread is still held at the gate
    child.expect_exact("Goodbye.")
    assert finish(child) == 0


# -- in process: the first turn waits for the import thread, the loop stays free ------------


def test_a_piped_turn_on_a_litellm_model_waits_for_the_background_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipmates import AbsorbReport, Discovery
    from shipmates._cli._repl import Repl
    from shipmates._crew._assemble import Crew
    from shipmates._models import _litellm

    release = threading.Event()
    released_by: list[str] = []
    importer = threading.Thread(target=release.wait, name="fake-litellm-import", daemon=True)

    def preload() -> threading.Thread:
        if not importer.is_alive() and not release.is_set():
            importer.start()
        return importer

    async def complete(self: Any, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        return ModelResponse(content=f"answered after the import: {not importer.is_alive()}")

    async def releaser() -> None:
        # Runs on the REPL's loop while the turn waits: the wait must leave the loop free.
        while not importer.is_alive():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        released_by.append("loop")
        release.set()

    def fallback() -> None:  # so a blocked loop fails the test instead of hanging it
        if not release.wait(30):
            released_by.append("fallback")
            release.set()

    monkeypatch.setattr(_litellm, "preload", preload)
    monkeypatch.setattr(_litellm.LiteLLMModel, "complete", complete)
    captain = Agent("captain", "test captain", model="openai/gpt-4o-mini")
    out, err = io.StringIO(), io.StringIO()
    crew = Crew(captain, Discovery([]), AbsorbReport(absorbed=[]), general=True)
    repl = Repl(crew, stdin=io.StringIO("/help\nhi\n"), stdout=out, stderr=err, interactive=False)
    assert not importer.is_alive()  # building the REPL does not start the import

    async def run() -> int:
        task = asyncio.get_running_loop().create_task(releaser())
        try:
            return await repl.main()
        finally:
            task.cancel()

    threading.Thread(target=fallback, daemon=True).start()
    assert asyncio.run(run()) == 0
    assert released_by == ["loop"]
    assert "answered after the import: True" in out.getvalue()
    assert "error" not in err.getvalue()


def test_the_import_is_not_started_for_registered_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipmates._models import _litellm
    from shipmates._startup import start_litellm_import

    monkeypatch.setattr(_litellm, "preload", lambda: pytest.fail("litellm preloaded for a registered model"))
    assert start_litellm_import("offline") is None
    assert start_litellm_import(None) is None  # the default: offline
