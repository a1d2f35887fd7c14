"""``shipmates up``: keep a crew's ``serve`` workers running.

One supervisor process per crew holds ``<state dir>/crews/<crew>/up.pid`` locked (``flock``: a
second ``up`` is refused with the running PID, a pidfile nobody holds is stale and taken over).
It starts one ``shipmates serve --only NAME`` per replica, with the crew's NATS settings (URL,
namespace, credential *file* references: never a secret on a command line) and the sibling's model
and environment, and logs each worker's output to ``logs/<worker>.log`` (rotated).

Health is the process and its heartbeat on NATS: a worker that exits, or whose heartbeat is
silent for ``silent_after``, is restarted after an exponential backoff (``backoff`` doubling up to
``backoff_max``; reset after ``healthy_reset`` of serving); more than ``max_restarts`` restarts in
``window`` mark the sibling ``degraded`` and it is not restarted again (until a reload or a new ``up``).

Control (all user-only, in the crew directory): the supervisor writes ``state.json`` (what
``shipmates status`` shows) several times a second; ``shipmates scale`` writes ``scale.json`` and
sends SIGUSR1; SIGHUP rereads the crew file (replicas, environment, budget); SIGTERM (``shipmates
down``) drains every worker (SIGTERM), then SIGKILLs what is left after ``kill_after``.
Scaling down drains idle workers first; a changed environment starts new workers first and then
drains the old ones, so no in-flight call is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._crewfile import Crew, SiblingPlan, load_crew
from ._errors import NatsSetupError
from ._heartbeat import CREW_ENV, INTERVAL_ENV, WORKER_ENV, control_subject, heartbeat_subject

log = logging.getLogger("shipmates_nats.up")
TICK = 0.1
STATE_EVERY = 0.3
START_TIMEOUT = 60.0
"""A worker with no heartbeat this long after it started is killed and restarted."""
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3


def crews_dir() -> Path:
    from shipmates.plugin import state_dir

    path = state_dir() / "crews"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def crew_dir(name: str) -> Path:
    path = crews_dir() / name
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class PidLock:
    """The crew's pidfile, held with ``flock`` for the supervisor's life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.stale: int | None = None
        """The PID of a stale pidfile this lock took over."""

    def acquire(self) -> PidLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise NatsSetupError(
                f"crew '{self.path.parent.name}' is already running (PID {held or '?'}); "
                "`shipmates status` shows it, `shipmates down` stops it"
            ) from None
        old = os.read(fd, 32).decode(errors="replace").strip()
        if old.isdigit() and int(old) != os.getpid():
            self.stale = int(old)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self.fd)
            self.fd = -1


def running_pid(name: str) -> int | None:
    """The PID of crew ``name``'s supervisor when one holds its pidfile."""
    path = crews_dir() / name / "up.pid"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        return None
    finally:
        os.close(fd)


@dataclass
class Worker:
    id: str
    sibling: str
    generation: int
    proc: asyncio.subprocess.Process
    started: float
    state: str = "starting"
    last_beat: float | None = None
    serving_since: float | None = None
    inflight: int = 0
    handled: int = 0
    stopping: bool = False
    last_line: str = ""
    pump: asyncio.Future[None] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "worker": self.id,
            "host": socket.gethostname(),
            "pid": self.proc.pid,
            "state": self.state,
            "inflight": self.inflight,
            "handled": self.handled,
            "local": True,
        }


@dataclass
class SiblingState:
    plan: SiblingPlan
    restarts: collections.deque[float] = field(default_factory=collections.deque)
    total_restarts: int = 0
    crashes: int = 0
    """Crashes since it last served ``healthy_reset`` seconds: the backoff exponent."""
    degraded: bool = False
    last_error: str | None = None
    next_start: float = 0.0
    serial: int = 0
    generation: int = 0
    """Bumped when its environment changes: workers of older generations are replaced."""


_CONNECTION = ("nats", "namespace", "credentials")
"""Crew-file fields a reload does not change (the supervisor's own connection depends on them)."""


class Supervisor:
    def __init__(self, crew: Crew, *, overrides: dict[str, Any] | None = None) -> None:
        self.crew = crew
        self.overrides = dict(overrides or {})
        """Crew fields given as flags to ``up`` (``nats``, ``namespace``): they outlive reloads."""
        self.dir = crew_dir(crew.name)
        (self.dir / "scale.json").unlink(missing_ok=True)  # a previous run's
        (self.dir / "logs").mkdir(mode=0o700, exist_ok=True)
        self.siblings = {n: SiblingState(plan) for n, plan in crew.siblings.items()}
        self.scale: dict[str, int] = {}
        """``shipmates scale`` overrides of the crew file's replica counts (until a reload)."""
        self.workers: list[Worker] = []
        self.nc: Any = None
        self.nats_since: float | None = None
        """Since when the supervisor's NATS connection is up (heartbeats can be heard)."""
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        """Set when there is something to do before the next tick: a worker exited, a signal came."""
        self.reload = False
        self.rescale = False
        self.spent_tokens = 0
        self.spent_usd = 0.0
        self.usage_by_pid: dict[int, tuple[int, float]] = {}
        self.retired_usage = (0, 0.0)
        self.warned_budget = False
        self.paused: str | None = None
        self.events: collections.deque[str] = collections.deque(maxlen=20)
        self._settings: Any = None

    # -- settings -------------------------------------------------------------------------

    def settings(self) -> Any:
        """The workers' NATS settings, read once: a credential file is not read again on every
        state write (a rotated one would stop the crew), and a reload keeps the connection."""
        if self._settings is None:
            from ._config import NatsSettings

            self._settings = NatsSettings.from_env({**os.environ, **self.crew.worker_env()})
        return self._settings

    def wanted(self, name: str) -> int:
        state = self.siblings[name]
        return self.scale.get(name, state.plan.replicas)

    def note(self, text: str) -> None:
        log.info("%s", text)
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    # -- workers --------------------------------------------------------------------------

    async def spawn(self, sib: SiblingState) -> None:
        sib.serial += 1
        wid = f"{sib.plan.name}-{sib.serial}"
        env = {
            **os.environ,
            **self.crew.worker_env(),
            **sib.plan.environment(),
            CREW_ENV: self.crew.name,
            WORKER_ENV: wid,
            INTERVAL_ENV: str(self.crew.restart.heartbeat),
            "PYTHONUNBUFFERED": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shipmates",
            "serve",
            "--only",
            sib.plan.name,
            "--drain-timeout",
            str(self.crew.restart.drain_timeout),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C on `up` reaches the supervisor only: it drains them
        )
        worker = Worker(wid, sib.plan.name, sib.generation, proc, time.monotonic())
        self.workers.append(worker)
        worker.pump = asyncio.ensure_future(self._pump(worker))
        asyncio.ensure_future(proc.wait()).add_done_callback(lambda _: self.wake.set())  # reaped at once
        self.note(f"started {wid} (PID {proc.pid})")

    async def _pump(self, worker: Worker) -> None:
        """Copy the worker's output to its rotating log; keep its last line for errors."""
        handler = logging.handlers.RotatingFileHandler(
            self.dir / "logs" / f"{worker.id}.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        os.chmod(handler.baseFilename, 0o600)
        assert worker.proc.stdout is not None
        try:
            async for raw in worker.proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    worker.last_line = line
                    handler.emit(logging.LogRecord("w", logging.INFO, "", 0, line, None, None))
        finally:
            handler.close()

    def signal_worker(self, worker: Worker, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.send_signal(sig)

    def drain(self, worker: Worker, why: str) -> None:
        if not worker.stopping:
            worker.stopping = True
            worker.state = "draining"
            self.signal_worker(worker, signal.SIGTERM)
            self.note(f"draining {worker.id} ({why})")

    def live(self, name: str | None = None) -> list[Worker]:
        return [w for w in self.workers if not w.stopping and (name is None or w.sibling == name)]

    def active(self) -> int:
        """Live workers counted against ``max_active`` (ones being replaced are not)."""
        return sum(
            1
            for w in self.live()
            if w.sibling in self.siblings and w.generation == self.siblings[w.sibling].generation
        )

    # -- the loop -------------------------------------------------------------------------

    def reap(self, now: float) -> None:
        for worker in list(self.workers):
            rc = worker.proc.returncode
            if rc is None:
                continue
            self.workers.remove(worker)
            tokens, usd = self.usage_by_pid.pop(worker.proc.pid, (0, 0.0))
            self.retired_usage = (self.retired_usage[0] + tokens, self.retired_usage[1] + usd)
            if worker.stopping:
                self.note(f"{worker.id} stopped (exit {rc})")
                continue
            sib = self.siblings.get(worker.sibling)
            if sib is None:
                continue
            sib.restarts.append(now)
            while sib.restarts and sib.restarts[0] < now - self.crew.restart.window:
                sib.restarts.popleft()
            sib.total_restarts += 1
            sib.crashes += 1
            sib.last_error = f"{worker.id} exited with {rc}" + (
                f": {worker.last_line}" if worker.last_line else ""
            )
            if len(sib.restarts) > self.crew.restart.max_restarts:
                sib.degraded = True
                self.note(
                    f"sibling '{sib.plan.name}' degraded: {len(sib.restarts)} restarts within "
                    f"{self.crew.restart.window:g}s; not restarted again (see logs in {self.dir / 'logs'}; "
                    f"fix it, then reload the crew file: kill -HUP {os.getpid()})"
                )
                continue
            delay = self.crew.restart.delay(sib.crashes)
            sib.next_start = now + delay
            self.note(f"{worker.id} died (exit {rc}); restarting in {delay:g}s")

    def check_health(self, now: float) -> None:
        policy = self.crew.restart
        if self.nc is None or not self.nc.is_connected:
            self.nats_since = None  # NATS away: heartbeats cannot arrive, so silence means nothing
        elif self.nats_since is None:
            self.nats_since = now
        for worker in self.live():
            if worker.last_beat is None:
                silent = now - worker.started > max(START_TIMEOUT, policy.silent_after)
            else:
                silent = now - worker.last_beat > policy.silent_after
            if self.nats_since is None or now - self.nats_since < policy.silent_after:
                silent = False
            if silent:
                worker.last_line = f"no heartbeat for {policy.silent_after:g}s on NATS"
                self.signal_worker(worker, signal.SIGKILL)  # reaped as a crash, then restarted
            if worker.serving_since is not None and now - worker.serving_since >= policy.healthy_reset:
                self.siblings[worker.sibling].crashes = 0

    async def reconcile(self, now: float) -> None:
        for name, sib in self.siblings.items():
            want = self.wanted(name)
            mine = self.live(name)
            current = [w for w in mine if w.generation == sib.generation]
            outdated = [w for w in mine if w.generation != sib.generation]
            if len(current) > want:
                for worker in sorted(current, key=lambda w: (w.inflight, w.state != "starting"))[
                    : len(current) - want
                ]:
                    self.drain(worker, f"scaled to {want}")
            ready = [w for w in current if w.state in ("serving", "busy")]
            if outdated and (len(ready) >= want or want == 0):
                for worker in outdated:
                    self.drain(worker, "crew file reloaded: replaced")
            if sib.degraded or len(current) >= want or now < sib.next_start:
                continue
            if self.active() >= self.crew.max_active:
                continue
            await self.spawn(sib)

    # -- NATS: heartbeats and budget control ----------------------------------------------

    async def connect(self) -> None:
        from ._config import connect

        self.nc = await connect(self.settings(), name=f"shipmates-up@{socket.gethostname()}:{os.getpid()}")
        await self.nc.subscribe(heartbeat_subject(self.settings().namespace, self.crew.name), cb=self._beat)

    async def _beat(self, msg: Any) -> None:
        try:
            beat = json.loads(msg.data)
        except ValueError:
            return
        for worker in self.workers:
            if worker.proc.pid == beat.get("pid") and worker.id == beat.get("worker"):
                now = time.monotonic()
                worker.last_beat = now
                worker.inflight = int(beat.get("inflight", 0))
                worker.handled = int(beat.get("handled", 0))
                if not worker.stopping and beat.get("state") == "serving":
                    worker.state = "busy" if worker.inflight else "serving"
                    if worker.serving_since is None:
                        worker.serving_since = now
                self.usage_by_pid[worker.proc.pid] = (
                    int(beat.get("tokens", 0)),
                    float(beat.get("cost_usd", 0.0)),
                )

    async def budget(self) -> None:
        crew = self.crew
        tokens = self.retired_usage[0] + sum(t for t, _ in self.usage_by_pid.values())
        usd = self.retired_usage[1] + sum(c for _, c in self.usage_by_pid.values())
        self.spent_tokens, self.spent_usd = tokens, usd
        shares = []
        if crew.budget_tokens:
            shares.append((tokens / crew.budget_tokens, f"{tokens} of {crew.budget_tokens} tokens"))
        if crew.budget_usd:
            shares.append((usd / crew.budget_usd, f"${usd:.4f} of ${crew.budget_usd:g}"))
        share, what = max(shares, default=(0.0, ""))
        paused = None
        if share >= 1.0:
            paused = (
                f"crew '{crew.name}' spent {what}; raise budget_tokens/budget_usd in "
                f"{crew.path or 'the crew file'} and reload it (kill -HUP the `shipmates up` PID)"
            )
        if paused != self.paused:
            self.note(paused or f"budget raised: crew '{crew.name}' takes new work again")
            self.paused = paused
        if share >= 0.8 and not self.warned_budget:
            self.warned_budget = True
            self.note(f"warning: crew '{crew.name}' has spent {share:.0%} of its budget ({what})")
        elif share < 0.8:
            self.warned_budget = False
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.publish(
                    control_subject(self.settings().namespace, crew.name),
                    json.dumps({"paused": paused}).encode(),
                )

    # -- state and control ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        crew = self.crew
        settings = self.settings()
        siblings = []
        for name, sib in self.siblings.items():
            workers = [w for w in self.workers if w.sibling == name]
            siblings.append(
                {
                    "name": name,
                    "wanted": self.wanted(name),
                    "degraded": sib.degraded,
                    "restarts": sib.total_restarts,
                    "restarts_in_window": len(sib.restarts),
                    "last_error": sib.last_error,
                    "next_start_in": round(max(0.0, sib.next_start - time.monotonic()), 3),
                    "replicas": [w.snapshot() for w in workers],
                }
            )
        return {
            "crew": crew.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "file": str(crew.path) if crew.path else None,
            "nats": settings.display_url,
            "namespace": settings.namespace,
            "credentials": crew.credentials,
            "max_active": crew.max_active,
            "budget": {
                "tokens": crew.budget_tokens,
                "usd": crew.budget_usd,
                "spent_tokens": self.spent_tokens,
                "spent_usd": round(self.spent_usd, 6),
                "paused": self.paused,
            },
            "siblings": siblings,
            "events": list(self.events),
            "updated": time.time(),
        }

    def write_state(self) -> None:
        write_private(self.dir / "state.json", json.dumps(self.snapshot(), indent=1))

    def apply_reload(self) -> None:
        self.reload = False
        if self.crew.path is None:
            self.note("SIGHUP: no crew file to reread (started from flags)")
            return
        try:
            crew = load_crew(self.crew.path)
        except Exception as exc:
            self.note(f"SIGHUP: kept the running crew, the file has an error: {exc}")
            return
        if crew.name != self.crew.name:
            self.note(f"SIGHUP: the crew file now names crew '{crew.name}'; kept '{self.crew.name}'")
        running = {key: getattr(self.crew, key) for key in _CONNECTION}
        if any(getattr(crew, key) != value for key, value in running.items()):
            self.note(
                "SIGHUP: kept the running NATS server, namespace and credentials (workers and the "
                "supervisor must move together): stop and start `shipmates up` to change them"
            )
            crew = replace(crew, **running)
        crew = replace(crew, name=self.crew.name, **self.overrides)
        crew_env_changed = crew.worker_env() != self.crew.worker_env()
        for name in list(self.siblings):
            if name not in crew.siblings:
                for worker in self.live(name):
                    self.drain(worker, "no longer in the crew file")
                del self.siblings[name]
        for name, plan in crew.siblings.items():
            sib = self.siblings.setdefault(name, SiblingState(plan))
            if crew_env_changed or plan.environment() != sib.plan.environment():
                sib.generation += 1  # new workers first, then the old ones drain
            sib.plan = plan
            if sib.degraded:  # a reload is the fix deployed: try it again
                sib.degraded, sib.crashes, sib.next_start = False, 0, 0.0
                sib.restarts.clear()
        self.crew = crew
        self.scale.clear()
        (self.dir / "scale.json").unlink(missing_ok=True)
        self.note(
            f"reloaded {crew.path}: " + ", ".join(f"{n}={p.replicas}" for n, p in crew.siblings.items())
        )

    def apply_scale(self) -> None:
        self.rescale = False
        path = self.dir / "scale.json"
        try:
            asked = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        for name, n in asked.items():
            if name in self.siblings and isinstance(n, int) and n >= 0:
                self.scale[name] = n
                self.note(f"scale {name} to {n}")

    async def shutdown(self) -> None:
        policy = self.crew.restart
        for worker in self.workers:
            self.drain(worker, "crew going down")
        deadline = time.monotonic() + policy.drain_timeout + policy.kill_after
        while self.workers and time.monotonic() < deadline:
            self.reap(time.monotonic())
            self.write_state()
            await asyncio.sleep(TICK)
        for worker in self.workers:
            self.note(
                f"{worker.id} still running after {policy.drain_timeout + policy.kill_after:g}s: SIGKILL"
            )
            self.signal_worker(worker, signal.SIGKILL)
        await asyncio.gather(*(w.proc.wait() for w in self.workers))
        self.workers.clear()

    def _due(self, now: float) -> float:
        """Seconds until the next tick, or sooner when a restart is due before it."""
        waiting = [
            s.next_start - now for s in self.siblings.values() if not s.degraded and s.next_start > now
        ]
        return min([TICK, *waiting])

    async def run(self, ready: Any = None) -> None:
        loop = asyncio.get_running_loop()

        def on(signum: int, act: Any) -> None:
            def handle() -> None:
                act()
                self.wake.set()

            loop.add_signal_handler(signum, handle)

        on(signal.SIGTERM, self.stop.set)
        on(signal.SIGINT, self.stop.set)
        on(signal.SIGHUP, lambda: setattr(self, "reload", True))
        on(signal.SIGUSR1, lambda: setattr(self, "rescale", True))
        await self.connect()
        if ready is not None:
            ready(self)
        last_state = 0.0
        last_budget = 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if self.reload:
                    self.apply_reload()
                if self.rescale:
                    self.apply_scale()
                self.reap(now)
                self.check_health(now)
                await self.reconcile(now)
                if now - last_budget >= 0.5:
                    last_budget = now
                    await self.budget()
                if now - last_state >= STATE_EVERY:
                    last_state = now
                    self.write_state()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self._due(time.monotonic()))
                self.wake.clear()
        finally:
            await self.shutdown()
            self.write_state()
            if self.nc is not None:
                with contextlib.suppress(Exception):
                    await self.nc.close()
