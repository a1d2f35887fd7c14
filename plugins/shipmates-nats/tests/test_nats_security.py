"""TLS and nkey options against real servers (wrong tokens/passwords are in test_nats_resilience)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
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

    ssl("req", "-x509", *ec, "-keyout", files["ca.key"], "-out", files["ca.pem"], "-days", "1",
        "-subj", "/CN=shipmates-test-ca")
    ssl("req", *ec, "-keyout", files["server.key"], "-out", files["server.csr"], "-subj", "/CN=localhost")
    ssl("x509", "-req", "-in", files["server.csr"], "-CA", files["ca.pem"], "-CAkey", files["ca.key"],
        "-CAcreateserial", "-out", files["server.pem"], "-days", "1", "-extfile", files["san.cnf"])
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


def test_nkey_seed(tmp_path: Path) -> None:
    from shipmates_nats import NatsConnectError, NatsServer, get_crew

    if importlib.util.find_spec("nkeys") is None:
        seed = tmp_path / "user.nk"
        seed.write_text("SUAAVWRZG6M5FA5VRRGWSCIHKTOJC7EWNIT4JV3FTOIPO4OBFR5WA7X5TE\n")
        with NatsServer() as server, pytest.raises(NatsConnectError, match=r"shipmates-nats\[nkeys\]"):
            get_crew(settings(server.url, nkey=str(seed)))
        return
    import nkeys  # pragma: no cover - only where the nkeys extra is installed

    user = nkeys.from_seed(nkeys.encode_seed(bytes(32), nkeys.PREFIX_BYTE_USER))  # type: ignore[attr-defined]
    seed = tmp_path / "user.nk"
    seed.write_bytes(user.seed)
    config = f'authorization: {{ users: [ {{ nkey: "{user.public_key.decode()}" }} ] }}\n'
    with NatsServer(config_text=config) as server:
        assert get_crew(settings(server.url, nkey=str(seed))).scan() == {}
