"""Throwaway virtual environments that see only what a test installed, without network.

Third-party dependencies come from the dev venv through an *overlay*: a directory of symlinks
to the dev venv's site-packages entries, minus shipmates itself, every distribution with
``shipmates.agents``/``shipmates.plugins`` entry points, and ``.pth`` files (editable installs).
A ``.pth`` file in the throwaway venv appends the overlay to ``sys.path``, after the venv's own
site-packages, so what the test installs always wins.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIPMATES_GROUPS = ("shipmates.agents", "shipmates.plugins")
OVERLAY_PTH = "_shipmates_test_overlay.pth"


def dev_site_packages() -> Path:
    """The site-packages of the interpreter running the tests (the dev venv)."""
    return Path(sysconfig.get_paths()["purelib"])


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(info: Path) -> str:
    try:
        for line in (info / "METADATA").read_text(errors="replace").splitlines():
            if line.startswith("Name:"):
                return line.split(":", 1)[1].strip()
            if not line:
                break
    except OSError:
        pass
    return info.name.split("-")[0]


def _top_levels(info: Path) -> set[str]:
    tops = {info.name}
    try:
        lines = (info / "RECORD").read_text(errors="replace").splitlines()
    except OSError:
        return tops
    for line in lines:
        first = line.split(",", 1)[0].split("/", 1)[0]
        if first and first not in ("..", ".") and not os.path.isabs(first):
            tops.add(first)
    return tops


def make_overlay(dest: Path, source: Path | None = None, *, exclude: Iterable[str] = ("shipmates",)) -> Path:
    """Fill ``dest`` with symlinks to ``source``'s entries, filtered as the module docstring says."""
    source = source or dev_site_packages()
    excluded_names = {_norm(n) for n in exclude}
    drop: set[str] = set()
    keep: set[str] = set()
    for info in source.glob("*.dist-info"):
        entry_points = info / "entry_points.txt"
        text = entry_points.read_text(errors="replace") if entry_points.exists() else ""
        shipmates_eps = any(f"[{group}]" in text for group in SHIPMATES_GROUPS)
        (drop if shipmates_eps or _norm(_dist_name(info)) in excluded_names else keep).update(
            _top_levels(info)
        )
    dest.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        name = entry.name
        if name.endswith(".pth") or (name in drop and name not in keep) or name.startswith("__editable__"):
            continue
        link = dest / name
        if not link.exists():
            link.symlink_to(entry)
    return dest


@dataclass
class Venv:
    """A throwaway virtual environment; run code in it with :meth:`run`."""

    path: Path
    home: Path
    """``SHIPMATES_HOME`` for processes run in this venv (its own discovery cache and state)."""

    @property
    def bin(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if os.name == "nt" else "python")

    @property
    def site_packages(self) -> Path:
        found = sorted(self.path.glob("lib/python*/site-packages")) or [self.path / "Lib" / "site-packages"]
        return found[0]

    def install(self, *wheels: Path, timeout: float = 300) -> None:
        """``pip install --no-index --no-deps`` the wheels (with the dev venv's pip, no pip inside)."""
        if not wheels:
            return
        self._pip(
            "install",
            "--no-index",
            "--no-deps",
            "--no-warn-script-location",
            *map(str, wheels),
            timeout=timeout,
        )

    def uninstall(self, *dists: str, timeout: float = 300) -> None:
        self._pip("uninstall", "-y", *dists, timeout=timeout)

    def _pip(self, *args: str, timeout: float) -> None:
        from .wheels import _pip_env

        cmd = [sys.executable, "-m", "pip", "--python", str(self.python), "-q", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_pip_env())
        if proc.returncode != 0:
            raise RuntimeError(f"pip {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment for this venv: no PYTHON*/SHIPMATES*/PIP*/VIRTUAL_ENV from the caller."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "SHIPMATES_", "PIP_", "LITELLM")) and k != "VIRTUAL_ENV"
        }
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(self.path)
        env["SHIPMATES_HOME"] = str(self.home)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def run(
        self,
        code: str,
        *,
        env: Mapping[str, str] | None = None,
        args: Iterable[str] = (),
        cwd: Path | None = None,
        timeout: float = 120,
        check: bool = False,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` in this venv; ``env`` adds to :meth:`env`. ``check`` asserts exit 0."""
        return self.run_command(
            [str(self.python), "-c", code, *args], env=env, cwd=cwd, timeout=timeout, check=check, stdin=stdin
        )

    def run_command(
        self,
        cmd: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
        check: bool = False,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` (for example ``[venv.bin / "shipmates", "agents"]``) with this venv's environment."""
        proc = subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(env),
            cwd=str(cwd or self.path),
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{cmd[0]} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def run_json(self, code: str, **kwargs: Any) -> Any:
        """Run ``code`` (which must print one JSON document last) and return the parsed document."""
        proc = self.run(code, check=True, **kwargs)
        lines = proc.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"no output\n--- stderr\n{proc.stderr}")
        return json.loads(lines[-1])


def create_venv(path: Path, *, overlay: Path | None = None, home: Path | None = None) -> Venv:
    """A new venv without pip (installs go through the dev venv's pip) and, if given, the overlay."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    venv = Venv(path, home or path.with_name(path.name + "-home"))  # outside: the venv dir is the cwd
    if overlay is not None:
        (venv.site_packages / OVERLAY_PTH).write_text(f"{overlay}\n")
    return venv
