"""Driving the real REPL on a pseudo-terminal with pexpect, as a person at a terminal would."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pexpect

PROMPT = "captain>"


@contextmanager
def repl_spawner(
    env: dict[str, str], *, base_args: Sequence[str] = (), timeout: float = 30
) -> Iterator[ReplStarter]:
    """Yield ``start(*args, env=None)``, which runs ``python -m shipmates chat`` on a pty;
    every REPL it started is killed on exit if it is still running."""
    starter = ReplStarter(env, base_args, timeout)
    try:
        yield starter
    finally:
        for child in starter.children:
            if child.isalive():
                child.terminate(force=True)


class ReplStarter:
    def __init__(self, env: dict[str, str], base_args: Sequence[str], timeout: float) -> None:
        self.env, self.base_args, self.timeout = env, list(base_args), timeout
        self.children: list[pexpect.spawn] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "shipmates", "chat", *self.base_args, *args],
            env=env or self.env,
            encoding="utf-8",
            timeout=self.timeout,
            dimensions=(40, 200),
        )
        self.children.append(child)
        return child


def ask(child: pexpect.spawn, line: str, *expected: str) -> None:
    """Type ``line``, wait for each expected text in order, then for the next prompt."""
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(PROMPT)


def finish(child: pexpect.spawn) -> int:
    """Wait for the REPL to exit; its exit status."""
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None
    return child.exitstatus
