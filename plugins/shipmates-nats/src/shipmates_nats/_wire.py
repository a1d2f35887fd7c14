"""nats-py's per-message header work, done cheaper on shipmates' own connections.

Every call carries a ``traceparent`` header, and nats-py handles headers generically: a publish
checks each name with a regular expression and builds the block a piece at a time, a received
message has each name's characters tested one by one. That was a third of what a header costs
both sides of a call at 64 calls in flight (bench/bench_nats.py), more than everything else the
header adds. Here a publish with headers writes the same ``HPUB`` bytes in one go, and received
header blocks are split the same way with each name checked once per connection. Whatever the
fast paths do not cover (a disconnected client, a status line, names or values that need nats-py's
cleaning) goes through nats-py itself, so the results and errors are the same.
"""

from __future__ import annotations

import re
from typing import Any

_HEAD = b"NATS/1.0\r\n"
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name nats-py sends as it is (its own check)."""


class Publisher:
    """``nc.publish(subject, body, reply=reply, headers=headers)`` for one connection."""

    __slots__ = ("connected", "known", "nc", "ready")

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.known: set[str] = set()
        """Subjects nats-py published once already (so it checked them)."""
        attrs = (
            "_status",
            "_max_payload",
            "_send_command",
            "_flush_pending",
            "_flush_queue",
            "stats",
            "CONNECTED",
        )
        self.ready = all(hasattr(nc, a) for a in attrs)
        self.connected = getattr(nc, "CONNECTED", None)

    async def publish(self, subject: str, body: bytes, reply: str, headers: dict[str, str]) -> None:
        """What nats-py writes for it; ``reply`` is under the connection's inbox prefix (checked
        by nats-py with the subscription)."""
        nc = self.nc
        if (
            not self.ready
            or nc._status != self.connected  # reconnecting, draining, closed: nats-py's own ways
            or subject not in self.known
            or len(body) > nc._max_payload
        ):
            await nc.publish(subject, body, reply=reply, headers=headers)
            self.known.add(subject)
            return
        block = _block(headers)
        if block is None:
            await nc.publish(subject, body, reply=reply, headers=headers)
            return
        size = len(block)
        cmd = b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
            subject.encode(),
            reply.encode(),
            size,
            size + len(body),
            block,
            body,
        )
        stats = nc.stats
        stats["out_msgs"] += 1
        stats["out_bytes"] += len(body)
        await nc._send_command(cmd)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()


def _block(headers: dict[str, str]) -> bytes | None:
    """The header block nats-py would write, or None when it would change or refuse something."""
    lines = []
    for key, value in headers.items():
        if not _NAME.fullmatch(key) or "\r" in value or "\n" in value or value != value.strip():
            return None
        lines.append(f"{key}: {value}\r\n")
    return _HEAD + "".join(lines).encode() + b"\r\n"
