"""One selection policy (Selector) and one entry-point loader, shared by siblings and plugins."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from shipmates import selector_matches
from shipmates._crew._loader import EntryPointError, load_entry_point
from shipmates._crew._selector import Selector, parse_names


def test_unset_allow_variable_allows_everything_and_empty_allows_nothing() -> None:
    assert Selector.from_env("A", "D", environ={}).allows("fib", "shipmates-fib")
    nothing = Selector.from_env("A", "D", environ={"A": ""})
    assert nothing.allow == frozenset()
    assert nothing.exclusion("fib") == "the allow-list (A) is empty"


def test_names_distributions_and_origins() -> None:
    s = Selector.from_env("A", "D", environ={"A": " fib , Shipmates_Echo,remote:*", "D": "local:echo"})
    assert s.allow == {"fib", "Shipmates_Echo", "remote:*"}
    assert s.allows("fib")
    assert s.allows("echo-2", "shipmates-echo")  # distribution, PEP 503 normalised
    assert s.exclusion("echo", "shipmates-echo") == "excluded by the deny-list (D)"
    assert s.allows("anything", None, "remote")
    assert s.exclusion("other", "shipmates-other") == "not in the allow-list (A)"
    assert s.exclusion("echo", "shipmates-echo", "remote") is None  # the deny token is local only
    s2 = Selector(deny=parse_names("local:echo"), deny_label="D")
    assert s2.exclusion("echo") == "excluded by the deny-list (D)"
    assert s2.denies("echo") and not s2.denies("echo", None, "remote")


def test_selector_matches_is_the_same_rule() -> None:
    cases = [
        ("fib", "fib", None, "entry-point"),
        ("remote:fib", "fib", None, "entry-point"),
        ("local:*", "x", None, "plugin"),
        ("shipmates.fib", "f", "shipmates-fib", "remote"),
        ("", "x", None, ""),
    ]
    for token, name, dist, origin in cases:
        assert selector_matches(token, name, dist, origin) == Selector.match(token, name, dist, origin)
    assert selector_matches("shipmates.fib", "f", "Shipmates_Fib")
    assert not selector_matches("remote:fib", "fib", None)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "sm_loader_ok.py").write_text("class A:\n    class B:\n        value = 42\n")
    (tmp_path / "sm_loader_boom.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("sm_loader_ok", "sm_loader_boom"):
        sys.modules.pop(name, None)


def test_loads_nested_attributes(modules: Path) -> None:
    assert load_entry_point("sm_loader_ok:A.B").value == 42
    assert load_entry_point("sm_loader_ok").__name__ == "sm_loader_ok"


@pytest.mark.parametrize(
    ("value", "kind", "text", "fix"),
    [
        ("sm_loader_gone.mod:x", "missing", "module 'sm_loader_gone.mod' is not installed", "reinstall dist"),
        ("sm_loader_boom:x", "raised", "importing 'sm_loader_boom' raised RuntimeError: boom", "fix dist"),
        ("sm_loader_ok:A.C", "attribute", "has no attribute 'C'", "fix the entry point ep in dist 1.0"),
        ("not a value!", "malformed", "malformed entry point value", "fix the entry point ep in dist 1.0"),
    ],
)
def test_one_set_of_failure_reasons(modules: Path, value: str, kind: str, text: str, fix: str) -> None:
    with pytest.raises(EntryPointError) as info:
        load_entry_point(value)
    assert info.value.kind == kind and text in str(info.value)
    reason = info.value.reason(entry="ep", source="dist 1.0", hint="or leave it out")
    assert fix in reason and reason.endswith("or leave it out") and "\n" not in reason
    assert info.value.__cause__ is not None
