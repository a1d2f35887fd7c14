"""Fixtures of the core tests: hand-made distributions (``fake_site``) and the wheel/venv kit.

The isolation every test runs under (temp ``SHIPMATES_HOME``, no autoloaded plugins or agents,
caches reset; the ``autoload`` fixture to opt back in) is shared with the demo crew's and the
plugins' tests: see tests/support/isolation.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    PackageSpec,
    Venv,
    WheelBuilder,
    create_venv,
    make_overlay,
    sibling_spec,
    write_dist_info,
    write_project,
)


class FakeSite:
    """A directory of hand-made distributions (module + ``*.dist-info``), prepended to ``sys.path``.

    ``discover(path=[site.path])`` sees exactly these; their modules import through ``sys.path``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.modules: list[str] = []

    def add(self, spec: PackageSpec) -> PackageSpec:
        write_dist_info(spec, self.path)
        self.modules.append(spec.module)
        return spec

    def sibling(self, name: str, **kwargs: Any) -> PackageSpec:
        """Add a sibling distribution (arguments as :func:`support.sibling_spec`)."""
        return self.add(sibling_spec(name, **kwargs))

    def discover(self, **kwargs: Any) -> Any:
        from shipmates import discover

        kwargs.setdefault("path", [str(self.path)])
        return discover(**kwargs)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A :class:`FakeSite` on ``sys.path`` with ``SHIPMATES_AGENTS`` unset; its modules unloaded after."""
    site = FakeSite(tmp_path / "site-packages")
    site.path.mkdir()
    monkeypatch.syspath_prepend(str(site.path))
    monkeypatch.delenv("SHIPMATES_AGENTS", raising=False)
    yield site
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in site.modules):
            del sys.modules[name]


@pytest.fixture(scope="session")
def wheel_builder(tmp_path_factory: pytest.TempPathFactory) -> WheelBuilder:
    """Builds wheels once per session: ``.build(*project_dirs)``, ``.shipmates()``, ``.demo("fib")``."""
    return WheelBuilder(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def shipmates_wheel(wheel_builder: WheelBuilder) -> Path:
    """The wheel of this checkout's shipmates (built once per session)."""
    return wheel_builder.shipmates()


@pytest.fixture(scope="session")
def site_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev venv's site-packages without shipmates, shipmates plugins/agents and ``.pth`` files."""
    return make_overlay(tmp_path_factory.mktemp("overlay") / "site-packages")


@pytest.fixture
def make_sibling_package(tmp_path: Path) -> Callable[..., Path]:
    """``make_sibling_package(name, **spec_kwargs)`` or ``make_sibling_package(spec)`` -> project dir."""
    root = tmp_path / "projects"

    def make(name_or_spec: str | PackageSpec, **kwargs: Any) -> Path:
        spec = name_or_spec if isinstance(name_or_spec, PackageSpec) else sibling_spec(name_or_spec, **kwargs)
        return write_project(spec, root)

    return make


@pytest.fixture
def throwaway_venv(tmp_path: Path, site_overlay: Path, request: pytest.FixtureRequest) -> Callable[..., Venv]:
    """``throwaway_venv(*wheels, shipmates=True)`` -> a fresh :class:`support.Venv` with them installed.

    Third-party dependencies come from the overlay; nothing else shipmates-related is visible.
    """
    count = 0

    def make(*wheels: Path, shipmates: bool = True) -> Venv:
        nonlocal count
        count += 1
        venv = create_venv(tmp_path / f"venv{count}", overlay=site_overlay)
        # The shipmates wheel is built on first need only (once per session).
        venv.install(*([request.getfixturevalue("shipmates_wheel")] if shipmates else []), *wheels)
        return venv

    return make
