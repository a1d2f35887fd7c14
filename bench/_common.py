"""Small timing helpers shared by the bench scripts (standard library only).

Every benchmark interleaves its variants (A B C, then C B A, ...), repeats them, and keeps every
sample so the report can show the median and the minimum. Child scripts that run inside another
environment print one JSON object on their last stdout line; `last_json` reads it back.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """All samples of one variant, in seconds."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "median": self.median, "min": self.min, "n": len(self.values)}


def paired_ratio(a: Samples, b: Samples) -> float:
    """Median over rounds of a[i] / b[i]: each ratio compares samples taken moments apart, so a
    load that drifts during the run (a shared machine) cancels out better than in median / median."""
    ratios = [x / y for x, y in zip(a.values, b.values, strict=False) if y > 0]
    return statistics.median(ratios) if ratios else float("nan")


def interleave(
    variants: Mapping[str, Callable[[], float | None]],
    rounds: int,
    warmup: int = 1,
) -> dict[str, Samples]:
    """Run each variant once per round, alternating the order every round (A B C, C B A, ...).

    A variant returns the duration of its sample in seconds (or None to measure the call itself).
    `warmup` rounds run first and are thrown away (they fill the OS page cache and .pyc files).
    """
    names = list(variants)
    samples = {name: Samples(name) for name in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            value = variants[name]()
            elapsed = time.perf_counter() - t0 if value is None else value
            if r >= warmup:
                samples[name].values.append(elapsed)
    return samples


def run_process(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    check: bool = True,
    timeout: float = 300.0,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command to completion; returns (wall seconds, completed process)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
        )
    return elapsed, proc


def last_json(text: str) -> Any:
    """The JSON object printed on the last non-empty line of a child's stdout."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output:\n{text[-2000:]}")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without shipmates/Python variables that would skew a run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPMATES_", "PYTHON", "VIRTUAL_ENV", "LITELLM", "OPENAI_", "NATS_"))
    }
    if extra:
        env.update(extra)
    return env


def fmt_s(seconds: float) -> str:
    """Human units: 12.3 ms, 456 us, 1.23 s."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"
