"""Small helpers shared by the NATS test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def settings(url: str, namespace: str = "shipmates", **kw: Any) -> Any:
    from shipmates_nats import NatsSettings

    return NatsSettings(url=url, namespace=namespace, **kw)


def noted(journal: Path, prefix: str) -> list[str]:
    """The lines of the served siblings' journal that start with ``prefix`` (none before the first)."""
    try:
        text = journal.read_text()
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.startswith(prefix)]
