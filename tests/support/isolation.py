"""The one isolation every test in the repository runs under (a pytest plugin).

Loaded for every test path (``tests``, ``demo_agents``, ``plugins``) by the repository's root
``conftest.py``, so core, the demo crew and shipmates-nats share it instead of each keeping a copy.

Every test runs with ``SHIPMATES_HOME`` in a fresh temp dir, ``SHIPMATES_PLUGINS=""`` and
``SHIPMATES_AGENTS=""`` (the developer's installed plugins and agents are never autoloaded),
every other ``SHIPMATES_*`` variable removed (so the model is ``DEFAULT_MODEL``, the offline
router), and the discovery, plugin and model caches reset before and after.
Opt back in to installed plugins and agents with the ``autoload`` fixture; a test directory
that needs a plugin (shipmates-nats) sets ``SHIPMATES_PLUGINS`` in a fixture of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def reset_shipmates_caches() -> None:
    """Forget what this process discovered: entry-point scan, plugin manager, model registry."""
    from shipmates.plugin import reset_plugins

    reset_plugins()


@pytest.fixture(autouse=True)
def _isolate_shipmates(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    for var in list(os.environ):
        if var.startswith(("SHIPMATES_", "OTEL_EXPORTER_OTLP_")):  # the latter turn OpenTelemetry on
            monkeypatch.delenv(var)
    monkeypatch.setenv("SHIPMATES_HOME", str(tmp_path_factory.mktemp("shipmates-home")))
    monkeypatch.setenv("SHIPMATES_PLUGINS", "")
    monkeypatch.setenv("SHIPMATES_AGENTS", "")
    reset_shipmates_caches()
    yield
    reset_shipmates_caches()


@pytest.fixture
def autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this test see the plugins and agents installed in the running interpreter."""
    monkeypatch.delenv("SHIPMATES_PLUGINS", raising=False)
    monkeypatch.delenv("SHIPMATES_AGENTS", raising=False)
    reset_shipmates_caches()
