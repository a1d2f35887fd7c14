"""nats-py's per-message work on shipmates' own connections, done cheaper where it counts.

Every call carries a ``traceparent`` header, and nats-py handles headers generically: a publish
checks each name with a regular expression and builds the block a piece at a time (5.4 us for a
request with its ``traceparent``, 2.6 us without), a received block has each name's characters
tested one by one (2.2 us per request on ``serve``'s side). Here a request (:class:`Publisher`:
the proxy's requests, ``serve``'s answers) is written as the same ``PUB``/``HPUB`` bytes in one
go, with each subject checked once (an answer's reply subject came from the server: no check),
and received header blocks are split the same way with each name checked once per connection
(:func:`fast_headers`). Whatever the fast paths do not cover (a connection not plainly
connected, a payload over the limit, a status line, names or values nats-py would clean or
refuse) goes through nats-py itself, so the bytes, results and errors are the same.
"""

from __future__ import annotations

import re
from typing import Any

_HEAD = b"NATS/1.0\r\n"
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name nats-py sends as it is (its own check)."""
_INVALID = object()


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

    async def publish(
        self,
        subject: str,
        body: bytes,
        reply: str = "",
        headers: dict[str, str] | None = None,
        checked: bool = False,
    ) -> None:
        """What nats-py writes for it. ``reply`` is under the connection's inbox prefix (checked
        by nats-py with the subscription); ``checked``: ``subject`` came from the server (a
        request's reply subject: no whitespace, not empty) and needs no check."""
        nc = self.nc
        if (
            not self.ready
            or nc._status != self.connected  # reconnecting, draining, closed: nats-py's own ways
            or not (checked or subject in self.known)
            or len(body) > nc._max_payload
        ):
            await nc.publish(subject, body, reply=reply, headers=headers)
            if not checked:
                if len(self.known) >= 1024:  # replicas come and go: forget the old ones
                    self.known.clear()
                self.known.add(subject)
            return
        if headers is None:
            cmd = b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(body), body)
        else:
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
        if key not in _names:
            if not _NAME.fullmatch(key):
                return None
            if len(_names) < 256:
                _names.add(key)
        if "\r" in value or "\n" in value or value.strip() != value:
            return None
        lines.append(f"{key}: {value}\r\n")
    return _HEAD + "".join(lines).encode() + b"\r\n"


MAX_CACHED_NAME = 64
"""Longest received header name remembered (a hostile peer may send names of a megabyte)."""
_names: set[str] = set()
"""Header names known to pass nats-py's check."""


def fast_headers(nc: Any) -> dict[bytes, Any] | None:
    """Parse the header blocks ``nc`` receives as nats-py does, with less work per message; the
    names it remembers (None: nats-py's own parser stays)."""
    import nats.aio.client as client

    original = getattr(nc, "_process_headers", None)
    if (
        original is None
        or getattr(client, "parse_email", None) is not None
        or not hasattr(client.Client, "_parse_header_lines")  # older nats-py parses differently
    ):
        return None  # another parser: leave it be
    names: dict[bytes, Any] = {}

    async def process_headers(headers: bytes | None) -> dict[str, str] | None:
        if not headers or not headers.startswith(_HEAD) or len(headers) <= 12:
            parsed: dict[str, str] | None = await original(headers)  # none, a status line, no header
            return parsed
        out: dict[str, str] = {}
        for line in headers[10:].split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            key = names.get(name)
            if key is None:
                key = _name(name)
                if len(names) < 256 and len(name) <= MAX_CACHED_NAME:  # a peer's junk is not kept
                    names[name] = key
            if key is not _INVALID:
                out[key] = value.strip().decode("utf-8", "replace")
        return out or None

    nc._process_headers = process_headers
    return names


def _name(raw: bytes) -> Any:
    """A header name as nats-py keeps it, or ``_INVALID`` where it skips the line."""
    try:
        key = raw.strip().decode("ascii")
    except UnicodeDecodeError:
        return _INVALID
    return _INVALID if any(c.isspace() for c in key) else key
