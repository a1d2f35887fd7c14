"""``shipmates serve``: host local siblings as NATS micro services (one per sibling).

Each service answers the micro discovery verbs under ``NS.$SRV`` with metadata carrying the
sibling's card, and has one ``invoke`` endpoint on ``NS.agents.<name>.<dist>.invoke`` in a queue
group, so any number of ``serve`` processes of one distribution are load-balanced replicas. On
SIGTERM/SIGINT the server leaves discovery, stops taking requests, finishes in-flight ones until
the drain deadline, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from shipmates import Provenance
from shipmates.plugin import (
    GcPause,
    attach_trace_context,
    current_budget,
    model_label,
    set_budget,
    set_delegation_path,
)

from . import _protocol as p
from ._config import DEFAULT_MAX_TIMEOUT, NatsSettings, connect
from ._durable import DurableWorker, ensure_streams
from ._eager import resume
from ._heartbeat import Heartbeat
from ._invoke import (
    CallFailedError,
    EventCollector,
    Hosted,
    answer_bytes,
    argument,
    call_events,
    call_failure,
    call_hosted,
    current_traceparent,
    events_header,
)
from ._protocol import capped_timeout
from ._routing import E_BUSY, ROUTE_PROTOCOL, direct_subject
from ._slots import Slots
from ._stream_serve import StreamReplier
from ._wire import Publisher

log = logging.getLogger("shipmates_nats")
REAP_INTERVAL = 0.1
_NO_HEADERS: dict[str, str] = {}


EAGER = sys.version_info >= (3, 11)
"""Start each call inline and make a task only if it has to wait (``create_task(context=)``)."""


class SiblingServer:
    """Serves ``siblings`` (pairs of sibling and provenance) on NATS until stopped."""

    def __init__(
        self,
        siblings: list[tuple[Any, Provenance]],
        settings: NatsSettings,
        *,
        max_inflight: int = 64,
        max_timeout: float | None = None,
        drain_timeout: float = 30.0,
        durable: bool = True,
        ack_wait: float = 30.0,
        durable_concurrency: int = 4,
    ) -> None:
        self.settings = settings
        self.ns = settings.namespace
        self.max_inflight = max_inflight
        self.max_timeout = max_timeout
        """Longest run of any call, whatever the caller asks (None: see :meth:`cap`)."""
        self.drain_timeout = drain_timeout
        self.want_durable = durable
        self.ack_wait = ack_wait
        self.durable_concurrency = durable_concurrency
        self.hosted = [Hosted(s, prov, {}) for s, prov in siblings]
        self.nc: Any = None
        self.services: list[Any] = []
        self.workers: list[DurableWorker] = []
        self.inflight: dict[asyncio.Task[None], float] = {}
        """In-flight calls and their deadlines (loop time)."""
        self.expired: set[asyncio.Task[None]] = set()
        self.reaper: asyncio.Task[None] | None = None
        self.slots = Slots(max_inflight)
        self.stopped = asyncio.Event()
        self.durable = False
        self.handled = 0
        self.verbose = log.isEnabledFor(logging.DEBUG)
        self.collect_events = False
        self.replier: StreamReplier | None = None
        """Streams the replies of calls that ask for it (started once connected)."""
        self.limit_bytes = self.max_bytes
        """``max_bytes``, fixed once connected (read on every call)."""
        self.publisher: Any = None
        """Sends the answers (:class:`~._wire.Publisher`), made once connected."""
        self.outer_budget = False
        """Whether ``serve`` itself runs under a budget (calls copy its context): then a call
        without a budget header must clear it."""
        self.heartbeat = Heartbeat(self)

    def cap(self, h: Hosted) -> float:
        """Longest run of a call to ``h``: ``max_timeout``, by default the longer of the sibling's own
        timeout and :data:`DEFAULT_MAX_TIMEOUT`."""
        return self.max_timeout if self.max_timeout is not None else max(h.timeout, DEFAULT_MAX_TIMEOUT)

    @property
    def max_bytes(self) -> int:
        server_max = getattr(self.nc, "max_payload", 0) or self.settings.max_bytes
        return min(self.settings.max_bytes, server_max)

    async def start(self) -> None:
        if os.environ.get("SHIPMATES_NATS_TRACE", "1") != "0":
            self._collect_events()
        # Sync siblings run in threads: as many as calls may be in flight (the default pool has ~6).
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=self.max_inflight, thread_name_prefix="sibling")
        )
        self.nc = await connect(
            self.settings,
            name=f"shipmates-serve@{socket.gethostname()}:{os.getpid()}",
            inbox_prefix=p.inbox_prefix(self.ns),
        )
        from nats.micro.service import Service, ServiceConfig  # once connect() has imported nats

        self.limit_bytes = self.max_bytes
        self.publisher = Publisher(self.nc)
        self.outer_budget = current_budget() is not None
        self.replier = StreamReplier(self.nc)
        await self.replier.start()
        js = None
        if self.want_durable:
            js = self.nc.jetstream()
            try:
                await ensure_streams(js, self.ns)
                self.durable = True
            except Exception as exc:
                log.warning(
                    "durable delegation off: JetStream unavailable on %s (%s)", self.settings.display_url, exc
                )
        for h in self.hosted:
            prov = h.provenance
            h.card = p.build_card(
                h.spec,
                distribution=prov.distribution,
                version=prov.version,
                timeout=min(h.default_timeout(), self.cap(h)),
                durable=self.durable and bool(getattr(h.sibling, "durable", False)),
            )
            h.card["durableWorker"] = self.durable
            h.card["protocols"].append(ROUTE_PROTOCOL)  # its own subject; busy refusals when full
            h.card["idempotent"] = getattr(h.sibling, "idempotent", False) is True
            h.card["model"] = model_label(h.sibling)  # own model, or "session default (NAME)"
            config = ServiceConfig(
                name=h.name,
                version=p.semver(prov.version),
                description=h.spec.description,
                metadata=p.card_metadata(h.card),
                queue_group=p.QUEUE_GROUP,
            )
            service = Service(self.nc, config)
            service._prefix = p.srv_prefix(self.ns)  # namespaced discovery subjects
            subject = p.invoke_subject(self.ns, h.name, prov.distribution)
            await service.add_endpoint(
                name="invoke", subject=subject, handler=self._handler(h), metadata={"format": "json"}
            )
            await service.add_endpoint(  # load-aware routing (_routing): this replica alone
                name="direct",
                subject=direct_subject(subject, service.id),
                handler=self._handler(h, direct=True),
            )
            await service.start()
            self.services.append(service)
            if self.durable and js is not None:
                worker = DurableWorker(
                    js,
                    self.ns,
                    h,
                    max_bytes=self.max_bytes,
                    ack_wait=self.ack_wait,
                    concurrency=self.durable_concurrency,
                    max_timeout=self.cap(h),
                )
                await worker.start()
                self.workers.append(worker)
        self.reaper = asyncio.ensure_future(self._reap())
        await self.heartbeat.start()
        await self.nc.flush()
        await self._warn_about_rivals()

    async def _warn_about_rivals(self) -> None:
        """Say so when another distribution serves one of our names here: captains see a conflict."""
        inbox = self.nc.new_inbox()
        rivals: set[str] = set()
        ours = {h.name: h.provenance.distribution for h in self.hosted}

        async def seen(msg: Any) -> None:
            with contextlib.suppress(Exception):
                card = p.parse_card(json.loads(msg.data).get("metadata"))
                if card and card["name"] in ours and card.get("distribution") != ours[card["name"]]:
                    rivals.add(
                        f"'{card['name']}' is also served by {card.get('distribution')} {card.get('version')}"
                    )

        sub = await self.nc.subscribe(inbox, cb=seen)
        await self.nc.publish(f"{p.srv_prefix(self.ns)}.INFO", b"", reply=inbox)
        await asyncio.sleep(0.15)
        await sub.unsubscribe()
        for line in sorted(rivals):
            log.warning(
                "%s in namespace %s: a captain that absorbed one keeps calling only that one, "
                "the others report a name conflict and use neither",
                line,
                self.ns,
            )

    def _collect_events(self) -> None:
        """Record the tool calls our siblings make, to send them back with each answer."""
        from shipmates import get_plugin_manager

        pm = get_plugin_manager()
        if pm.get_plugin("shipmates_nats.events") is None:
            pm.register(EventCollector(), name="shipmates_nats.events")
        self.collect_events = True

    def _handler(self, h: Hosted, direct: bool = False) -> Any:
        """``direct``: the replica's own subject, where a call is refused at once while every slot
        is taken (the captain tries another replica) instead of waiting for one."""
        loop = asyncio.get_running_loop()
        cap = self.cap(h)
        own_limit = min(h.timeout, cap)
        slots = self.slots

        async def handle(request: Any) -> None:
            headers = request.headers
            asked = headers.get(p.H_TIMEOUT) if headers else None
            limit = capped_timeout(asked, h.timeout, cap) if asked else own_limit
            deadline = loop.time() + limit
            if self.heartbeat.paused:  # the crew's budget is spent: no new work until it is raised
                with contextlib.suppress(Exception):
                    await request.respond_error(
                        p.E_UNAVAILABLE, f"{h.label}: budget spent: {self.heartbeat.paused}"
                    )
                return
            if not slots.take():  # back-pressure: at most max_inflight calls at once
                if direct:  # the replica's own subject: refuse at once, the captain tries another
                    with contextlib.suppress(Exception):
                        await request.respond_error(
                            E_BUSY, f"{h.label}: busy ({self.max_inflight} calls in flight)"
                        )
                    return
                await slots.wait()
                if loop.time() >= deadline:  # its caller gave up while it waited for a slot
                    slots.release()
                    with contextlib.suppress(Exception):
                        await request.respond_error(
                            p.E_TIMEOUT,
                            f"{h.label} did not start within {limit:g}s: all {self.max_inflight} call slots "
                            "of this replica stayed busy (serve --max-inflight, --max-timeout)",
                        )
                    return
            coro = self._respond(h, request, limit)
            if EAGER:
                ctx = contextvars.copy_context()
                try:
                    first = ctx.run(coro.send, None)  # most calls finish right here: no task at all
                except StopIteration:
                    slots.release()
                    return
                task = loop.create_task(resume(coro, first), context=ctx)
            else:
                task = loop.create_task(coro)
            self.inflight[task] = deadline
            task.add_done_callback(self._done)

        return handle

    def _done(self, task: asyncio.Task[None]) -> None:
        self.inflight.pop(task, None)
        self.expired.discard(task)
        self.slots.release()

    async def _reap(self) -> None:
        """Cancel calls past their deadline: one sweep for all, instead of a timer per call."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            now = loop.time()
            for task, deadline in list(self.inflight.items()):
                if deadline < now and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()

    async def _respond(self, h: Hosted, request: Any, limit: float) -> None:
        # Each call runs in a context of its own (copied by ``handle`` or its task), so the
        # context variables set here need no undoing.
        headers = request.headers or _NO_HEADERS
        span = p.continue_trace(headers.get(p.H_TRACEPARENT))
        current_traceparent.set(span)
        if self.collect_events:
            call_events.set([])
        caller = headers.get(p.H_CALLER)
        path = tuple(x for x in caller.split(",") if x) if caller else None
        if path:
            set_delegation_path(path)
        end_trace = attach_trace_context(headers)  # with OpenTelemetry: the caller's span is the parent
        max_bytes = self.limit_bytes
        try:
            budget = headers.get(p.H_BUDGET)
            if budget or self.outer_budget:  # the caller's remaining budget, or none
                set_budget(p.read_budget(budget))
            body = request.data
            if len(body) > max_bytes:
                raise CallFailedError(
                    p.E_TOO_LARGE,
                    f"request of {len(body)} bytes for {h.label} exceeds the limit of {max_bytes} bytes",
                )
            query = p.plain_query(body) if h.plain else None
            reply_headers: dict[str, str] | None
            if headers.get(p.H_STREAM) and self.replier is not None:  # events as they happen, then the end
                arg = argument(h, p.decode_request(body))
                data, reply_headers = await self.replier.reply(h, request, arg, limit, max_bytes)
            elif query is not None:  # the common case without the generic path's layers
                try:
                    result = await h.call(query)
                except Exception as exc:
                    raise call_failure(h, exc, limit) from None
                data = answer_bytes(h, result, max_bytes)
                reply_headers = events_header(call_events.get())
            else:
                data = await call_hosted(
                    h, p.decode_request(body), timeout=limit, max_bytes=max_bytes, bounded=False
                )
                reply_headers = events_header(call_events.get())
            self.handled += 1
            reply = request._msg.reply
            if reply:  # (without one, micro's respond refuses: nobody would read it)
                await self.publisher.publish(reply, data, headers=reply_headers, checked=True)
        except CallFailedError as failure:
            with contextlib.suppress(Exception):
                await request.respond_error(
                    failure.code, failure.description, headers={p.H_TRACEPARENT: span}
                )
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task in self.expired:  # our reaper: a timeout, not a shutdown
                capped = (
                    " (the longest this replica allows: serve --max-timeout)" if limit >= self.cap(h) else ""
                )
                with contextlib.suppress(Exception):
                    await request.respond_error(
                        p.E_TIMEOUT,
                        f"{h.label} did not answer within {limit:g}s{capped}",
                        headers={p.H_TRACEPARENT: span},
                    )
                return
            with contextlib.suppress(Exception):
                await request.respond_error(
                    p.E_UNAVAILABLE,
                    f"{h.label}: the serving replica shut down before the call finished; call again",
                )
            raise
        except Exception as exc:  # never leave a caller waiting
            with contextlib.suppress(Exception):
                await request.respond_error(p.E_FAILED, f"{h.label}: {type(exc).__name__}: {exc}")
        finally:
            if end_trace is not None:
                end_trace()
            if self.verbose:
                log.debug("served %s trace=%s", h.name, p.trace_id(span))

    async def drain(self) -> None:
        """Leave discovery, stop taking calls, finish in-flight ones until the deadline, disconnect."""
        deadline = time.monotonic() + self.drain_timeout
        await self.heartbeat.stop()
        from nats.micro.service import ServiceVerb

        for service in self.services:
            for key, sub in list(service._subscriptions.items()):
                if key == ServiceVerb.PING:
                    continue  # its own PING: captains holding a call check it is still there
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            for endpoint in service._endpoints:
                if endpoint._subscription is not None:
                    with contextlib.suppress(Exception):
                        await endpoint._subscription.drain()  # take what is buffered, then stop
        await asyncio.gather(*(w.stop(deadline) for w in self.workers))
        if self.inflight:
            log.info(
                "draining: waiting for %d call(s), at most %.0fs",
                len(self.inflight),
                max(0.0, deadline - time.monotonic()),
            )
            _, pending = await asyncio.wait(set(self.inflight), timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        if self.reaper is not None:
            self.reaper.cancel()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        self.stopped.set()

    async def run(self, ready: Any = None, *, startup: GcPause | None = None) -> None:
        """Start, report ready, serve until SIGTERM/SIGINT, then drain.

        ``startup``: the collector pause the command began with; it ends here, once everything
        is served, with a collection and a freeze (by default a fresh one does just that)."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        # The start-up heap (pydantic, plugins) never needs collecting again: no long GC pauses.
        (startup or GcPause()).end(collect=True)
        if ready is not None:
            ready(self)
        await stop.wait()
        log.info("shutting down: draining (deadline %.0fs)", self.drain_timeout)
        await self.drain()
