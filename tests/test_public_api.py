"""``shipmates.__all__``, the lazy import map and the type-checking imports agree.

``shipmates/__init__.py`` names each lazily imported public name three times: in ``__all__``,
in ``_LAZY`` (name -> module, imported on first attribute access) and in the
``if TYPE_CHECKING:`` imports (what type checkers and editors see). Adding a name to one and
not the others is easy; these tests say which one was forgotten.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import shipmates

INIT = Path(shipmates.__file__)


def _type_checking_imports() -> dict[str, str]:
    """``{name: module}`` imported under ``if TYPE_CHECKING:`` (module relative to the package)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"), str(INIT))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "expected one top-level `if TYPE_CHECKING:` block"
    imported: dict[str, str] = {}
    for stmt in blocks[0].body:
        assert isinstance(stmt, ast.ImportFrom), f"line {stmt.lineno}: only `from .x import y` belongs here"
        assert stmt.level == 1 and stmt.module, f"line {stmt.lineno}: import relative to the package"
        for alias in stmt.names:
            assert alias.asname in (None, alias.name), f"line {stmt.lineno}: {alias.name} is renamed"
            assert alias.name not in imported, f"{alias.name} is imported twice"
            imported[alias.name] = stmt.module
    return imported


def test_every_lazy_name_is_public() -> None:
    missing = sorted(set(shipmates._LAZY) - set(shipmates.__all__))
    assert not missing, f"in _LAZY but not in __all__: {missing}"


def test_type_checking_imports_are_exactly_the_lazy_names_from_the_same_modules() -> None:
    assert _type_checking_imports() == shipmates._LAZY


def test_lazy_names_are_not_also_imported_eagerly() -> None:
    tree = ast.parse(INIT.read_text(encoding="utf-8"), str(INIT))
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    eager = {alias.asname or alias.name for node in imports for alias in node.names}
    both = sorted(eager & set(shipmates._LAZY))
    assert not both, f"imported at module level and lazily: {both}"


def test_no_public_name_is_listed_twice() -> None:
    twice = sorted({name for name in shipmates.__all__ if shipmates.__all__.count(name) > 1})
    assert not twice, f"listed twice in __all__: {twice}"


@pytest.mark.parametrize("name", shipmates.__all__)
def test_every_public_name_imports(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from shipmates import {name}", namespace)
    assert namespace[name] is getattr(shipmates, name)
    assert name in dir(shipmates)


@pytest.mark.parametrize(("name", "module"), sorted(shipmates._LAZY.items()))
def test_lazy_name_comes_from_its_module(name: str, module: str) -> None:
    assert getattr(shipmates, name) is getattr(importlib.import_module(f"shipmates.{module}"), name)


def test_lazy_names_resolve_in_a_fresh_interpreter() -> None:
    """Where nothing else has imported the private modules yet (the in-process tests cannot tell)."""
    code = "import shipmates\nfor name in shipmates.__all__:\n    getattr(shipmates, name)\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
