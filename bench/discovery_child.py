"""One discovery sample in a fresh process (run by bench/run.py with the shipmates env's python).

    python bench/discovery_child.py VARIANT SITE_DIR

Only SITE_DIR and the standard library are on ``sys.path``, so every variant sees exactly the
distributions in SITE_DIR. The environment's own site-packages stays importable through a
meta-path finder that lists no distributions (so shipmates, pluggy and importlib_metadata can
be imported without their ~70 neighbours joining the scan).

Prints one JSON line: {"variant", "count", "total", "call"} where total = import of what the
variant needs + the call, and call = the call alone (seconds, measured in-process).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
import sysconfig
import time

GROUP = "shipmates.agents"


class _EnvFinder:
    """Finds modules in the environment's site-packages without exposing its distributions."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if path is not None:  # submodules: their package's __path__ does the work
            return None
        return importlib.machinery.PathFinder.find_spec(name, self.paths)


def main() -> None:
    variant, site = sys.argv[1], sys.argv[2]
    env_site = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and "site-packages" not in p and os.path.abspath(p) != here]
    sys.path[:] = [*stdlib, site]
    sys.meta_path.append(_EnvFinder(env_site))
    importlib.invalidate_caches()

    if variant == "pluggy":  # untimed: the framework the sibling modules import (see README)
        import shipmates._run._agent
        import shipmates._run._tool

    t0 = time.perf_counter()
    if variant == "stdlib":
        import importlib.metadata as md

        t1 = time.perf_counter()
        names = {ep.name: "" for ep in md.entry_points(group=GROUP)}
    elif variant == "backport":
        import importlib_metadata as md  # type: ignore[no-redef]

        t1 = time.perf_counter()
        names = {ep.name: "" for ep in md.entry_points(group=GROUP)}
    elif variant == "pluggy":
        import pluggy

        t1 = time.perf_counter()
        pm = pluggy.PluginManager("bench")
        pm.load_setuptools_entrypoints(GROUP)
        names = {name: "" for name, _ in pm.list_name_plugin()}
    elif variant in ("shipmates-cold", "shipmates-warm", "shipmates-list"):
        import shipmates

        t1 = time.perf_counter()
        records = shipmates.discover(load=False).records
        names = {r.name: r.provenance.version for r in records}
    else:
        raise SystemExit(f"unknown variant {variant}")
    t2 = time.perf_counter()
    out = {"variant": variant, "count": len(names), "total": t2 - t0, "call": t2 - t1}
    if variant == "shipmates-list":
        out["agents"] = names
    print(json.dumps(out))


if __name__ == "__main__":
    main()
