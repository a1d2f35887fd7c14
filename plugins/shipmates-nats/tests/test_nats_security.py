"""TLS and nkey options against real servers (wrong tokens/passwords are in test_nats_resilience)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import settings

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _certs(tmp: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    files = {n: tmp / n for n in ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr", "san.cnf")}
    files["san.cnf"].write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def ssl(*args: Any) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)

    ssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        files["ca.key"],
        "-out",
        files["ca.pem"],
        "-days",
        "1",
        "-subj",
        "/CN=shipmates-test-ca",
    )
    ssl("req", *ec, "-keyout", files["server.key"], "-out", files["server.csr"], "-subj", "/CN=localhost")
    ssl(
        "x509",
        "-req",
        "-in",
        files["server.csr"],
        "-CA",
        files["ca.pem"],
        "-CAkey",
        files["ca.key"],
        "-CAcreateserial",
        "-out",
        files["server.pem"],
        "-days",
        "1",
        "-extfile",
        files["san.cnf"],
    )
    return files


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path, serve: Any) -> None:
    from shipmates_nats import NatsConnectError, NatsServer, get_crew

    files = _certs(tmp_path)
    tls_args = ["--tls", "--tlscert", str(files["server.pem"]), "--tlskey", str(files["server.key"])]
    with NatsServer(extra_args=tls_args) as server:
        url = server.url.replace("nats://", "tls://")
        with pytest.raises(NatsConnectError, match=r"TLS with NATS at .* failed"):
            get_crew(settings(url))  # the system CAs do not know our test CA
        serve(url, "--namespace", "s1", "--tls-ca", str(files["ca.pem"]), agents="echo")
        crew = get_crew(settings(url, "s1", tls_ca=str(files["ca.pem"])))
        crew.scan()
        assert crew.proxies["echo"].invoke("secure").endswith("secure")


def test_nkey_without_extra_says_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ``nkeys`` package the connect error names the extra (simulated when it is installed)."""
    from shipmates_nats import NatsConnectError, NatsServer, get_crew

    monkeypatch.setitem(sys.modules, "nkeys", None)  # `import nkeys` inside nats-py now fails
    seed = tmp_path / "user.nk"
    seed.write_text("SUAAVWRZG6M5FA5VRRGWSCIHKTOJC7EWNIT4JV3FTOIPO4OBFR5WA7X5TE\n")
    with NatsServer() as server, pytest.raises(NatsConnectError, match=r"shipmates-nats\[nkeys\]"):
        get_crew(settings(server.url, nkey=str(seed)))


def _user_nkey(path: Path) -> str:
    """A fresh user nkey pair: its seed ('SU...') goes to ``path``; returns the public key ('U...')."""
    import nkeys

    user = nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)))
    path.write_bytes(bytes(user.seed) + b"\n")
    path.chmod(0o600)
    public: str = user.public_key.decode()
    assert public.startswith("U") and path.read_text().startswith("SU")
    return public


@pytest.mark.skipif(
    importlib.util.find_spec("nkeys") is None,
    reason="needs the nkeys extra: pip install -e './plugins/shipmates-nats[nkeys]'",
)
def test_nkey_serve_and_captain(tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that only admits one user nkey: serve --nkey and a captain via SHIPMATES_NATS_NKEY
    work through it; another key and no key are rejected at once with the credentials error."""
    from shipmates import Agent, absorb_crew, discover
    from shipmates_nats import NatsConnectError, NatsServer, get_crew

    good, wrong = tmp_path / "user.nk", tmp_path / "other.nk"
    public = _user_nkey(good)
    assert _user_nkey(wrong) != public
    config = f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n'
    with NatsServer(config_text=config) as server:
        assert server.url.startswith("nats://127.0.0.1:")
        for bad in ({"nkey": str(wrong)}, {}):
            started = time.monotonic()
            with pytest.raises(NatsConnectError, match="rejected the credentials"):
                get_crew(settings(server.url, "k1", **bad))
            assert time.monotonic() - started < 3, bad
        started = time.monotonic()
        refused = serve(server.url, "--namespace", "k1", "--nkey", str(wrong), agents="echo", wait=False)
        assert refused.proc.wait(20) == 1
        assert time.monotonic() - started < 15  # interpreter start-up included; no connect retries
        assert "rejected the credentials" in refused.text() and "--nkey" in refused.text()

        served = serve(server.url, "--namespace", "k1", "--nkey", str(good), agents="echo")
        monkeypatch.setenv("SHIPMATES_NATS_URL", server.url)
        monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "k1")
        monkeypatch.setenv("SHIPMATES_NATS_NKEY", str(good))
        monkeypatch.setenv("SHIPMATES_AGENTS", "echo")
        found = discover()
        echo = found.agents["echo"]
        assert echo.status == "ok", [r.one_line() for r in found.records]
        assert echo.provenance.origin == "remote"
        captain = Agent("captain", "test captain", model="offline")
        report = absorb_crew(captain, found)
        assert report.ok and report.absorbed == ["echo"]
        answer = captain.invoke("echo signed hello")
        assert f"echo {served.pid}: " in answer and "signed hello" in answer, answer
