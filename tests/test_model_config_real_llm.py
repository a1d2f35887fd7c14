"""Opt-in: ``--api-base`` and ``-o temperature=0`` reach a sibling on a real local model
(``../shared/llm/start``).

Runs only when the server started by ``eval "$(../shared/llm/start)"`` is up: it exports
``SHIPMATES_TEST_LLM_PID`` and ``OPENAI_API_BASE``; without them (the default suite, CI) it skips.
The test never starts or stops the server.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

import pytest
from shipmates._cli._main import main

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

# Read at import: the test isolation removes every SHIPMATES_* variable before each test.
_PID = os.environ.get("SHIPMATES_TEST_LLM_PID")
_BASE = os.environ.get("OPENAI_API_BASE", "")

DOUBLER = """
from shipmates import Agent, tool


@tool
def double(n: int) -> int:
    \"\"\"Double the integer n.\"\"\"
    return 2 * n


def build_agent():
    return Agent("doubler", "Doubles a number: give it the number.", tools=[double])
"""


def _server() -> str:
    if not _PID or not _BASE:
        pytest.skip('no local test model: run eval "$(../shared/llm/start)" first (opt-in)')
    url = urlparse(_BASE)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f"the local test model at {_BASE} does not answer")
    return _BASE


def test_api_base_and_options_reach_a_sibling_on_a_real_model(
    fake_site: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _server()
    for key in ("OPENAI_API_BASE", "OPENAI_API_KEY"):  # only the flags say where the model is
        monkeypatch.delenv(key, raising=False)
    fake_site.sibling("doubler", code=DOUBLER)
    status = main(
        [
            "chat", "--model", "openai/qwen-1.5b", "--api-base", base, "-o", "temperature=0",
            "-o", "max_tokens=200", "--model-timeout", "120", "--only", "doubler",
            "--once", "Ask the doubler to double 21.",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "[doubler] double(n=21) -> 42" in err  # the sibling ran on the same model and server
    assert "42" in out
