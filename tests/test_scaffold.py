"""``shipmates new``: the scaffold writes a complete sibling package that installs and works."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import shipmates
from shipmates._cli._scaffold import ScaffoldError, next_steps, package_names, scaffold

EXPECTED_FILES = {
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/shipmates_demo_bot/__init__.py",
    "src/shipmates_demo_bot/py.typed",
    "tests/test_demo_bot.py",
}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_templates_are_package_data() -> None:
    template_dir = resources.files("shipmates._cli").joinpath("_template")
    names = {entry.name for entry in template_dir.iterdir()}
    assert {"pyproject.toml.tmpl", "module.py.tmpl", "test_module.py.tmpl", "README.md.tmpl"} <= names


def test_scaffold_writes_a_complete_package(tmp_path: Path) -> None:
    root = scaffold("demo-bot", tmp_path)
    assert root == tmp_path / "shipmates-demo-bot"
    assert _files(root) == EXPECTED_FILES
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "$" not in text, f"unrendered placeholder in {path}"
            if path.suffix == ".py":
                compile(text, str(path), "exec")


def test_pyproject_declares_the_entry_point(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")
    root = scaffold("demo-bot", tmp_path)
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "shipmates-demo-bot"
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["project"]["dependencies"][0].startswith("shipmates>=")
    entry_points = project["project"]["entry-points"]["shipmates.agents"]
    assert entry_points == {"demo-bot": "shipmates_demo_bot:build_agent"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/shipmates_demo_bot"]


def test_readme_explains_install_run_test_and_publish(tmp_path: Path) -> None:
    readme = (scaffold("demo-bot", tmp_path) / "README.md").read_text(encoding="utf-8")
    for needle in (
        "pip install -e .",
        "shipmates chat --captain demo-bot",
        "python -m pytest",
        "twine upload",
    ):
        assert needle in readme


@pytest.mark.parametrize(
    ("name", "module"),
    [("fib2", "shipmates_fib2"), ("my-agent", "shipmates_my_agent"), ("Bot_X", "shipmates_Bot_X")],
)
def test_package_names(name: str, module: str) -> None:
    names = package_names(name)
    assert names["name"] == name
    assert names["dist"] == f"shipmates-{name}"
    assert names["module"] == module


@pytest.mark.parametrize(
    "name", ["", "has space", "x" * 65, "9lives", "-dash", "_under", "dot.ted", "ünï", "a/b"]
)
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(shipmates.InvalidNameError):
        scaffold(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_distribution_name_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(shipmates.InvalidNameError, match="'weather' creates shipmates-weather"):
        scaffold("shipmates-weather", tmp_path)


def test_refuses_to_overwrite_an_existing_package(tmp_path: Path) -> None:
    root = scaffold("demo-bot", tmp_path)
    module = root / "src/shipmates_demo_bot/__init__.py"
    module.write_text("# my work\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists") as info:
        scaffold("demo-bot", tmp_path)
    assert isinstance(info.value, shipmates.ShipmatesError)
    assert "force" in str(info.value)
    assert module.read_text(encoding="utf-8") == "# my work\n"


def test_force_rewrites_the_generated_files_and_keeps_others(tmp_path: Path) -> None:
    root = scaffold("demo-bot", tmp_path)
    module = root / "src/shipmates_demo_bot/__init__.py"
    module.write_text("# broken\n", encoding="utf-8")
    (root / "NOTES.txt").write_text("keep me\n", encoding="utf-8")
    assert scaffold("demo-bot", tmp_path, force=True) == root
    assert "def build_agent" in module.read_text(encoding="utf-8")
    assert (root / "NOTES.txt").read_text(encoding="utf-8") == "keep me\n"


def test_an_empty_existing_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "shipmates-demo-bot").mkdir()
    assert _files(scaffold("demo-bot", tmp_path)) == EXPECTED_FILES


def test_a_file_in_the_way_is_an_error_even_with_force(tmp_path: Path) -> None:
    (tmp_path / "shipmates-demo-bot").write_text("", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="a file with that name exists"):
        scaffold("demo-bot", tmp_path, force=True)


def test_default_directory_is_the_current_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert scaffold("demo-bot").resolve() == (tmp_path / "shipmates-demo-bot").resolve()
    nested = tmp_path / "a" / "b"
    assert scaffold("demo-bot", nested) == nested / "shipmates-demo-bot"


def test_next_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = next_steps(scaffold("demo-bot", Path("agents")))
    assert "'demo-bot'" in text
    assert f"cd {os.path.join('agents', 'shipmates-demo-bot')}" in text
    assert "install -e" in text
    assert "shipmates chat --captain demo-bot" in text
    assert "pytest" in text
    assert "force=True" not in text


def test_every_next_step_names_this_interpreters_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the venv on PATH, a bare `shipmates` or `python` would be another install's."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    text = next_steps(scaffold("demo-bot", tmp_path))
    bindir = str(Path(sys.executable).parent)
    steps = [
        line.strip()
        for line in text.splitlines()
        if line.startswith("  ") and not line.strip().startswith("cd ")
    ]
    assert steps and all(step.startswith(bindir) for step in steps), steps


def test_generated_code_is_ruff_clean(tmp_path: Path) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed")
    root = scaffold("demo-bot", tmp_path)
    for command in (["check", "--select", "E,F,W,I,B,UP,N,SIM,RUF"], ["format", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", "--target-version", "py311", "."],
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_generated_code_is_mypy_strict_clean(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    root = scaffold("demo-bot", tmp_path / "pkg")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "src", "tests"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def generated_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The generated module, imported in-process from its src directory."""
    root = scaffold("demo-bot", tmp_path)
    monkeypatch.syspath_prepend(str(root / "src"))
    monkeypatch.setenv("SHIPMATES_MODEL", "offline")
    try:
        yield importlib.import_module("shipmates_demo_bot")
    finally:
        sys.modules.pop("shipmates_demo_bot", None)


def test_generated_provider_builds_a_working_sibling(generated_module: object) -> None:
    agent = generated_module.build_agent()  # type: ignore[attr-defined]
    assert shipmates.is_sibling(agent)
    assert agent.name == "demo-bot"
    assert "49" in agent.invoke("square 7")


def test_generated_tests_pass_in_process(generated_module: object, tmp_path: Path) -> None:
    root = tmp_path / "shipmates-demo-bot"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


# -- end to end: a user's whole journey in a fresh venv, no network ------------------------------


def _pip_into(venv: Any, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv.python), "install", "-q", "--no-index", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**venv.env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _assert_discovered_and_used(venv: Any, name: str) -> None:
    proc = venv.run_command([venv.bin / "shipmates", "agents", "--json"], check=True, timeout=60)
    [row] = [row for row in json.loads(proc.stdout) if row["name"] == name]
    assert (row["status"], row["distribution"], row["version"]) == ("ok", f"shipmates-{name}", "0.1.0")
    # The general captain discovers it and delegates a turn to it ...
    proc = venv.run_command([venv.bin / "shipmates", "--once", "square 7"], check=True, timeout=60)
    assert proc.stdout == "49\n"
    # ... and it can be the captain itself.
    proc = venv.run_command(
        [venv.bin / "shipmates", "chat", "--captain", name, "--once", "square 12"], check=True, timeout=60
    )
    assert proc.stdout == "144\n"


@pytest.mark.slow
def test_new_then_editable_install_then_discovered_and_its_tests_pass(
    throwaway_venv: Callable[..., Any], tmp_path: Path
) -> None:
    venv = throwaway_venv()  # shipmates from its wheel: the templates must ship in it
    work = tmp_path / "work"
    proc = venv.run_command([venv.bin / "shipmates", "new", "weather", "--dir", work], check=True, timeout=60)
    root = work / "shipmates-weather"
    assert "shipmates chat --captain weather" in proc.stdout
    assert (root / "pyproject.toml").is_file()

    # What the README says: pip install -e . (offline here: no index, no build isolation).
    _pip_into(venv, "--no-deps", "--no-build-isolation", "-e", str(root))
    _assert_discovered_and_used(venv, "weather")

    # The generated test passes in that environment, against the installed package.
    proc = venv.run_command(
        [venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout

    # Edits to the editable package show up on the next start.
    module = root / "src" / "shipmates_weather" / "__init__.py"
    module.write_text(module.read_text().replace("return n * n", "return n * n + 1"))
    proc = venv.run_command([venv.bin / "shipmates", "--once", "square 7"], check=True, timeout=60)
    assert proc.stdout == "50\n"


@pytest.mark.slow
def test_new_package_builds_a_wheel_that_installs_and_works(
    throwaway_venv: Callable[..., Any], wheel_builder: Any, tmp_path: Path
) -> None:
    root = scaffold("tide-table", tmp_path)
    [wheel] = wheel_builder.build(root, cached=False)
    assert wheel.name == "shipmates_tide_table-0.1.0-py3-none-any.whl"
    venv = throwaway_venv(wheel)
    assert (venv.site_packages / "shipmates_tide_table" / "py.typed").is_file()
    _assert_discovered_and_used(venv, "tide-table")
    proc = venv.run_command(
        [venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", root / "tests"], cwd=root, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
