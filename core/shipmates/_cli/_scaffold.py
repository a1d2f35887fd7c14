"""``shipmates new``: write a new sibling agent package from the templates in ``_template/``.

The generated package is complete and installable: a pyproject with the
``shipmates.agents`` entry point, a src-layout module with a provider and one example
typed tool, ``py.typed``, a README and a test that uses only the public API.
Templates are plain :class:`string.Template` files (``$name`` placeholders, ``$$`` for a
literal dollar), so no template engine is needed.
"""

from __future__ import annotations

import keyword
import os
import re
import string
from importlib import resources
from pathlib import Path

from .. import __version__
from .._errors import ShipmatesError
from .._names import check_name

__all__ = ["ScaffoldError", "next_steps", "package_names", "scaffold"]

DIST_PREFIX = "shipmates-"
MODULE_PREFIX = "shipmates_"


class ScaffoldError(ShipmatesError):
    """The package cannot be written (for example its directory already exists)."""


def package_names(name: str) -> dict[str, str]:
    """Validate an agent name and return the names derived from it.

    Keys: ``name`` (the agent and entry-point name), ``dist`` (``shipmates-<name>``),
    ``module`` (``shipmates_<name>`` with ``-`` turned into ``_``), ``module_suffix``,
    ``test_file``, ``wheel_name``. Raises :class:`~shipmates.InvalidNameError`.
    """
    from .._errors import InvalidNameError

    check_name(name, what="agent")
    if name.lower().startswith((DIST_PREFIX, MODULE_PREFIX)):
        bare = name[len(DIST_PREFIX) :]
        raise InvalidNameError(
            f"invalid agent name {name!r}: give the agent's name, not the distribution's "
            f"('{bare}' creates {DIST_PREFIX}{bare})"
        )
    suffix = name.replace("-", "_")
    module = MODULE_PREFIX + suffix
    if not name[0].isalpha():
        raise InvalidNameError(f"invalid agent name {name!r}: start it with a letter, for example 'my_agent'")
    if not module.isidentifier() or keyword.iskeyword(suffix):
        raise InvalidNameError(f"invalid agent name {name!r}: {module!r} is not a valid Python module name")
    return {
        "name": name,
        "dist": DIST_PREFIX + name,
        "module": module,
        "module_suffix": suffix,
        "test_file": f"test_{suffix}.py",
        "wheel_name": module,
    }


def _requirement() -> str:
    """``shipmates>=MAJOR.MINOR`` of the running shipmates (what the templates were written for)."""
    major_minor = ".".join(__version__.split(".")[:2])
    return f"shipmates>={major_minor}"


def _render(template: str, values: dict[str, str]) -> str:
    folder = resources.files("shipmates._cli").joinpath("_template")
    source = folder.joinpath(template).read_text(encoding="utf-8")
    return string.Template(source).substitute(values)


def scaffold(name: str, directory: Path | str | None = None, *, force: bool = False) -> Path:
    """Write the package ``shipmates-<name>`` into ``directory`` (default: the current one).

    Returns the package's root, ``directory / "shipmates-<name>"``. Refuses an existing,
    non-empty root unless ``force`` (which overwrites the generated files and keeps any
    others). Raises :class:`~shipmates.InvalidNameError` for a bad name and
    :class:`ScaffoldError` when the package cannot be written.
    """
    values = package_names(name)
    values["shipmates_requirement"] = _requirement()
    values["captain"] = "skipper" if name == "captain" else "captain"
    parent = Path.cwd() if directory is None else Path(directory)
    root = parent / values["dist"]
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"cannot create {root}: a file with that name exists")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ScaffoldError(
            f"{root} already exists and is not empty; choose another name or --dir, "
            "or pass --force (force=True from Python) to rewrite the generated files"
        )
    module = values["module"]
    files = {
        "pyproject.toml": _render("pyproject.toml.tmpl", values),
        "README.md": _render("README.md.tmpl", values),
        ".gitignore": _render("gitignore.tmpl", values),
        f"src/{module}/__init__.py": _render("module.py.tmpl", values),
        f"src/{module}/py.typed": "",
        f"tests/{values['test_file']}": _render("test_module.py.tmpl", values),
    }
    try:
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ScaffoldError(f"cannot write the package into {root}: {exc}") from exc
    return root


_ENTRY_POINT_RE = re.compile(
    r'^\[project\.entry-points\."shipmates\.agents"\]\s*\n\s*([A-Za-z0-9_-]+)\s*=', re.MULTILINE
)


def _command(name: str) -> str:
    """``name`` when the shell finds this interpreter's own ``name`` on PATH (an activated venv),
    else its full path, so every printed command runs as printed."""
    import shutil
    import sys

    own = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found is not None and Path(found) == own:
        return name
    return (
        str(own) if own.exists() else f"{sys.executable} -m {name}" if name == "shipmates" else sys.executable
    )


def next_steps(path: Path | str) -> str:
    """What to do after :func:`scaffold`: install, list, chat, test, as a printable block."""
    root = Path(path)
    name = root.name.removeprefix(DIST_PREFIX)
    try:
        match = _ENTRY_POINT_RE.search((root / "pyproject.toml").read_text(encoding="utf-8"))
    except OSError:
        match = None
    if match:
        name = match.group(1)
    try:
        shown = os.path.relpath(root)
    except ValueError:  # another drive on Windows
        shown = str(root)
    if shown.startswith(".."):
        shown = str(root)
    shipmates, python = _command("shipmates"), _command("python")
    return "\n".join(
        [
            f"Created the sibling agent {name!r} in {shown}",
            "",
            "Next steps (with the Python that runs shipmates):",
            f"  cd {shown}",
            f'  {shipmates} install -e ".[test]"     # install it (editable) with pytest',
            f"  {shipmates} agents                   # {name} is listed",
            f"  {shipmates} chat --captain {name}    # talk to it; try: square 7",
            f"  {python} -m pytest                   # run its tests",
            "",
            "Then replace the example tool in "
            f"src/{MODULE_PREFIX}{name.replace('-', '_')}/__init__.py with your own.",
        ]
    )
