"""Errors of the NATS plugin; all derive from :class:`shipmates.ShipmatesError`."""

from __future__ import annotations

from shipmates import ShipmatesError


class NatsSetupError(ShipmatesError):
    """The NATS server could not be started or found."""


class NatsConnectError(ShipmatesError):
    """Could not connect to NATS (unreachable, wrong credentials, TLS)."""


class RemoteCallError(ShipmatesError):
    """A call to a remote sibling failed: no responders, timeout, size limit, remote error."""


class PayloadTooLargeError(RemoteCallError):
    """A request or response exceeded the configured size limit."""
