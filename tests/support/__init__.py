"""The test-support kit: generated sibling packages, real wheels, throwaway venvs (see tests/conftest.py),
waiting with a deadline; ``support.isolation`` is the pytest plugin every test runs under."""

from .packages import (
    AGENTS,
    PLUGINS,
    PackageSpec,
    plugin_spec,
    sibling_spec,
    write_dist_info,
    write_project,
)
from .venvs import Venv, create_venv, dev_site_packages, make_overlay
from .waiting import until, wait_for
from .wheels import REPO_ROOT, WheelBuilder, build_wheels

__all__ = [
    "AGENTS",
    "PLUGINS",
    "REPO_ROOT",
    "PackageSpec",
    "Venv",
    "WheelBuilder",
    "build_wheels",
    "create_venv",
    "dev_site_packages",
    "make_overlay",
    "plugin_spec",
    "sibling_spec",
    "until",
    "wait_for",
    "write_dist_info",
    "write_project",
]
