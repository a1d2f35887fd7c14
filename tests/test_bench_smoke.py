"""Smoke test of the benchmark harness (bench/): the pieces work, nothing is timed or judged."""

from __future__ import annotations

import asyncio
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import gen_dists  # noqa: E402


def test_interleave_alternates_order_and_drops_warmup() -> None:
    calls: list[str] = []
    res = _common.interleave(
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 3.0}, rounds=2, warmup=1
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert res["a"].values == [1.0, 1.0] and res["b"].median == 3.0 and res["b"].min == 3.0


def test_generated_distributions_are_real_distributions(tmp_path: Path) -> None:
    gen_dists.generate(tmp_path, total=12, siblings=3)
    dists = list(importlib.metadata.distributions(path=[str(tmp_path)]))
    assert len(dists) == 12
    eps = {ep.name: ep.value for d in dists for ep in d.entry_points if ep.group == "shipmates.agents"}
    assert eps == {f"sib{i:04d}": f"bench_sib_{i:04d}:make_agent" for i in range(3)}
    gen_dists.remove_sibling(tmp_path, 1)
    gen_dists.add_sibling(tmp_path, 1, version="2.0.0")
    versions = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions(path=[str(tmp_path)])}
    assert versions["bench-sib-0001"] == "2.0.0"


def test_discovery_child_sees_only_its_directory(tmp_path: Path) -> None:
    gen_dists.generate(tmp_path, total=10, siblings=2)
    out = subprocess.run(
        [sys.executable, "-I", str(BENCH / "discovery_child.py"), "stdlib", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    data = _common.last_json(out)
    assert data["variant"] == "stdlib" and data["count"] == 2


def test_delegation_script_direct_and_shipmates() -> None:
    import delegation

    assert delegation.measure("direct", runs=2, warmup=0)["output"] == "pong"
    pytest.importorskip("shipmates._run._agent")
    result = delegation.measure("shipmates", runs=2, warmup=1)
    assert result["output"] == "pong" and len(result["times"]) == 2


def test_fanout_script_runs_every_sibling() -> None:
    pytest.importorskip("shipmates._run._agent")
    import fanout

    for variant in ("sync", "async"):
        result = asyncio.run(fanout.measure(variant, runs=1, width=3, sleep=0.01))
        assert result["output"] == "sleeper0,sleeper1,sleeper2"


def test_runner_help() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "--quick" in out and "RESULTS.md" in out
