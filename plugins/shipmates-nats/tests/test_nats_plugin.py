"""The plugin stays cheap to import and contributes its subcommands (no server needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env["SHIPMATES_PLUGINS"] = "nats"
    env.update(extra)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60)


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, shipmates_nats, shipmates_nats._plugin; "
        "heavy = [m for m in ('nats', 'pydantic', 'litellm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = _run("-c", code)
    assert done.returncode == 0, done.stderr


def test_nats_loads_without_aiohttp_until_a_websocket_needs_it() -> None:
    """nats-py imports aiohttp (a quarter of a second) only for WebSocket URLs: `serve` and the
    captain start without it, and whoever imports aiohttp later gets the real module."""
    code = (
        "import sys; from shipmates_nats._nats_import import import_nats; import_nats('nats://h:4222'); "
        "import nats; assert 'aiohttp' not in sys.modules; "
        "import aiohttp; assert aiohttp.ClientSession; "
        "import_nats('ws://h:8080'); assert sys.modules['nats.aio.transport'].aiohttp is aiohttp"
    )
    done = _run("-c", code)
    assert done.returncode == 0, done.stderr
    listed = (  # a server list with a WebSocket one among others
        "import sys; from shipmates_nats._nats_import import import_nats; "
        "import_nats('nats://h:4222, ws://h:8080'); import aiohttp; "
        "assert sys.modules['nats.aio.transport'].aiohttp is aiohttp"
    )
    done = _run("-c", listed)
    assert done.returncode == 0, done.stderr


def test_help_lists_serve_and_nats() -> None:
    done = _run("-m", "shipmates", "--help")
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout and "nats" in done.stdout
    serve_help = _run("-m", "shipmates", "serve", "--help").stdout
    for flag in ("--nats", "--namespace", "--token", "--creds", "--tls-ca", "--drain-timeout", "--only"):
        assert flag in serve_help
    chat_help = _run("-m", "shipmates", "chat", "--help").stdout
    assert "--nats URL" in chat_help  # a chat option of this plugin (register_chat_options)
    assert "--nats" not in _run("-m", "shipmates", "chat", "--help", SHIPMATES_PLUGINS="").stdout


def test_serve_without_siblings_says_what_to_do() -> None:
    env_note = _run("-m", "shipmates", "serve", "--nats", "nats://127.0.0.1:1", SHIPMATES_AGENTS="")
    assert env_note.returncode == 1
    assert "no sibling to serve" in env_note.stderr


def test_serve_reports_a_bad_model_setting_as_a_usage_error() -> None:
    # Exit 2, as `chat` does: the command line, environment or config file is wrong, not the crew.
    flag = _run("-m", "shipmates", "serve", "--nats", "nats://127.0.0.1:1", "--model-timeout", "-3")
    assert flag.returncode == 2
    assert "--model-timeout=-3.0 is not valid: expected a number of seconds > 0" in flag.stderr
    env = _run("-m", "shipmates", "serve", "--nats", "nats://127.0.0.1:1", SHIPMATES_MODEL_TIMEOUT="soon")
    assert env.returncode == 2 and "SHIPMATES_MODEL_TIMEOUT='soon' is not valid" in env.stderr


def test_a_probe_refused_as_busy_gives_its_turn_back_and_a_lone_replica_keeps_its_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A half-open replica's probe that was refused as busy (or found the replica gone) ran
    # nowhere: it must not keep the replica out for good. And a replica whose breaker opened
    # while it had company still settles on it when it is left alone.
    from shipmates_nats import NatsSettings, _breaker
    from shipmates_nats._remote import RemoteCrew, RemoteSibling
    from shipmates_nats._routing import ROUTE_PROTOCOL
    from support import wait_for

    monkeypatch.setenv(_breaker.FAILURES_ENV, "1")
    monkeypatch.setenv(_breaker.COOLDOWN_ENV, "0.05")
    _breaker.reset()
    crew = RemoteCrew(NatsSettings(url="nats://127.0.0.1:1", namespace="probe"))
    card = {"name": "fib", "distribution": "shipmates-fib", "version": "1.0.0", "protocols": [ROUTE_PROTOCOL]}
    proxy = RemoteSibling(crew, card, ["a", "b"])
    proxy.routes = ["a", "b"]  # both route (a scan sets this from their cards)
    proxy.settle("a", RuntimeError("boom"))
    breakers = proxy.replica_breakers
    wait_for(lambda: breakers.routes(["a", "b"], proxy.label) == ["a", "b"], 5, what="the cool-down over")
    assert breakers.take("a")  # this call is a's probe
    proxy.unanswered("a", busy=True)
    assert breakers.take("a")  # refused before it ran: the next call probes again
    proxy.routes = ["a"]  # b left: a is alone, its breaker still half-open
    proxy.settle("a", None)  # the probe answered
    assert "a" not in breakers.by_id and proxy.route([]) == "a"
    _breaker.reset()


def test_semver_and_request_decoding() -> None:
    from shipmates_nats._protocol import decode_request, encode_request, semver

    assert semver("1.2") == "1.2.0" and semver("2024.1.post3") == "2024.1.3" and semver(None) == "0.0.0"
    assert decode_request(b"fib 8") == {"query": "fib 8"}
    assert decode_request(encode_request("hi")) == {"query": "hi"}
    assert decode_request(b'{"n": 3}') == {"n": 3}
    for query in ("", '{"looks": "like json"}', '"quoted"', "  {not json", "ünïcode ✓", "[1, 2]"):
        assert decode_request(encode_request(query)) == {"query": query}


@pytest.mark.filterwarnings("ignore:Field name .json. .* shadows")
def test_model_from_schema_keeps_the_schema_and_types_simple_fields() -> None:
    from pydantic import BaseModel, Field, ValidationError
    from shipmates_nats._schema import model_from_schema

    class Inner(BaseModel):
        x: int

    class Input(BaseModel):
        n: int = Field(description="a number")
        json: str = "reserved name"
        inner: Inner | None = None

    schema = Input.model_json_schema()
    model = model_from_schema("odd name!", schema)
    assert model.model_json_schema() == schema
    assert model(n=3).model_dump(exclude_unset=True) == {"n": 3}
    with pytest.raises(ValidationError):
        model.model_validate({"n": "three"})
    assert model.model_validate({"n": 1, "json": "ok", "inner": {"x": 2}}).model_dump(exclude_unset=True) == {
        "n": 1,
        "json": "ok",
        "inner": {"x": 2},
    }


def test_version_ranges_come_from_require_then_the_environment_then_the_config_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    from shipmates_nats import _plugin, _versions

    (Path(os.environ["SHIPMATES_HOME"]) / "config.toml").write_text(
        '[agents]\nrequire = ["fib>=1.2", "report<2"]\n'
    )
    monkeypatch.delenv("SHIPMATES_REQUIRE", raising=False)
    assert str(_versions.required("fib", "shipmates-fib")) == ">=1.2"
    assert str(_versions.required("report", None)) == "<2"
    monkeypatch.setenv("SHIPMATES_REQUIRE", "fib>=2")
    assert str(_versions.required("fib", None)) == ">=2" and _versions.required("report", None) is None
    _plugin._use_require("remote:fib~=3.0")  # chat --require
    assert str(_versions.required("fib", None)) == "~=3.0"
    with pytest.raises(ValueError, match=r"'fib>>1' \(--require, SHIPMATES_REQUIRE or the config file"):
        _plugin._use_require("fib>>1")
    assert str(_versions.required("fib", None)) == "~=3.0"  # a bad value changes nothing


def test_replica_breakers_skip_an_open_replica_probe_it_later_and_fail_fast_when_all_are_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipmates_nats import _breaker
    from shipmates_nats._breaker import CircuitOpenError, Replicas

    monkeypatch.setenv(_breaker.FAILURES_ENV, "2")
    monkeypatch.setenv(_breaker.COOLDOWN_ENV, "0.05")
    _breaker.reset()
    replicas, label = Replicas(("ns", "fib", "shipmates-fib")), "remote sibling 'fib' (shipmates-fib 1.0)"
    for _ in range(2):
        replicas.settle("a", RuntimeError("boom"), label)
    assert replicas.routes(["a", "b"], label) == ["b"]  # open: skipped, the other takes the calls
    assert _breaker.states()["ns/fib/shipmates-fib/a"]["state"] == "open"
    for _ in range(2):
        replicas.settle("b", TimeoutError("slow"), label)
    with pytest.raises(
        CircuitOpenError, match=r"circuit open for remote sibling 'fib' .* each of its 2 replicas"
    ):
        replicas.routes(["a", "b"], label)
    from support import wait_for

    def both() -> bool:
        try:
            return replicas.routes(["a", "b"], label) == ["a", "b"]
        except CircuitOpenError:
            return False

    wait_for(both, 5, what="the cool-down over")
    assert replicas.take("a") and not replicas.take("a")  # a second call does not probe too
    replicas.release("a")  # the probe was cancelled: it may go again
    assert replicas.take("a")
    replicas.settle("a", None, label)  # a good probe closes it
    assert replicas.routes(["a", "b"], label) == ["a", "b"] and "a" not in replicas.by_id
    invalid = RuntimeError("invalid input for fib")  # the caller's doing: not counted
    replicas.settle("b", invalid, label)
    assert _breaker.states()["ns/fib/shipmates-fib/b"]["failures"] == 2
    _breaker.reset()
