"""Secrets stay off command lines and out of messages; exposed connections are warned about.

`nats up`, `serve` and `chat` take the token, password and nkey from files or the environment;
a flag that would show one in the process list is refused (or, for `chat --nats URL`, warned
about) with the fix named.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import secrets
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import settings

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _secret_file(path: Path, value: str) -> Path:
    path.write_text(f"{value}\n")
    path.chmod(0o600)
    return path


def _shipmates(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    full.update({"SHIPMATES_HOME": str(home), "SHIPMATES_PLUGINS": "nats", **env})
    return subprocess.run(
        [sys.executable, "-m", "shipmates", *args], env=full, text=True, capture_output=True, timeout=60
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("how", ["token-file flag", "user and password from the environment"])
def test_nats_up_keeps_the_secret_off_the_servers_command_line(tmp_path: Path, how: str) -> None:
    """The started nats-server's /proc/PID/cmdline has no secret; it reads a 0600 config in a
    0700 directory; clients need the secret; `nats down` removes the config."""
    from shipmates_nats import NatsConnectError, get_crew

    home, secret, wrong = tmp_path / "home", secrets.token_hex(16), secrets.token_hex(16)
    if how == "token-file flag":
        flags, env = ["--token-file", str(_secret_file(tmp_path / "token", secret))], {}
        good, bad = {"token": secret}, {"token": wrong}
    else:
        flags, env = [], {"SHIPMATES_NATS_USER": "ann", "SHIPMATES_NATS_PASSWORD": secret}
        good, bad = {"user": "ann", "password": secret}, {"user": "ann", "password": wrong}
    up = _shipmates(home, "nats", "up", "--port", "-1", "--detach", *flags, **env)
    assert up.returncode == 0, up.stderr
    state = home / "state" / "nats"
    pid = int((state / "pid").read_text())
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].endswith(b"nats-server")
        assert not any(secret.encode() in arg for arg in cmdline), cmdline
        conf = Path(cmdline[cmdline.index(b"-c") + 1].decode())
        assert conf.parent == state and secret in conf.read_text()
        assert _mode(conf) == 0o600 and _mode(state) == 0o700
        assert secret not in up.stdout + up.stderr
        assert "clients need the" in up.stderr
        url = up.stdout.strip()
        with pytest.raises(NatsConnectError, match="rejected the credentials") as refused:
            get_crew(settings(url, **bad))
        assert wrong not in str(refused.value) and secret not in str(refused.value)
        assert get_crew(settings(url, **good)).scan() == {}
    finally:
        down = _shipmates(home, "nats", "down")
    assert down.returncode == 0, down.stderr
    assert not conf.exists()


def test_nats_up_refuses_a_secret_flag(tmp_path: Path) -> None:
    up = _shipmates(tmp_path / "home", "nats", "up", "--port", "-1", "--detach", "--token", "hunter2-xyz")
    assert up.returncode == 2
    assert "--token-file" in up.stderr and "process list" in up.stderr
    assert "hunter2-xyz" not in up.stderr + up.stdout
    assert not (tmp_path / "home" / "state" / "nats" / "pid").exists()  # no server started


def _serve_args(*argv: str) -> argparse.Namespace:
    from shipmates_nats._cli import configure_serve

    parser = argparse.ArgumentParser()
    configure_serve(parser)
    return parser.parse_args(list(argv))


SEED = "SUAAVWRZG6M5FA5VRRGWSCIHKTOJC7EWNIT4JV3FTOIPO4OBFR5WA7X5TE"


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--token", "hunter2-xyz"], "--token-file"),
        (["--user", "ann", "--password", "hunter2-xyz"], "--password-file"),
        (["--nkey", SEED], "seed file"),
        (["--nats", "nats://ann:hunter2-xyz@127.0.0.1:4222"], "SHIPMATES_NATS_TOKEN_FILE"),
    ],
)
def test_serve_refuses_secrets_on_its_command_line(argv: list[str], fix: str) -> None:
    from shipmates_nats import NatsConnectError, NatsSettings

    with pytest.raises(NatsConnectError, match="process list") as refused:
        NatsSettings.from_args(_serve_args(*argv))
    assert fix in str(refused.value)
    assert "hunter2-xyz" not in str(refused.value) and SEED not in str(refused.value)


def test_serve_exits_2_on_a_token_flag(tmp_path: Path) -> None:
    done = _shipmates(tmp_path / "home", "serve", "--nats", "nats://127.0.0.1:1", "--token", "hunter2-xyz")
    assert done.returncode == 2, done.stderr
    assert "--token-file" in done.stderr and "hunter2-xyz" not in done.stderr + done.stdout


def test_secrets_come_from_files_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipmates_nats import NatsConnectError, NatsSettings

    for name in ("SHIPMATES_NATS_TOKEN", "SHIPMATES_NATS_TOKEN_FILE", "SHIPMATES_NATS_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    token_file = _secret_file(tmp_path / "token", "from-file")
    monkeypatch.setenv("SHIPMATES_NATS_TOKEN", "from-env")
    assert NatsSettings.from_env().token == "from-env"
    assert NatsSettings.from_args(_serve_args("--token-file", str(token_file))).token == "from-file"
    monkeypatch.setenv("SHIPMATES_NATS_TOKEN_FILE", str(_secret_file(tmp_path / "env-token", "env-file")))
    assert NatsSettings.from_env().token == "env-file"  # the variable's file beats the variable
    assert NatsSettings.from_args(_serve_args("--token-file", str(token_file))).token == "from-file"
    monkeypatch.setenv("SHIPMATES_NATS_PASSWORD_FILE", str(_secret_file(tmp_path / "pw", "pw-file")))
    from_env = NatsSettings.from_env()
    assert from_env.password == "pw-file"
    assert "pw-file" not in repr(from_env) and "from-env" not in repr(from_env)

    open_file = tmp_path / "open"
    open_file.write_text("readable\n")
    open_file.chmod(0o644)
    assert NatsSettings.from_args(_serve_args("--token-file", str(open_file))).token == "readable"
    assert f"chmod 600 {open_file}" in capsys.readouterr().err

    # The token given where its file belongs: the error neither shows it nor takes it for a path.
    with pytest.raises(NatsConnectError, match="path of a file holding the token") as wrong:
        NatsSettings.from_args(_serve_args("--token-file", "hunter2-xyz"))
    assert "hunter2-xyz" not in str(wrong.value)


def test_a_rejected_token_is_not_in_the_error(serve: Any, tmp_path: Path) -> None:
    """serve started with a wrong token (from a file) fails naming the credentials, not the token."""
    from shipmates_nats import NatsServer

    config = 'authorization { token: "right-token-123" }\n'
    with NatsServer(config_text=config) as server:
        wrong = _secret_file(tmp_path / "token", "wrong-token-456")
        bad = serve(server.url, "--token-file", str(wrong), agents="echo", wait=False)
        assert bad.proc.wait(30) == 1
        bad.read_to_end()
        assert "rejected the credentials" in bad.text() and "--token-file" in bad.text()
        assert "wrong-token-456" not in bad.text() and "right-token-123" not in bad.text()


@pytest.mark.skipif(importlib.util.find_spec("nkeys") is None, reason="needs the nkeys extra")
def test_the_nkey_seed_itself_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SHIPMATES_NATS_NKEY may hold the seed instead of a file's path (containers pass secrets so)."""
    import nkeys
    from shipmates_nats import NatsServer, NatsSettings, get_crew

    user = nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)))
    seed = bytes(user.seed).decode()
    config = f'authorization {{ users = [ {{ nkey: "{user.public_key.decode()}" }} ] }}\n'
    with NatsServer(config_text=config) as server:
        monkeypatch.setenv("SHIPMATES_NATS_NKEY", seed)
        chosen = NatsSettings.from_env(url=server.url, namespace="seed")
        assert seed not in repr(chosen)
        assert get_crew(chosen).scan() == {}


@pytest.mark.parametrize(
    ("url", "extra", "warned"),
    [
        ("nats://127.0.0.1:4222", {}, False),
        ("nats://localhost:4222,nats://[::1]:4222,nats://0.0.0.0:4222", {}, False),
        ("nats://10.0.0.5:4222", {}, True),
        ("nats://nats.example.com:4222", {}, True),
        ("nats://127.0.0.1:4222,nats://10.0.0.5:4222", {}, True),
        ("nats://10.0.0.5:4222", {"token": "t"}, False),
        ("nats://10.0.0.5:4222", {"creds": "/x.creds"}, False),
        ("nats://tok@10.0.0.5:4222", {}, False),
        ("tls://10.0.0.5:4222", {}, False),
    ],
)
def test_an_exposed_connection_is_named(url: str, extra: dict[str, str], warned: bool) -> None:
    from shipmates_nats._config import exposure_warning

    text = exposure_warning(settings(url, **extra))
    assert bool(text) is warned
    if text:
        assert "beyond loopback with neither credentials nor TLS" in text and "--token-file" in text
        assert "\n" not in text and "tok@" not in text


def _own_address() -> str:
    """This machine's address on its default route (a UDP connect sends nothing), else skip."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))
        address: str = probe.getsockname()[0]
    except OSError:
        pytest.skip("no network interface besides loopback")
    finally:
        probe.close()
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("no network interface besides loopback")
    return address


def test_connecting_beyond_loopback_without_credentials_warns_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the real connect path (serve's and the captain's): one line, once per process. The
    address is this machine's own, on a port nothing listens on, so no packet leaves the machine."""
    from shipmates_nats import NatsConnectError, get_crew

    closed = socket.socket()
    closed.bind((_own_address(), 0))  # bound, never listening: connecting is refused at once
    try:
        url = "nats://{}:{}".format(*closed.getsockname())
        for _ in range(2):
            with pytest.raises(NatsConnectError, match="cannot reach NATS"):
                get_crew(settings(url, connect_timeout=1))
    finally:
        closed.close()
    lines = capsys.readouterr().err.splitlines()
    assert len([line for line in lines if "beyond loopback" in line]) == 1, lines


def test_chat_warns_about_credentials_in_its_url(capsys: pytest.CaptureFixture[str]) -> None:
    from shipmates_nats import _plugin

    _plugin._use_url("nats://127.0.0.1:4222")
    assert capsys.readouterr().err == ""
    _plugin._use_url("nats://ann:hunter2-xyz@127.0.0.1:4222")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "process list" in err and "SHIPMATES_NATS_TOKEN_FILE" in err
    assert "hunter2-xyz" not in err
