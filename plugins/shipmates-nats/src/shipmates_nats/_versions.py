"""Version ranges a captain requires of remote siblings: ``chat --require``, else
``SHIPMATES_REQUIRE``, else the config file's ``[agents] require`` (a list).

``--require "fib>=1.2,<2 shipmates-echo~=3.0"``: entries separated by spaces or ``;``, each a
sibling name or a distribution (optionally ``remote:``) followed by a PEP 440 specifier set.
Replicas whose version is outside the range are never called; each is reported once.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from shipmates.plugin import agent_selector, selector_matches

REQUIRE_ENV = "SHIPMATES_REQUIRE"
WHERE = f"--require, {REQUIRE_ENV} or the config file's [agents] require"
_ENTRY = re.compile(r"^([A-Za-z0-9_.*:-]+?)\s*((?:[<>=!~]=?|===).*)$")
chat_require: dict[str, str | None] = {"ranges": None}
"""``shipmates chat --require RANGES`` (wins over the environment and the config file)."""


def use_chat_require(ranges: str) -> None:
    """``chat --require``: checked now, applied to every scan from here on."""
    requirements(ranges)
    chat_require["ranges"] = ranges


def requirements(raw: str | None = None) -> list[tuple[str, SpecifierSet]]:
    """The parsed version ranges (or ``raw``); raises ValueError naming a bad entry."""
    text = raw if raw is not None else chat_require["ranges"]
    if text is None:
        text = ";".join(agent_selector().required())
    found: list[tuple[str, SpecifierSet]] = []
    for entry in re.split(r"[\s;]+", text.strip()):
        if not entry:
            continue
        match = _ENTRY.match(entry)
        try:
            if match is None:
                raise InvalidSpecifier(entry)
            found.append((match.group(1), SpecifierSet(match.group(2))))
        except InvalidSpecifier:
            raise ValueError(
                f"version range {entry!r} ({WHERE}) is not NAME followed by a version range "
                "(e.g. 'fib>=1.2,<2')"
            ) from None
    return found


def required(
    name: str, distribution: str | None, parsed: list[tuple[str, SpecifierSet]] | None = None
) -> SpecifierSet | None:
    """The range the replicas of ``name`` (from ``distribution``) must be in, or None
    (``parsed``: :func:`requirements`, when the caller has them already)."""
    every = requirements() if parsed is None else parsed
    ranges = [spec for token, spec in every if selector_matches(token, name, distribution, "remote")]
    if not ranges:
        return None
    combined = SpecifierSet()
    for spec in ranges:
        combined &= spec
    return combined


def satisfies(version: str | None, spec: SpecifierSet) -> bool:
    """Whether ``version`` is in ``spec`` (an unknown or unparsable version is not)."""
    try:
        return Version(version or "") in spec
    except InvalidVersion:
        return False
