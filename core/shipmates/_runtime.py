"""The process's shared runtime: the worker threads for sync tools, the background event loop
and ``run_sync``, which blocking callers (``Agent.invoke``, plugins' sync hooks) use.

One background loop serves every sync entry point in the process (core and plugins alike), so
clients that libraries cache per event loop (litellm's HTTP clients, a NATS connection) stay
valid across calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonThreadPool(Executor):
    """A thread pool whose workers are daemon threads.

    ThreadPoolExecutor joins its workers at interpreter exit, so one sync tool that hangs
    past its timeout would keep the process (the REPL) from ever exiting. Threads start on
    demand, up to ``max_workers``, and are reused when idle.
    """

    def __init__(self, max_workers: int, name: str = "shipmates-tool") -> None:
        self.max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        self._queue.put((future, fn, args))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self.max_workers:
                    self._threads += 1
                    name = f"{self._name}_{self._threads}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
            del future, fn, args
            self._idle.release()


_pool: DaemonThreadPool | None = None


def tool_pool() -> DaemonThreadPool:
    """The worker threads for sync tools: sized for fan-out, unlike asyncio's default executor
    (``min(32, cpus + 4)`` threads); ``SHIPMATES_TOOL_THREADS`` overrides the size (a bad value
    is a :class:`~shipmates.SettingsError`)."""
    global _pool
    if _pool is None:
        from ._settings import tool_threads_from

        _pool = DaemonThreadPool(tool_threads_from() or max(64, (os.cpu_count() or 1) * 16))
    return _pool


_background: asyncio.AbstractEventLoop | None = None
_background_thread: threading.Thread | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _background, _background_thread
    with _background_lock:
        if _background is None or _background_thread is None or not _background_thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="shipmates-loop", daemon=True)
            thread.start()
            _background, _background_thread = loop, thread
    return _background


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, in the caller's context.

    Every call shares one long-lived event loop in a daemon thread, so clients that
    libraries cache per loop (litellm's HTTP clients) stay valid across calls, and it works
    whether or not the calling thread already runs an event loop.
    """
    if threading.current_thread() is _background_thread:
        # Blocking the shared loop on itself would deadlock: use a loop of our own.
        return _run_in_new_thread(coro)
    loop = _background_loop()
    ctx = contextvars.copy_context()
    done: Future[T] = Future()
    tasks: list[asyncio.Task[T]] = []

    def start() -> None:
        task = ctx.run(loop.create_task, _contained(coro))  # the task runs in a copy of ctx
        tasks.append(task)
        task.add_done_callback(lambda t: _settle(t, done))

    loop.call_soon_threadsafe(start)
    try:
        return done.result()
    except BaseException:
        if not done.done():  # KeyboardInterrupt while waiting: stop the run
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
        raise


class _Escaped(Exception):  # noqa: N818 - a carrier, not an error of its own
    """A SystemExit or KeyboardInterrupt raised inside a task on the shared loop.

    asyncio re-raises those out of ``run_forever``, which would stop the shared loop and leave
    every later ``run_sync`` waiting forever; carried as an ordinary exception instead, they
    reach the caller that asked for the run, in its own thread.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _Escaped(exc) from exc


def _settle(task: asyncio.Task[T], done: Future[T]) -> None:
    if task.cancelled():
        done.set_exception(asyncio.CancelledError())
    elif isinstance(task.exception(), _Escaped):
        done.set_exception(task.exception().exc)  # type: ignore[union-attr]
    elif task.exception() is not None:
        done.set_exception(task.exception())
    else:
        done.set_result(task.result())


def _run_in_new_thread(coro: Coroutine[Any, Any, T]) -> T:
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = ctx.run(asyncio.run, coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name="shipmates-invoke", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared background event loop (started on first use, in a daemon thread)."""
    return _background_loop()


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the background loop from any thread; returns a concurrent future."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop())


async def on_background_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop from any event loop; cancellation propagates."""
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
