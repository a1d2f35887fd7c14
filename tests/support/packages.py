"""Source trees of small distributions (siblings, pluggy plugins) generated from a short spec."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

AGENTS = "shipmates.agents"
PLUGINS = "shipmates.plugins"

SIBLING_CODE = '''\
"""Generated test sibling {name!r}."""


class Sibling:
    name = {name!r}
    description = {description!r}

    def invoke(self, query: str) -> str:
        return {reply!r}.format(query=query)


def build_agent():
    return Sibling()
'''


@dataclass
class PackageSpec:
    """A distribution to generate: one module plus entry points, built by hatchling."""

    dist: str
    module: str
    version: str = "0.1.0"
    code: str = ""
    """Source of ``<module>/__init__.py``."""
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    """``{group: {name: "module:attr"}}``."""
    dependencies: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    """Extra files inside the module directory, by relative path."""

    @property
    def normalized(self) -> str:
        return re.sub(r"[-_.]+", "-", self.dist).lower()


def _module_name(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower()


def sibling_spec(
    name: str,
    *,
    dist: str | None = None,
    module: str | None = None,
    version: str = "0.1.0",
    code: str | None = None,
    attr: str = "build_agent",
    value: str | None = None,
    description: str | None = None,
    reply: str | None = None,
    dependencies: list[str] | None = None,
) -> PackageSpec:
    """A sibling distribution: by default a plain object whose ``invoke`` replies ``"<name> got: <query>"``.

    ``code`` replaces the module source (``{name}`` etc. are not formatted in it); ``value``
    replaces the whole entry-point value (to point at a missing module, say).
    """
    module = module or f"shipmates_{_module_name(name)}"
    dist = dist or f"shipmates-{_module_name(name).replace('_', '-')}"
    if code is None:
        code = SIBLING_CODE.format(
            name=name,
            description=description or f"The {name} test sibling: echoes what it is asked about {name}.",
            reply=reply or (name + " got: {query}"),
        )
    return PackageSpec(
        dist,
        module,
        version,
        textwrap.dedent(code),
        {AGENTS: {name: value or f"{module}:{attr}"}},
        list(dependencies or []),
    )


def plugin_spec(
    name: str,
    code: str,
    *,
    dist: str | None = None,
    module: str | None = None,
    version: str = "0.1.0",
    value: str | None = None,
) -> PackageSpec:
    """A pluggy plugin distribution: ``code`` is its module (use ``from shipmates import hookimpl``)."""
    module = module or f"shipmates_plugin_{_module_name(name)}"
    dist = dist or f"shipmates-plugin-{_module_name(name).replace('_', '-')}"
    return PackageSpec(dist, module, version, textwrap.dedent(code), {PLUGINS: {name: value or module}})


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_project(spec: PackageSpec, root: Path) -> Path:
    """Write a hatchling project for ``spec`` under ``root/<dist>-<version>``; returns its directory."""
    project = root / f"{spec.normalized}-{spec.version}"
    package = project / "src" / spec.module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(spec.code)
    for rel, text in spec.files.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text)
    lines = [
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        f"name = {_toml(spec.dist)}",
        f"version = {_toml(spec.version)}",
        'requires-python = ">=3.10"',
        f"dependencies = [{', '.join(_toml(d) for d in spec.dependencies)}]",
    ]
    for group, eps in spec.entry_points.items():
        lines += ["", f"[project.entry-points.{_toml(group)}]"]
        lines += [f"{_toml(name)} = {_toml(value)}" for name, value in eps.items()]
    lines += ["", "[tool.hatch.build.targets.wheel]", f'packages = ["src/{spec.module}"]']
    lines += ['dev-mode-dirs = ["src"]  # editable installs through a .pth file, no "editables" needed', ""]
    (project / "pyproject.toml").write_text("\n".join(lines))
    return project


def write_dist_info(spec: PackageSpec, site: Path) -> Path:
    """Install ``spec`` by hand into the directory ``site``: its module and a ``*.dist-info``.

    What pip would produce, minus the wheel: enough for importlib.metadata and imports, fast
    enough for in-process tests.
    """
    package = site / spec.module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(spec.code)
    for rel, text in spec.files.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text)
    info = site / f"{_module_name(spec.dist)}-{spec.version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {spec.dist}\nVersion: {spec.version}\n")
    sections = []
    for group, eps in spec.entry_points.items():
        sections.append(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()))
    (info / "entry_points.txt").write_text("\n".join(sections))
    (info / "RECORD").write_text(f"{spec.module}/__init__.py,,\n{info.name}/METADATA,,\n")
    (info / "INSTALLER").write_text("shipmates-tests\n")
    return info
