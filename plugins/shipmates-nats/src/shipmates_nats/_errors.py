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


class NoReplicaError(RemoteCallError):
    """No replica of a remote sibling is serving (its local fallback, if configured, takes the call)."""


class ReplicaLostError(RemoteCallError):
    """The replica running a call is gone (its process or connection died) before it answered."""


def replica_lost(label: str, instance: str) -> ReplicaLostError:
    return ReplicaLostError(
        f"the replica {instance} of {label} died before it answered (its process or connection is gone)"
    )
