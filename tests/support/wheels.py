"""Real wheels, built offline with ``pip wheel --no-deps --no-build-isolation`` (hatchling, dev venv)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_wheels(projects: Iterable[Path], out_dir: Path, *, timeout: float = 300) -> list[Path]:
    """Build one wheel per project directory into ``out_dir`` with a single pip run, in order."""
    projects = [Path(p) for p in projects]
    if not projects:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=out_dir) as tmp:
        # One pip run for all projects: pip's start-up dominates the cost of small wheels.
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            "-w",
            tmp,
            *map(str, projects),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_pip_env())
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        built = {p.name: p for p in Path(tmp).glob("*.whl")}
        for project in projects:
            wheel = _match(project, built)
            target = out_dir / wheel.name
            shutil.move(str(wheel), target)
            wheels.append(target)
    return wheels


def _project_name_version(project: Path) -> tuple[str, str | None]:
    text = (project / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
        version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        return (name.group(1) if name else project.name), (version.group(1) if version else None)
    meta = tomllib.loads(text).get("project", {})
    return str(meta.get("name", project.name)), meta.get("version")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _match(project: Path, built: dict[str, Path]) -> Path:
    """The wheel built from ``project``: same normalised name (and version, when static)."""
    name, version = _project_name_version(project)
    candidates = [w for n, w in built.items() if _norm(n.split("-")[0]) == _norm(name)]
    if version and len(candidates) > 1:
        candidates = [w for w in candidates if w.name.split("-")[1] == version]
    if len(candidates) != 1:
        raise RuntimeError(f"cannot tell which wheel came from {project}: {sorted(built)}")
    return candidates.pop()


def _pip_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_INDEX="1")
    return env


class WheelBuilder:
    """Builds wheels into one directory per test session, each project at most once."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._built: dict[Path, Path] = {}
        self._lock = threading.Lock()

    def build(self, *projects: Path, cached: bool = True) -> list[Path]:
        """Wheels of ``projects`` (directories with a pyproject.toml), in order."""
        with self._lock:
            resolved = [Path(p).resolve() for p in projects]
            todo = [p for p in resolved if not (cached and p in self._built)]
            for project, wheel in zip(todo, build_wheels(todo, self.out_dir), strict=True):
                self._built[project] = wheel
            return [self._built[p] for p in resolved]

    def shipmates(self) -> Path:
        """The wheel of shipmates itself, from this checkout (built once per session)."""
        return self.build(REPO_ROOT)[0]

    def demo(self, *names: str) -> list[Path]:
        """Wheels of the demo crew in ``demo_agents/`` (``fib``, ``factor``, ``exit``)."""
        return self.build(*(REPO_ROOT / "demo_agents" / n for n in names))
