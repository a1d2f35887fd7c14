"""Durable delegation through JetStream: a work-queue stream of jobs and a results stream.

The caller publishes a job with ``Nats-Msg-Id = <key>.<tag>`` (JetStream drops duplicates inside
the dedupe window), then waits for ``NS.results.<key>.<tag>``. Every ``serve`` replica pulls jobs
of its siblings from one shared durable consumer; while a job runs the worker keeps telling
JetStream it is in progress, so a worker that dies stops doing so and the job is redelivered to
another replica after ``ack_wait``. The result is stored once per subject, and a worker skips a
job whose signed result already exists: the caller gets exactly one result per key. (The
sibling itself may run twice when a worker dies mid-task.)

Results cannot be forged: the job carries a secret derived from the caller's own secret (a
user-only file in the state directory) and the key; the worker signs the result with it (HMAC)
and the result subject's ``tag`` derives from it, so the caller accepts, and a re-call with the
same key returns, only what a worker that took the job published. The same secret for the same
key makes a re-call (from any process of this user) find the stored result; another user's job
with the same key is a job of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import time
import uuid
from typing import Any

from . import _protocol as p
from ._errors import RemoteCallError
from ._invoke import CallFailedError, Hosted, call_hosted, current_traceparent

log = logging.getLogger("shipmates_nats")

DEDUPE_WINDOW = 3600.0
RESULTS_MAX_AGE = 24 * 3600.0


async def ensure_streams(js: Any, ns: str) -> None:
    """Create the jobs (work queue) and results streams of namespace ``ns`` if missing."""
    from nats.js.api import RetentionPolicy, StreamConfig
    from nats.js.errors import BadRequestError

    configs = [
        StreamConfig(
            name=p.stream_name(ns, "JOBS"),
            subjects=[f"{ns}.jobs.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            duplicate_window=DEDUPE_WINDOW,
        ),
        StreamConfig(
            name=p.stream_name(ns, "RESULTS"),
            subjects=[f"{ns}.results.>"],
            retention=RetentionPolicy.LIMITS,
            max_age=RESULTS_MAX_AGE,
            duplicate_window=DEDUPE_WINDOW,
            max_msgs_per_subject=1,
        ),
    ]
    for config in configs:
        try:
            await js.add_stream(config)
        except BadRequestError as exc:  # already exists (maybe with other limits): use it
            if "already in use" not in str(exc) and getattr(exc, "err_code", None) != 10058:
                raise


SECRET_FILE = "nats-caller.secret"
_secrets: dict[str, bytes] = {}


def caller_secret() -> bytes:
    """This user's secret for durable calls: made on first use in a user-only (0600) file of the
    state directory (``<state dir>/nats-caller.secret``), the same for every process of the user."""
    from shipmates.plugin import state_dir

    path = os.path.join(state_dir(), SECRET_FILE)
    known = _secrets.get(path)
    if known is not None:
        return known
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: of processes racing here, one secret wins
        os.unlink(tmp)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)
    try:
        with open(path) as f:
            secret = bytes.fromhex(f.read().strip())
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise RemoteCallError(
            f"the durable-call secret {path} is not 32+ hex bytes; delete it and a new one is made "
            "(results stored under the old one can no longer be collected)"
        )
    _secrets[path] = secret
    return secret


def job_secret(ns: str, name: str, distribution: str | None, key: str) -> bytes:
    """The secret of one durable job: the same for a re-call with the same key by the same user."""
    job = json.dumps([ns, name, p.dist_token(distribution), key]).encode()
    return hmac.new(caller_secret(), job, hashlib.sha256).digest()


def signed(msg: Any, secret: bytes, key: str) -> bool:
    """True when ``msg`` is a result signed with the job's ``secret``: a worker that took the job sent it."""
    headers = msg.headers or {}
    mac = headers.get(p.H_MAC)
    return isinstance(mac, str) and hmac.compare_digest(mac, p.result_mac(secret, key, headers, msg.data))


async def existing_result(js: Any, ns: str, key: str, tag: str) -> Any | None:
    """The stored result message for ``key`` under ``tag``, or None."""
    from nats.js.errors import NotFoundError

    try:
        return await js.get_last_msg(p.stream_name(ns, "RESULTS"), p.results_subject(ns, key, tag))
    except NotFoundError:
        return None


def _discarded(name: str, key: str) -> None:
    from ._plugin import warn

    warn(
        f"discarded a durable result for sibling '{name}' (key {key}) that no worker of the job "
        "signed: forged or corrupted by someone who can publish into this namespace (see the "
        "permission recipe in the shipmates-nats README)"
    )


def _result_text(headers: dict[str, str] | None, data: bytes, name: str) -> str:
    headers = headers or {}
    if headers.get(p.H_STATUS, "ok") == "ok":
        return data.decode("utf-8", errors="replace")
    code = headers.get(p.H_ERROR_CODE, p.E_FAILED)
    if code == p.E_END_SESSION:
        from shipmates import EndSession

        raise EndSession(headers.get(p.H_ERROR, "Goodbye."))
    raise RemoteCallError(headers.get(p.H_ERROR) or f"durable call to '{name}' failed ({code})")


async def submit(
    nc: Any,
    js: Any,
    ns: str,
    name: str,
    distribution: str | None,
    body: bytes,
    key: str,
    *,
    timeout: float,
    headers: dict[str, str],
) -> str:
    """Submit a durable job (idempotent on ``key``) and wait for its single, signed result."""
    from nats.js.errors import NotFoundError

    p.check_key(key)
    secret = job_secret(ns, name, distribution, key)
    tag = p.result_tag(secret)
    try:
        await ensure_streams(js, ns)
    except Exception as exc:
        raise RemoteCallError(
            f"durable call to '{name}' needs JetStream, which the NATS server does not offer "
            f"({type(exc).__name__}: {exc}); start the server with JetStream (`shipmates nats up` does)"
        ) from None
    try:
        await js.consumer_info(p.stream_name(ns, "JOBS"), p.consumer_name(name, distribution))
    except NotFoundError:
        raise RemoteCallError(
            f"no durable worker for sibling '{name}' in namespace '{ns}': start `shipmates serve` "
            "with JetStream enabled on the NATS server (shipmates nats up enables it)"
        ) from None
    sub = await nc.subscribe(p.results_subject(ns, key, tag))
    try:
        msg_id = f"{key}.{tag}"
        found = await existing_result(js, ns, key, tag)
        if found is not None:
            if signed(found, secret, key):
                return _result_text(found.headers, found.data, name)
            _discarded(name, key)
            msg_id += f".{uuid.uuid4().hex[:8]}"  # what is stored is not the job's: run it again
        hdrs = {**headers, p.H_MSG_ID: msg_id, p.H_KEY: key, p.H_SECRET: secret.hex()}
        await js.publish(
            p.jobs_subject(ns, name, distribution), body, headers=hdrs, timeout=min(timeout, 10.0)
        )
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RemoteCallError(
                    f"durable call to '{name}' (key {key}) got no result within {timeout:g}s; the job "
                    "stays queued: call again with the same key to collect its result"
                )
            try:
                msg = await sub.next_msg(timeout=min(left, 2.0))
            except TimeoutError:
                pass
            except Exception as exc:  # nats TimeoutError is not asyncio's on every version
                if type(exc).__name__ != "TimeoutError":
                    raise
            else:
                if signed(msg, secret, key):
                    return _result_text(msg.headers, msg.data, name)
                _discarded(name, key)
                continue
            found = await existing_result(js, ns, key, tag)  # a result missed across a reconnect
            if found is not None and signed(found, secret, key):
                return _result_text(found.headers, found.data, name)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class DurableWorker:
    """Pulls jobs for one hosted sibling from the shared durable consumer."""

    def __init__(
        self,
        js: Any,
        ns: str,
        hosted: Hosted,
        *,
        max_bytes: int,
        concurrency: int = 4,
        ack_wait: float = 30.0,
        max_timeout: float = math.inf,
    ) -> None:
        self.js, self.ns, self.hosted = js, ns, hosted
        self.max_timeout = max_timeout
        self.max_bytes, self.concurrency, self.ack_wait = max_bytes, concurrency, ack_wait
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.running: dict[int, Any] = {}
        self.sub: Any = None

    async def start(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        dist = self.hosted.provenance.distribution
        durable = p.consumer_name(self.hosted.name, dist)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=20,
            filter_subject=p.jobs_subject(self.ns, self.hosted.name, dist),
        )
        stream = p.stream_name(self.ns, "JOBS")
        try:
            await self.js.add_consumer(stream, config)
        except Exception as exc:  # exists with another config: bind to it as it is
            log.debug("durable consumer %s: %s", durable, exc)
        self.sub = await self.js.pull_subscribe_bind(durable=durable, stream=stream)
        self.tasks = [asyncio.ensure_future(self._loop()) for _ in range(self.concurrency)]

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                msgs = await self.sub.fetch(1, timeout=1.0)
            except Exception as exc:
                if type(exc).__name__ != "TimeoutError" and not self.stopping.is_set():
                    log.debug("durable fetch for %s: %r", self.hosted.name, exc)
                    await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                if self.stopping.is_set():
                    with contextlib.suppress(Exception):
                        await msg.nak()
                    continue
                self.running[id(msg)] = msg
                try:
                    await self._handle(msg)
                except Exception as exc:  # leave it for redelivery
                    log.warning("durable job for %s failed: %r", self.hosted.name, exc)
                finally:
                    self.running.pop(id(msg), None)

    async def _handle(self, msg: Any) -> None:
        headers = msg.headers or {}
        key = headers.get(p.H_KEY) or ""
        try:
            secret = bytes.fromhex(headers.get(p.H_SECRET) or "")
            p.check_key(key)
        except ValueError:
            secret = b""
        if len(secret) < 16:
            log.warning(
                "durable job for %s without a valid key and secret (from a caller older than %s?): dropped",
                self.hosted.label,
                p.PROTOCOL,
            )
            await msg.term()
            return
        if headers.get(p.H_REQUIRE) and not self._in_range(headers[p.H_REQUIRE]):
            await msg.nak(delay=0.1)  # for a worker of a version the caller requires
            return
        tag = p.result_tag(secret)
        log.debug("durable job %s for %s: delivery %s", key, self.hosted.name, msg.metadata.num_delivered)
        found = await existing_result(self.js, self.ns, key, tag)
        if found is not None and signed(found, secret, key):
            await msg.ack()  # done by a replica that died before acking
            return
        beat = asyncio.ensure_future(self._heartbeat(msg))
        token = current_traceparent.set(p.new_traceparent(headers.get(p.H_TRACEPARENT)))
        out: dict[str, str] = {}
        try:
            timeout = p.capped_timeout(headers.get(p.H_TIMEOUT), self.hosted.timeout, self.max_timeout)
            data = await call_hosted(
                self.hosted, p.decode_request(msg.data), timeout=timeout, max_bytes=self.max_bytes
            )
            out[p.H_STATUS] = "ok"
        except CallFailedError as failure:
            data = b""
            error = " ".join(failure.description.splitlines()).strip()  # as a header carries it
            out.update({p.H_STATUS: "error", p.H_ERROR: error, p.H_ERROR_CODE: failure.code})
        finally:
            beat.cancel()
            current_traceparent.reset(token)
        out[p.H_MAC] = p.result_mac(secret, key, out, data)
        await self.js.publish(p.results_subject(self.ns, key, tag), data, headers=out)
        await msg.ack()
        log.info(
            "durable job %s for %s done (delivery %s)", key, self.hosted.name, msg.metadata.num_delivered
        )

    def _in_range(self, spec: str) -> bool:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        from ._versions import satisfies

        try:
            return satisfies(self.hosted.provenance.version, SpecifierSet(spec))
        except InvalidSpecifier:
            return True  # not ours to judge: run it

    async def _heartbeat(self, msg: Any) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.ack_wait / 3))
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def stop(self, deadline: float) -> None:
        """Stop pulling; let running jobs finish until ``deadline`` (monotonic), then give them back."""
        self.stopping.set()
        while self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for msg in list(self.running.values()):
            with contextlib.suppress(Exception):
                await msg.nak()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()
