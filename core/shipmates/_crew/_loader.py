"""Loading entry points (siblings and plugins alike): one importer, one set of failure reasons.

:func:`load_entry_point` imports ``module:attr.attr`` and turns every failure into a
:class:`EntryPointError` of one of four kinds (``missing``: the module is not installed;
``raised``: importing it raised; ``attribute``: the attribute is not there; ``malformed``:
the value is not ``module:attribute``). :meth:`EntryPointError.reason` adds the fix, worded the
same for siblings and plugins; only the way to leave the entry out (``hint``) differs.

Every load runs inside :func:`guarded`: what it prints goes to stderr (stdout carries answers
and JSON), a load still running after :data:`NOTICE_AFTER` seconds gets a one-line notice on
stderr naming it, and ``SHIPMATES_LOAD_TIMEOUT`` (seconds; unset: none) gives up on it.
"""

from __future__ import annotations

import _thread
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from .._settings import load_timeout_from
from ._entrypoints import parse_value

FailureKind = Literal["missing", "raised", "attribute", "malformed", "timeout", "undeclared"]
T = TypeVar("T")

NOTICE_AFTER = 2.0
"""Seconds a load may take before its "still loading" notice is printed on stderr."""
LOAD_TIMEOUT_VAR = "SHIPMATES_LOAD_TIMEOUT"


def exception_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters, without terminal
    control sequences (the message was written by a sibling or plugin)."""
    from .._text import terminal_safe

    text = terminal_safe(str(exc)[: limit * 4]).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def module_missing(exc: BaseException, module: str) -> bool:
    """True when ``exc`` says ``module`` itself (or a parent package) is missing, not a dependency."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return False
    return module == exc.name or module.startswith(exc.name + ".")


class EntryPointError(Exception):
    """An entry point that could not be loaded; ``str()`` says what went wrong (not the fix).

    The original exception is the ``__cause__``.
    """

    def __init__(self, kind: FailureKind, detail: str, value: str) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail
        self.value = value
        """The entry point's value, ``"module:attr"``."""

    def reason(self, *, entry: str, source: str, hint: str) -> str:
        """The one-line reason with its fix: ``entry`` is the entry point's name, ``source`` the
        distribution that declares it, ``hint`` how to leave it out (``"or exclude it with ..."``)."""
        if self.kind == "missing":
            fix = f"reinstall {source} or fix its entry point {entry} = {self.value}"
        elif self.kind == "timeout":
            fix = f"fix {source} (or report it to its authors), or raise {LOAD_TIMEOUT_VAR}"
        elif self.kind == "undeclared":
            fix = "nothing was imported; run the command again"
        elif self.kind == "raised":
            fix = f"fix {source} (or report it to its authors)"
        else:
            fix = f"fix the entry point {entry} in {source}"
        return f"{self.detail}; {fix} {hint}"


def load_entry_point(value: str, *, label: str | None = None) -> Any:
    """Import ``"package.module:attr.attr"`` and return the object; raise :class:`EntryPointError`.

    ``SystemExit`` raised by the import counts as a failure too. The import runs
    :func:`guarded`: ``label`` (default ``entry point <value>``) names it in the slow-load
    notice; past ``SHIPMATES_LOAD_TIMEOUT`` it is an ``EntryPointError`` of kind ``timeout``.
    """
    try:
        return guarded(lambda: _import(value), label or f"entry point {value}")
    except LoadTimeout as exc:
        raise EntryPointError("timeout", str(exc), value) from exc


def _import(value: str) -> Any:
    try:
        module_name, attr = parse_value(value)
    except ValueError as exc:
        raise EntryPointError("malformed", str(exc), value) from exc
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        line = exception_line(exc)
        if module_missing(exc, module_name):
            detail = f"module {module_name!r} is not installed (module {module_name!r} not found: {line})"
            raise EntryPointError("missing", detail, value) from exc
        raise EntryPointError("raised", f"importing {module_name!r} raised {line}", value) from exc
    for part in filter(None, (attr or "").split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise EntryPointError("attribute", f"{value}: {exception_line(exc)}", value) from exc
    return obj


class LoadTimeout(Exception):  # noqa: N818 - reads as an outcome, like TimeoutError
    """A guarded load still running after ``SHIPMATES_LOAD_TIMEOUT`` seconds."""


def guarded(run: Callable[[], T], label: str, timeout: float | None = None, *, from_env: bool = True) -> T:
    """``run()`` as one load of the thing ``label`` names (``sibling 'x' (dist 1.0)``).

    While it runs, ``sys.stdout`` is ``sys.stderr`` (restored after, even when it raises), so
    what an import or a provider prints never mixes with answers or JSON. After
    :data:`NOTICE_AFTER` seconds one line on stderr says it is still loading. ``timeout``
    (default, with ``from_env``: ``SHIPMATES_LOAD_TIMEOUT``, see
    :func:`~shipmates._settings.load_timeout_from`) gives up on it: :class:`LoadTimeout` is
    raised and ``run`` goes on in its daemon thread, which Python cannot stop (its output then
    reaches the real stdout again, and the module it imports stays half-imported until it
    ends). Only with a timeout does ``run`` leave the calling thread (so without one, an
    import may still install signal handlers). A load inside a load runs unguarded: the
    outer one covers it.
    """
    if getattr(_local, "active", False):
        return run()
    if timeout is None and from_env:
        timeout = load_timeout_from()
    _redirect_stdout()
    token = _watch.start(label)
    try:
        return _run_here(run) if timeout is None else _run_in_thread(run, label, timeout)
    finally:
        _watch.stop(token)
        _restore_stdout()


def _run_here(run: Callable[[], T]) -> T:
    _local.active = True
    try:
        return run()
    finally:
        _local.active = False


def _run_in_thread(run: Callable[[], T], label: str, timeout: float) -> T:
    outcome: list[Any] = []
    done = threading.Event()

    def target() -> None:
        _local.active = True
        try:
            outcome.append((True, run()))
        except BaseException as exc:  # handed back to the waiting thread
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name=f"shipmates load: {label}", daemon=True).start()
    if not done.wait(timeout):
        raise LoadTimeout(
            f"still loading after {timeout:g} s ({LOAD_TIMEOUT_VAR}={timeout:g}), so it was given up on "
            "(it goes on in the background)"
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


_local = threading.local()


class _Discard:
    """Where stdout goes while loading when there is no stderr (``pythonw``)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


_redirect_lock = threading.Lock()
_redirect_depth = 0
_saved_stdout: Any = None


def _redirect_stdout() -> None:
    """``sys.stdout = sys.stderr``, counted so concurrent loads restore it once, in any order."""
    global _redirect_depth, _saved_stdout
    with _redirect_lock:
        if _redirect_depth == 0:
            _saved_stdout = sys.stdout
            sys.stdout = sys.stderr if sys.stderr is not None else _Discard()
        _redirect_depth += 1


def _restore_stdout() -> None:
    global _redirect_depth, _saved_stdout
    with _redirect_lock:
        _redirect_depth -= 1
        if _redirect_depth == 0:
            sys.stdout = _saved_stdout
            _saved_stdout = None


class _Watch:
    """One daemon thread per process, started by the first load, that prints the slow-load notice.

    A load costs a dictionary entry, not a thread (a timer per load would), and no wake-up
    either unless the thread is idle: every later load is due after the one it waits for.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._loads: dict[int, tuple[float, str]] = {}
        self._count = 0
        self._idle = False
        self._started = False

    def start(self, label: str) -> int:
        with self._cond:
            self._count += 1
            self._loads[self._count] = (time.monotonic(), label)
            if not self._started:  # a forked child gets a new _Watch (see _after_fork)
                self._started = True
                # _thread, not threading.Thread: start() would wait for the thread to run,
                # a hand-over of the GIL that every start-up would pay. Daemon-like: never joined.
                _thread.start_new_thread(self._run, ())
            elif self._idle:
                self._idle = False
                self._cond.notify()
            return self._count

    def stop(self, token: int) -> None:
        with self._cond:
            self._loads.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [(t, s, label) for t, (s, label) in self._loads.items() if now - s >= NOTICE_AFTER]
                for token, _, _ in due:
                    del self._loads[token]  # one notice per load
                if not due:
                    waits = [started + NOTICE_AFTER - now for started, _ in self._loads.values()]
                    self._idle = not waits
                    self._cond.wait(max(min(waits), 0.01) if waits else None)
                    self._idle = False
                    continue
            for _, started, label in due:  # printed without the lock: stderr may block
                _notice(
                    f"still loading {label}: {now - started:.1f} s so far... "
                    f"({LOAD_TIMEOUT_VAR}=<seconds> gives up on slow loads)"
                )


def _notice(line: str) -> None:
    from .._text import terminal_safe  # the label names a sibling or plugin: its own text

    stream = sys.__stderr__ if sys.stderr is None else sys.stderr
    try:
        if stream is not None:
            print(terminal_safe(line), file=stream, flush=True)
    except (OSError, ValueError):  # a closed or broken stderr: the notice is only a courtesy
        return


_watch = _Watch()


def _after_fork() -> None:
    """A forked child has none of its parent's threads: fresh locks (one may have been held),
    a watch without loads; a load the forking thread is in restores stdout as usual."""
    global _redirect_lock, _watch
    _redirect_lock, _watch = threading.Lock(), _Watch()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
