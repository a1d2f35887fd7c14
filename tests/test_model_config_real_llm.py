"""Opt-in: ``--api-base`` and ``-o temperature=0`` reach a sibling on a real local model
(``../shared/llm/start``).

Runs only when the server started by ``eval "$(../shared/llm/start)"`` is up: it exports
``SHIPMATES_TEST_LLM_PID`` and ``OPENAI_API_BASE``; without them (the default suite, CI) it skips.
The test never starts or stops the server.
"""

from __future__ import annotations

from typing import Any

import pytest
from shipmates._cli._main import main
from support.real_llm import real_llm_base

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


DOUBLER = """
from shipmates import Agent, tool


@tool
def double(n: int) -> int:
    \"\"\"Double the integer n.\"\"\"
    return 2 * n


def build_agent():
    return Agent("doubler", "Doubles a number: give it the number.", tools=[double])
"""


def test_api_base_and_options_reach_a_sibling_on_a_real_model(
    fake_site: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = real_llm_base()
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


def test_triage_keeps_a_real_small_model_from_a_sibling_that_does_not_fit(
    fake_site: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without triage, this 1.5B model made up a number for a factor-like sibling when asked to
    translate; with it, it names no member and answers itself."""
    base = real_llm_base()
    fake_site.sibling("doubler", code=DOUBLER)
    status = main(
        [
            "chat", "--model", "openai/qwen-1.5b", "--api-base", base, "-o", "temperature=0",
            "-o", "max_tokens=200", "--model-timeout", "120", "--only", "doubler", "--triage",
            "--once", "Translate 'good morning' into German.",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "[captain] doubler" not in err and out.strip()
