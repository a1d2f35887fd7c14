"""A one-line "working..." indicator on a terminal while a turn runs.

Other output during the turn (trace lines, approval questions) goes through
:meth:`RunningIndicator.print`, which erases the indicator first so lines never mix; the
indicator redraws itself on its next tick.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import IO

FRAMES = "|/-\\"
_ERASE = "\r\x1b[K"


class RunningIndicator:
    """Draws ``| captain is working (Ctrl-C cancels) 1.2s`` on ``stream`` until stopped."""

    def __init__(self, stream: IO[str], label: str, *, active: bool = True, interval: float = 0.1) -> None:
        self._stream = stream
        self.label = label
        """What the indicator says; may change while it runs (the next tick shows it)."""
        self._active = active
        self._interval = interval
        self._shown = False
        self._paused = 0
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0

    def _erase(self) -> None:
        if self._shown:
            self._stream.write(_ERASE)
            self._stream.flush()
            self._shown = False

    def print(self, line: str) -> None:
        """Write ``line`` (and a newline) without mixing it with the indicator."""
        with self._lock:
            self._erase()
            self._stream.write(line + "\n")
            self._stream.flush()

    def pause(self) -> None:
        """Hide the indicator until :meth:`resume` (while asking the user something)."""
        with self._lock:
            self._paused += 1
            self._erase()

    def resume(self) -> None:
        with self._lock:
            self._paused = max(self._paused - 1, 0)

    async def _spin(self) -> None:
        frame = 0
        while True:
            await asyncio.sleep(self._interval)
            with self._lock:
                if self._paused:
                    continue
                elapsed = time.monotonic() - self._started
                text = f"{FRAMES[frame % len(FRAMES)]} {self.label} (Ctrl-C cancels) {elapsed:.1f}s"
                self._stream.write(_ERASE + text)
                self._stream.flush()
                self._shown = True
            frame += 1

    def start(self) -> None:
        self._started = time.monotonic()
        if self._active and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._spin())

    def stop(self) -> None:
        # Not awaited: awaiting here could swallow a cancellation aimed at the caller.
        if self._task is not None:
            self._task.cancel()
            self._task = None
        with self._lock:
            self._erase()
