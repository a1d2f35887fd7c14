"""The session's model as a CLI user configures it, through litellm's real code path against
loopback servers: --api-base, --api-key-env, -o, --model-timeout, the SHIPMATES_* variables and
the config file's aliases reach the captain and every sibling on the session default; /model
switches them all; a silent server ends the turn within the timeout; errors name the URL and the
setting to change first."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shipmates._settings import SettingsError, read_settings
from support.cli import run_cli as run
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

HELPER = (
    "from shipmates import Agent\n\ndef build_agent():\n    return Agent('helper', 'Helps with anything.')\n"
)


@pytest.fixture(autouse=True)
def _no_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI()
    yield s
    s.close()


@pytest.fixture
def helper(fake_site: Any) -> None:
    fake_site.sibling("helper", code=HELPER)


# -- settings ----------------------------------------------------------------------------------


def test_options_parse_as_json_else_strings_and_flags_win_over_the_environment() -> None:
    env = {"SHIPMATES_MODEL_OPTIONS": "temperature=0.5,max_tokens=200", "SHIPMATES_MODEL_TIMEOUT": "30"}
    s = read_settings(env, options=["temperature=0", 'stop=["x"]', "user=alice"], model_timeout=5)
    assert s.model_options == {"temperature": 0, "max_tokens": 200, "stop": ["x"], "user": "alice"}
    assert s.model_timeout == 5
    as_json = read_settings({"SHIPMATES_MODEL_OPTIONS": '{"temperature": 0, "seed": 1}'})
    assert as_json.model_options == {"temperature": 0, "seed": 1}
    both = read_settings({"SHIPMATES_API_BASE": "http://h/v1", "SHIPMATES_API_KEY_ENV": "MY_KEY"})
    assert (both.api_base, both.api_key_env) == ("http://h/v1", "MY_KEY")
    assert read_settings(
        both_env := {"SHIPMATES_API_BASE": "http://h/v1"}, api_base="http://x/v1"
    ).api_base == ("http://x/v1"), both_env


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"options": ["api_key=sk-123"]}, {}, "--api-key-env"),
        ({"options": ["temperature"]}, {}, "KEY=VALUE"),
        ({"api_key_env": "sk-abc123"}, {}, "NAME of the environment variable"),
        ({}, {"SHIPMATES_MODEL_TIMEOUT": "0"}, "SHIPMATES_MODEL_TIMEOUT"),
        ({}, {"SHIPMATES_MODEL_RETRIES": "-1"}, "SHIPMATES_MODEL_RETRIES"),
        ({}, {"SHIPMATES_MODEL_OPTIONS": "{not json"}, "SHIPMATES_MODEL_OPTIONS"),
        ({"model_timeout": -1.0}, {}, "--model-timeout"),
    ],
)
def test_bad_model_settings_are_refused_by_name(
    kwargs: dict[str, Any], env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named) as info:
        read_settings(env, **kwargs)
    assert "sk-" not in str(info.value)  # a key given by mistake is never echoed


# -- reaching the captain and every sibling ------------------------------------------------------


def test_api_base_and_options_reach_the_captain_and_its_siblings(
    server: FakeOpenAI, helper: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "chat", "--model", "openai/fake", "--api-base", server.url, "-o", "temperature=0",
        "-o", "max_tokens=50", "--only", "helper", "--once", "hi",
    )  # fmt: skip
    assert (status, out.strip()) == (0, "the helper said: helper here"), err
    assert server.who() == ["captain", "helper", "captain"]
    for body, _ in server.requests:
        assert (body["model"], body["temperature"], body["max_tokens"]) == ("fake", 0, 50)


def test_mcp_serve_captain_runs_on_the_session_model_with_its_settings(helper: None) -> None:
    # `shipmates mcp serve --captain` assembles the crew as chat does: a captain given the model
    # by name would get none of --api-base, -o or the timeout (litellm's own endpoint instead).
    from shipmates._mcp._serve import _captain
    from shipmates._models._session import use_session

    settings = read_settings(model="openai/fake", api_base="http://127.0.0.1:9/v1", only=["helper"])
    with use_session(settings):
        ((_, spec),) = _captain(settings)
    assert spec.sibling.model is None  # the session's model, reached through the session's settings


def test_the_api_key_comes_from_the_variable_named(
    server: FakeOpenAI, helper: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LOCAL_KEY", "secret-123")
    monkeypatch.setenv("SHIPMATES_API_BASE", server.url)
    monkeypatch.setenv("SHIPMATES_API_KEY_ENV", "MY_LOCAL_KEY")
    status, _, err = run(capsys, "chat", "--model", "openai/fake", "--only", "helper", "--once", "hi")
    assert status == 0, err
    assert {headers["authorization"] for _, headers in server.requests} == {"Bearer secret-123"}

    monkeypatch.delenv("MY_LOCAL_KEY")
    status, _, err = run(capsys, "chat", "--model", "openai/fake", "--once", "hi")
    assert status == 2
    assert err.startswith("error: no API key for openai: the variable MY_LOCAL_KEY")


def test_a_config_alias_is_the_default_and_model_switches_the_whole_crew(
    server: FakeOpenAI,
    helper: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipmates._config import config_path

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[models.local]\nmodel = "openai/fake"\napi_base = "{server.url}"\noptions = {{ seed = 7 }}\n'
    )
    # Offline first, then /model switches the captain and the helper to the alias.
    monkeypatch.setattr(sys, "stdin", io.StringIO("/model local\nhi\n/agents\n"))
    status, out, err = run(capsys, "chat", "--only", "helper")
    assert status == 0, err
    assert "the helper said: helper here" in out
    assert server.who() == ["captain", "helper", "captain"]
    assert all(body["seed"] == 7 for body, _ in server.requests)
    assert "model: session default (local)" in out  # /agents: which model the helper uses

    path.write_text(path.read_text().replace("[models", 'default_model = "local"\n\n[models'))
    status, out, err = run(capsys, "chat", "--only", "helper", "--once", "again")
    assert (status, out.strip()) == (0, "the helper said: helper here"), err
    assert len(server.requests) == 6


def test_agents_load_shows_the_model_each_sibling_uses(
    helper: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPMATES_MODEL", "openai/fake")
    status, out, _ = run(capsys, "agents", "--load", "--only", "helper")
    assert status == 0
    assert "model: session default (openai/fake)" in out
    monkeypatch.delenv("SHIPMATES_MODEL")
    status, out, _ = run(capsys, "agents", "--load", "--json", "--only", "helper")
    records = {r["name"]: r for r in json.loads(out)}
    assert records["helper"]["model"] == "session default (offline)"


# -- timeouts and errors -----------------------------------------------------------------------


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    listener.close()
    for conn in held:
        conn.close()


def test_a_silent_server_ends_the_turn_within_the_timeout(
    silent_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates._models._litellm import load

    load()  # litellm's import is not what is timed
    monkeypatch.setenv("SHIPMATES_MODEL_RETRIES", "3")  # retries never stretch the one timeout
    begun = time.monotonic()
    status, out, err = run(
        capsys,
        "chat",
        "--model",
        "openai/fake",
        "--api-base",
        silent_url,
        "--model-timeout",
        "1",
        "--once",
        "hi",
    )
    elapsed = time.monotonic() - begun
    assert status == 2 and out == ""
    assert elapsed < 1 + 2.5, elapsed
    first = err.splitlines()[0]
    assert first.startswith(f"error: model 'openai/fake' at {silent_url} did not answer within 1 s")
    assert "--model-timeout" in first


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "{url} refused the API key for openai (model 'openai/fake'): set the right key in "
         "OPENAI_API_KEY, or name the variable that holds it with --api-key-env VAR"),
        (404, "{url} does not know the model 'openai/fake' (not found): check --model"),
        (500, "model 'openai/fake' at {url} failed with status 500: check --model, --api-base"),
    ],
)  # fmt: skip
def test_provider_errors_say_what_where_and_which_setting_first(
    status: int, says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeOpenAI(status)
    monkeypatch.setenv("SHIPMATES_MODEL_RETRIES", "0")
    try:
        code, out, err = run(
            capsys, "chat", "--model", "openai/fake", "--api-base", server.url, "--once", "hi"
        )
    finally:
        server.close()
    assert code == 2 and out == ""
    assert err.startswith("error: " + says.format(url=server.url)), err
    assert "error: error:" not in err
    assert len(err) < 900  # litellm's own text follows, shortened


def test_a_missing_key_is_said_in_shipmates_words(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "--model", "openai/gpt-4o-mini", "--once", "hi")
    assert status == 2
    assert err.startswith("error: no API key for openai: set OPENAI_API_KEY or --api-key-env VAR")
    assert "InternalServerError" not in err


def test_a_piped_chat_whose_turns_failed_exits_1(
    silent_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    status, _, err = run(capsys, "chat", "--model", "openai/gpt-4o-mini")
    assert status == 1
    assert "error: no API key for openai" in err


def test_the_session_timeout_reaches_agents_with_their_own_model(
    silent_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from shipmates import Agent, ModelError
    from shipmates._models._session import ModelConfig, session_config

    agent = Agent("own", model="openai/fake", model_settings={"api_base": silent_url})
    token = session_config.set(ModelConfig(timeout=0.5, retries=0))
    try:
        begun = time.monotonic()
        with pytest.raises(ModelError, match=r"did not answer within 0\.5 s"):
            asyncio.run(agent.arun("hi"))
        assert time.monotonic() - begun < 3
    finally:
        session_config.reset(token)


def test_an_alias_of_a_registered_model_is_that_model() -> None:
    from shipmates import get_model
    from shipmates._config import ModelAlias
    from shipmates._models._offline import OfflineRouter
    from shipmates._models._session import ModelConfig, session_config

    token = session_config.set(ModelConfig(aliases={"quick": ModelAlias("quick", "offline")}))
    try:
        assert isinstance(get_model("quick"), OfflineRouter)
    finally:
        session_config.reset(token)
