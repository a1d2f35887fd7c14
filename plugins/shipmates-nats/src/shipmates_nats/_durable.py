"""Durable delegation through JetStream: a work-queue stream of jobs and a results stream.

The caller publishes a job with ``Nats-Msg-Id = key`` (JetStream drops duplicates inside the
dedupe window), then waits for ``NS.results.<key>``. Every ``serve`` replica pulls jobs of its
siblings from one shared durable consumer; while a job runs the worker keeps telling JetStream
it is in progress, so a worker that dies stops doing so and the job is redelivered to another
replica after ``ack_wait``. The result is published with the same ``Nats-Msg-Id`` into a stream
that dedupes it too, and a worker skips a job whose result already exists: the caller gets
exactly one result per key. (The sibling itself may run twice when a worker dies mid-task.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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


async def existing_result(js: Any, ns: str, key: str) -> Any | None:
    """The stored result message for ``key``, or None."""
    from nats.js.errors import NotFoundError

    try:
        return await js.get_last_msg(p.stream_name(ns, "RESULTS"), p.results_subject(ns, key))
    except NotFoundError:
        return None


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
    nc: Any, js: Any, ns: str, name: str, body: bytes, key: str, *, timeout: float, headers: dict[str, str]
) -> str:
    """Submit a durable job (idempotent on ``key``) and wait for its single result."""
    from nats.js.errors import NotFoundError

    p.check_key(key)
    try:
        await ensure_streams(js, ns)
    except Exception as exc:
        raise RemoteCallError(
            f"durable call to '{name}' needs JetStream, which the NATS server does not offer "
            f"({type(exc).__name__}: {exc}); start the server with JetStream (`shipmates nats up` does)"
        ) from None
    try:
        await js.consumer_info(p.stream_name(ns, "JOBS"), name)
    except NotFoundError:
        raise RemoteCallError(
            f"no durable worker for sibling '{name}' in namespace '{ns}': start `shipmates serve` "
            "with JetStream enabled on the NATS server (shipmates nats up enables it)"
        ) from None
    sub = await nc.subscribe(p.results_subject(ns, key), max_msgs=1)
    try:
        found = await existing_result(js, ns, key)
        if found is not None:
            return _result_text(found.headers, found.data, name)
        hdrs = {**headers, p.H_MSG_ID: key}
        await js.publish(p.jobs_subject(ns, name), body, headers=hdrs, timeout=min(timeout, 10.0))
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
                return _result_text(msg.headers, msg.data, name)
            except TimeoutError:
                pass
            except Exception as exc:  # nats TimeoutError is not asyncio's on every version
                if type(exc).__name__ != "TimeoutError":
                    raise
            found = await existing_result(js, ns, key)  # a result missed across a reconnect
            if found is not None:
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
    ) -> None:
        self.js, self.ns, self.hosted = js, ns, hosted
        self.max_bytes, self.concurrency, self.ack_wait = max_bytes, concurrency, ack_wait
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.running: dict[int, Any] = {}
        self.sub: Any = None

    async def start(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        config = ConsumerConfig(
            durable_name=self.hosted.name,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=20,
            filter_subject=p.jobs_subject(self.ns, self.hosted.name),
        )
        stream = p.stream_name(self.ns, "JOBS")
        try:
            await self.js.add_consumer(stream, config)
        except Exception as exc:  # exists with another config: bind to it as it is
            log.debug("durable consumer %s: %s", self.hosted.name, exc)
        self.sub = await self.js.pull_subscribe_bind(durable=self.hosted.name, stream=stream)
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
        key = headers.get(p.H_MSG_ID) or f"seq-{msg.metadata.sequence.stream}"
        log.debug("durable job %s for %s: delivery %s", key, self.hosted.name, msg.metadata.num_delivered)
        if await existing_result(self.js, self.ns, key) is not None:
            await msg.ack()  # done by a replica that died before acking
            return
        beat = asyncio.ensure_future(self._heartbeat(msg))
        token = current_traceparent.set(p.new_traceparent(headers.get(p.H_TRACEPARENT)))
        out: dict[str, str] = {p.H_MSG_ID: key}
        try:
            timeout = float(headers.get(p.H_TIMEOUT, "0") or 0) or None
            data = await call_hosted(
                self.hosted, p.decode_request(msg.data), timeout=timeout, max_bytes=self.max_bytes
            )
            out[p.H_STATUS] = "ok"
        except CallFailedError as failure:
            data = b""
            out.update({p.H_STATUS: "error", p.H_ERROR: failure.description, p.H_ERROR_CODE: failure.code})
        finally:
            beat.cancel()
            current_traceparent.reset(token)
        await self.js.publish(p.results_subject(self.ns, key), data, headers=out)
        await msg.ack()
        log.info(
            "durable job %s for %s done (delivery %s)", key, self.hosted.name, msg.metadata.num_delivered
        )

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
