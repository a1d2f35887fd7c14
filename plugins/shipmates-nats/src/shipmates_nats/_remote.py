"""The captain's side: find siblings served on NATS and call them through proxy siblings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from packaging.specifiers import SpecifierSet
from shipmates import EndSession, Provenance, RunEvent, RunFinished, RunStarted
from shipmates.plugin import (
    DEFAULT_TOOL_TIMEOUT,
    ToolCallEvent,
    background_loop,
    current_budget,
    delegation_path,
    inject_trace_context,
    on_background_loop,
    plugin_host,
    report_tool_call,
    run_sync,
    submit,
)

from . import _protocol as p
from ._breaker import CircuitOpenError, Replicas, breaker_note, guarded, mark_counted
from ._config import NatsSettings, connect
from ._errors import NoReplicaError, PayloadTooLargeError, RemoteCallError, ReplicaLostError, replica_lost
from ._heartbeat import heartbeat_subject
from ._invoke import current_traceparent
from ._request import Watch, request
from ._routing import E_BUSY, Router, direct_subject, routable
from ._schema import model_from_schema
from ._stream_call import FIRST_CHECK, LIVENESS, NETWORK_GRACE, Replies, stream_call
from ._versions import WHERE, required, requirements, satisfies

log = logging.getLogger("shipmates_nats")
T = TypeVar("T")
E = TypeVar("E", bound="BaseException | None")

SCAN_MIN = 0.1
"""Seconds a discovery scan always listens for answers."""
SCAN_QUIET = 0.05
"""...then it stops once no answer came for this long..."""
SCAN_MAX = 1.0
"""...or after this long at most."""
POLL_INTERVAL = 2.0
LOCAL_AFTER = 8
"""Calls from one event loop before it gets a connection of its own."""


@dataclass
class Instance:
    id: str
    card: dict[str, Any]
    seen: float


@dataclass
class RemoteView:
    """One served name: its instances, grouped by distribution when they disagree."""

    name: str
    instances: dict[str, Instance] = field(default_factory=dict)

    def by_distribution(self) -> dict[str, list[Instance]]:
        """Instances by distribution (its subject token: what a call is addressed to)."""
        groups: dict[str, list[Instance]] = {}
        for inst in sorted(self.instances.values(), key=lambda i: i.id):
            groups.setdefault(p.dist_token(inst.card.get("distribution")), []).append(inst)
        return groups


class RemoteSibling:
    """A proxy sibling: absorbed like a local one, each call is a NATS request to a replica.

    It is bound to one distribution for good: calls go to that distribution's replicas only,
    whatever else comes to serve the same name.
    """

    def __init__(
        self, crew: RemoteCrew, card: dict[str, Any], instances: list[str], hosts: list[str] | None = None
    ) -> None:
        self.crew = crew
        self.name: str = card["name"]
        self.distribution: str | None = card.get("distribution")
        self.subject = p.invoke_subject(crew.ns, self.name, self.distribution)
        self.breaker_key = (crew.ns, self.name, self.distribution or "")
        self.replica_breakers = Replicas(self.breaker_key)
        """The breakers of its replicas (:mod:`._breaker`): routing skips open ones."""
        self._watches: dict[str, tuple[Any, str, Watch]] = {}
        """Per replica: the connection, its own subject and the liveness check of calls to it."""
        self.available = True
        self.instances: list[str] = []
        self.routes: list[str] = []
        """Instances that take calls on their own subject (:mod:`._routing`), within the version range."""
        self.fallback: Any = None
        """The local copy of this sibling that takes calls when no replica answers (``SHIPMATES_PREFER``)."""
        self.versions = ""
        self.exclusive = False
        """Some replicas are outside the required version range: never call the queue group."""
        self.update(card, instances, hosts)

    def update(self, card: dict[str, Any], instances: list[str], hosts: list[str] | None = None) -> None:
        """Take the newest card and instance list of this distribution (cheap; keeps the same object)."""
        self.card = card
        self.description: str = str(card.get("description") or "")
        schema = card.get("inputSchema")
        if schema != getattr(self, "_schema", None):
            self._schema = schema
            self.input_model = model_from_schema(self.name, schema) if isinstance(schema, dict) else None
        served = card.get("timeout")
        self.served_timeout = float(served) if isinstance(served, (int, float)) else DEFAULT_TOOL_TIMEOUT
        self.timeout = self.served_timeout + 2 * NETWORK_GRACE
        self.durable = bool(card.get("durable"))
        self.idempotent = card.get("idempotent") is True
        """Declared by the sibling: a call whose replica dies is retried once on another."""
        protocols = card.get("protocols")
        self.streams = isinstance(protocols, list) and p.STREAM_PROTOCOL in protocols
        model = card.get("model")
        self.model = model if isinstance(model, str) else None
        """The model the sibling uses where it is served (``/agents`` shows it)."""
        self.tools = [t.get("name") for t in card.get("tools") or () if isinstance(t, dict)]
        self.skills = [str(s) for s in card.get("skills") or ()]
        self.instances = sorted(instances)
        self.hosts = sorted(hosts) if hosts else [str(card.get("host") or "unknown host")]
        self.provenance = Provenance(
            "remote",
            self.distribution,
            card.get("version"),
            location=f"{self.crew.settings.display_url} namespace {self.crew.ns} "
            f"hosts {','.join(self.hosts)} instances {','.join(self.instances) or 'none'}"
            + self.versions
            + breaker_note(self.breaker_key, self.replica_breakers)
            + (f"; falls back to the local {_describe(self.fallback)}" if self.fallback is not None else ""),
        )
        self._label = f"remote sibling '{self.name}' ({self.provenance.describe()})"  # read per call

    @property
    def label(self) -> str:
        return self._label

    @property
    def where(self) -> str:
        """``"dist version on host(s) h1,h2"``: the provenance a conflict names."""
        return f"{self.provenance.describe()} on host(s) {','.join(self.hosts)}"

    def _headers(self, timeout: float | None = None) -> dict[str, str]:
        """traceparent always; the delegation path and a timeout only when there is one to pass."""
        headers: dict[str, str] = {}
        inject_trace_context(headers)  # OpenTelemetry's propagator when shipmates[otel] is on
        if p.H_TRACEPARENT not in headers:
            headers[p.H_TRACEPARENT] = p.new_traceparent(current_traceparent.get())
        if timeout is not None and timeout != self.served_timeout:
            headers[p.H_TIMEOUT] = f"{timeout:g}"
        stack = delegation_path()
        if stack:
            headers[p.H_CALLER] = ",".join(stack)
        budget = current_budget()
        if budget is not None:  # the replica runs under what is left, so it cannot overspend
            headers[p.H_BUDGET] = budget.to_header()
        return headers

    def _body(self, query: Any) -> bytes:
        body = p.encode_request(query)
        limit = self.crew.max_bytes
        if len(body) > limit:
            raise PayloadTooLargeError(
                f"request of {len(body)} bytes to {self.label} exceeds the limit of {limit} bytes "
                "(SHIPMATES_NATS_MAX_BYTES and the server's max_payload); send less or raise the limit"
            )
        return body

    async def ainvoke(self, query: Any) -> str:
        """Ask a replica; durable siblings go through the JetStream work queue. Circuit breakers
        (:mod:`._breaker`) fail fast after repeated failures. With a local fallback, the local
        copy answers when no replica does."""
        if self.fallback is not None and not self.available:
            return await self._local(query)  # every replica is gone: no network round trip
        try:
            with guarded(self.breaker_key, self.label):
                return await self._ainvoke(query)
        except (NoReplicaError, CircuitOpenError) as exc:
            if self.fallback is None:
                raise
            log.info("%s; the local copy takes the call", exc)
            return await self._local(query)

    async def _ainvoke(self, query: Any) -> str:
        if self.durable:
            return await self._adelegate(query)
        body = self._body(query)
        headers = self._headers()
        wait = self.served_timeout + NETWORK_GRACE
        crew = self.crew
        # The common case inline (no extra coroutine per call): this loop's own open connection.
        entry = crew._local.get(asyncio.get_running_loop())
        nc = entry[0] if entry is not None and not entry[0].is_closed else await crew.caller_nc()
        if nc is None:
            text, events = await on_background_loop(self.call(None, body, headers, wait))
        elif len(self.routes) < 2 and not self.exclusive and not self.replica_breakers.by_id:
            # Nothing to route (one replica at most, no version range, no failing one): inline.
            rid = self.routes[0] if self.routes else None
            try:
                msg = await self._request(nc, rid, body, headers, wait)  # (no coroutine of its own)
            except Exception as exc:
                if rid is None or not _no_responders(exc):
                    raise crew.call_error(self, exc, wait, headers) from None
                msg = None  # gone since the last scan: call() looks again
            msg_headers = msg.headers if msg is not None else None
            if msg is None or (rid is not None and msg_headers and msg_headers.get(p.H_ERROR_CODE) == E_BUSY):
                text, events = await self.call(
                    nc, body, headers, wait, [rid] if rid else [], gone=msg is None
                )
            else:
                text = _answer(self, msg_headers, msg.data)
                events = msg_headers.get(p.H_EVENTS) if msg_headers else None
        else:
            text, events = await self.call(nc, body, headers, wait)
        if events:
            _replay(self, events)
        return text

    async def call(
        self,
        nc: Any,
        body: bytes,
        headers: dict[str, str],
        wait: float,
        tried: list[str] | None = None,
        gone: bool = False,
    ) -> tuple[str, str | None]:
        """One call, routed (:mod:`._routing`): the answer, and the served sibling's own tool calls.

        A replica that refuses as busy, or is gone before the call reached it, is skipped for the
        next (once gone, after a fresh look at who serves); one that dies holding the call is retried
        once elsewhere for an idempotent sibling. ``tried``: replicas to skip; ``gone``: one of them
        left.
        """
        crew = self.crew
        if nc is None:
            nc = crew.nc if crew.nc is not None and not crew.nc.is_closed else await crew._connected()
        router = crew.router
        tried = tried if tried is not None else []
        retried = rescanned = False
        deadline = time.monotonic() + wait
        while True:
            if gone and not rescanned:  # a replica left since the last scan: who serves now?
                rescanned = True
                await crew.rescan()
            rid = self.route(tried)
            if rid is None and self.exclusive:  # only the replicas in range: wait for one
                if not self.routes:
                    raise self.none_in_range()
                if time.monotonic() >= deadline:
                    from nats.errors import TimeoutError as NatsTimeout

                    raise crew.call_error(self, NatsTimeout(), wait, headers)
                await asyncio.sleep(0.02)
                tried.clear()
                continue
            router.started(rid)
            started = time.monotonic()
            try:
                msg = await self._request(nc, rid, body, headers, wait)
            except asyncio.CancelledError:
                self.unanswered(rid)
                raise
            except Exception as exc:
                if rid is None:
                    router.finished(rid, None)
                    raise crew.call_error(self, exc, wait, headers) from None
                tried.append(rid)
                if _no_responders(exc):
                    self.unanswered(rid)
                    gone = True
                    continue  # that replica left before the call reached it: nothing ran
                router.finished(rid, None)
                if isinstance(exc, ReplicaLostError):
                    self.settle(rid, exc)
                    if self.idempotent and not retried:
                        retried = True
                        log.warning("%s; retrying once on another replica (idempotent)", exc)
                        continue
                    raise mark_counted(RemoteCallError(f"{exc}; {self._not_retried()}"), exc) from None
                raise self.settle(rid, crew.call_error(self, exc, wait, headers)) from None
            msg_headers = msg.headers
            if rid is not None and msg_headers and msg_headers.get(p.H_ERROR_CODE) == E_BUSY:
                self.unanswered(rid, busy=True)
                tried.append(rid)
                continue
            text = self.answered(rid, msg_headers, msg.data, time.monotonic() - started)
            return text, msg_headers.get(p.H_EVENTS) if msg_headers else None

    def answered(self, rid: str | None, headers: dict[str, str] | None, data: bytes, seconds: float) -> str:
        """The answer of a reply from replica ``rid`` (None: the queue group) after ``seconds``, its
        outcome counted by the router and the breakers; raises the error the reply carries."""
        router = self.crew.router
        try:
            text = _answer(self, headers, data)
        except Exception as exc:
            router.finished(rid, None)  # a failing replica is not a fast one
            raise self.settle(rid, exc) from None
        router.finished(rid, seconds)
        self.settle(rid, None)
        return text

    def route(self, tried: list[str], force: bool = False) -> str | None:
        """The replica for the next attempt (None: the queue group, or none left). One replica
        alone gets the call on its own subject (so a call it holds when it dies fails at once).

        Replicas whose breaker is open are skipped (a half-open one takes this call as its probe);
        when every replica's is open, the call fails fast with :class:`CircuitOpenError`."""
        breakers = self.replica_breakers
        routes = breakers.routes(self.routes, self.label) if breakers.by_id else self.routes
        if len(self.routes) < 2 and not self.exclusive and not breakers.tripped():
            return routes[0] if routes and routes[0] not in tried else None
        skip = list(tried)
        while True:
            rid = self.crew.router.pick(routes, skip, force)
            if rid is None or breakers.take(rid):
                return rid
            skip.append(rid)

    def settle(self, rid: str | None, error: E) -> E:
        """Count the outcome (``error``, or None: answered) of a call routed among replicas on its
        replica's breaker (a sibling with one replica counts on its own, unless that replica's
        breaker is already open from when there were more). Returns ``error``."""
        breakers = self.replica_breakers
        if rid is not None and (len(self.routes) > 1 or rid in breakers.by_id):
            breakers.settle(rid, error, self.label)
        return error

    def unanswered(self, rid: str | None, busy: bool = False) -> None:
        """A call to ``rid`` got no answer and ran nowhere (refused as ``busy``, or the replica was
        gone): the router learns it, and a breaker probe the call held may go again."""
        router = self.crew.router
        router.finished(rid, None)
        if busy and rid is not None:
            router.busy(rid)
        self.replica_breakers.release(rid)

    def none_in_range(self) -> NoReplicaError:
        """The error of a call with a version range that no replica serving now is within."""
        return NoReplicaError(f"no replica of {self.label} within the range required ({WHERE})")

    def _request(
        self, nc: Any, rid: str | None, body: bytes, headers: dict[str, str], wait: float
    ) -> Coroutine[Any, Any, Any]:
        """The request, to the queue group or to replica ``rid``, which is checked every
        :data:`LIVENESS` seconds while the call waits (:class:`~._request.Watch`)."""
        if rid is None:
            return request(nc, self.subject, body, headers, wait)
        found = self._watches.get(rid)
        if found is None or found[0] is not nc:
            watch = Watch(
                LIVENESS,
                lambda: self.crew.alive(nc, self.name, rid),
                lambda: replica_lost(self.label, rid),
                first=FIRST_CHECK,
            )
            found = self._watches[rid] = (nc, direct_subject(self.subject, rid), watch)
        return request(nc, found[1], body, headers, wait, found[2])

    async def _local(self, query: Any) -> str:
        """Call the local fallback (its own input model when it is typed)."""
        from shipmates.plugin import sibling_spec

        spec = sibling_spec(self.fallback)
        arg = query
        if spec.input_model is not None and not isinstance(query, spec.input_model):
            data = query.model_dump() if hasattr(query, "model_dump") else query
            arg = spec.input_model.model_validate(data if isinstance(data, dict) else {"query": data})
        result = await (spec.call(arg) if spec.is_async else asyncio.to_thread(spec.call, arg))
        return result if isinstance(result, str) else str(result)

    def astream(self, query: Any) -> AsyncIterator[RunEvent]:
        """The call's events as they happen: the served run's own tool and model calls, text
        deltas, then a ``RunFinished`` with the answer and the usage of its whole tree.

        A replica that does not stream (its card lacks :data:`~._protocol.STREAM_PROTOCOL`) and
        durable siblings answer in one reply: started, then finished.
        """
        if self.streams and not self.durable:
            return self._streamed(query)
        return self._one_reply(query)

    async def _streamed(self, query: Any) -> AsyncIterator[RunEvent]:
        """:func:`stream_call`, with the breakers, the local fallback and the idempotent retry of
        :meth:`ainvoke`."""
        if self.fallback is not None and not self.available:
            async for event in self._one_reply(query, local=True):
                yield event
            return
        retried = started = False
        try:
            with guarded(self.breaker_key, self.label):
                while True:
                    try:
                        async for event in stream_call(self, query):
                            if isinstance(event, RunStarted) and event.depth == 0:
                                if started:
                                    continue  # said once, by the first attempt
                                started = True
                            yield event
                        return
                    except ReplicaLostError as exc:
                        if not self.idempotent or retried:
                            raise mark_counted(
                                RemoteCallError(f"{exc}; {self._not_retried()}"), exc
                            ) from None
                        retried = True
                        log.warning("%s; retrying once on another replica (idempotent)", exc)
        except (NoReplicaError, CircuitOpenError) as exc:
            if self.fallback is None:
                raise
            log.info("%s; the local copy takes the call", exc)
            text = await self._local(query)
            if not started:
                yield RunStarted(agent=self.name, query=str(query)[:400], model="local")
            yield RunFinished(agent=self.name, path=(self.name,), status="ok", output=text)

    async def _one_reply(self, query: Any, local: bool = False) -> AsyncIterator[RunEvent]:
        yield RunStarted(agent=self.name, query=str(query)[:400], model="local" if local else "remote")
        text = await (self._local(query) if local else self.ainvoke(query))
        yield RunFinished(agent=self.name, path=(self.name,), status="ok", output=text)

    def _not_retried(self) -> str:
        if self.idempotent:
            return "it was already retried once"
        return (
            f"not retried, since {self.name} does not declare `idempotent = True`: "
            "ask again, or use durable delegation for long jobs"
        )

    def invoke(self, query: Any) -> str:
        """Blocking :meth:`ainvoke`."""
        return run_sync(self.ainvoke(query))

    async def adelegate(self, query: Any, *, key: str | None = None, timeout: float | None = None) -> str:
        """Durable delegation: submitted to a JetStream work queue, idempotent on ``key``.

        A replica that dies mid-task leads to redelivery to another; calling again with the
        same key returns the same single result. The sibling's circuit breaker counts it.
        """
        with guarded(self.breaker_key, self.label):
            return await self._adelegate(query, key=key, timeout=timeout)

    async def _adelegate(self, query: Any, *, key: str | None = None, timeout: float | None = None) -> str:
        body = self._body(query)
        wait = timeout if timeout is not None else self.served_timeout
        headers = self._headers()
        spec = required(self.name, self.distribution)
        if spec is not None:  # a worker outside the range gives the job back for another
            headers[p.H_REQUIRE] = str(spec)
        key = p.check_key(key or uuid.uuid4().hex)
        return await on_background_loop(self.crew.submit_durable(self, body, key, headers, wait))

    def delegate(self, query: Any, *, key: str | None = None, timeout: float | None = None) -> str:
        """Blocking :meth:`adelegate`."""
        return run_sync(self.adelegate(query, key=key, timeout=timeout))

    def __repr__(self) -> str:
        return f"<RemoteSibling {self.name!r} {self.provenance.describe()} instances={self.instances}>"


class RemoteCrew:
    """One NATS connection (on shipmates' background loop) and what it has seen served in a namespace."""

    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self.ns = settings.namespace
        self.nc: Any = None
        self.js: Any = None
        self.views: dict[str, RemoteView] = {}
        self.scanned_at = 0.0
        self.proxies: dict[str, RemoteSibling] = {}
        """Name -> the proxy of the distribution first seen serving it (:func:`delegate`, tests)."""
        self.bound: dict[tuple[str, str], RemoteSibling] = {}
        """(name, distribution token) -> its proxy, one per distribution, kept across scans."""
        self._poller: Any = None
        self._rescan: Any = None
        self._local: dict[Any, tuple[Any, Any]] = {}
        self._calls: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._local_locks: dict[Any, asyncio.Lock] = {}
        self._replies: dict[Any, Replies] = {}
        self.router = Router()
        """The load of every replica (own calls and heartbeats): where the next call goes."""
        self.loop_local = os.environ.get("SHIPMATES_NATS_LOOP_LOCAL", "1") != "0"
        """Calls from another event loop use a connection of that loop (set the variable to 0
        to send every call through the background loop instead)."""

    # -- connection -------------------------------------------------------------------------

    async def _connected(self) -> Any:
        if self.nc is None or self.nc.is_closed:
            self.nc = await connect(
                self.settings, name="shipmates-captain", inbox_prefix=p.inbox_prefix(self.ns)
            )
            self.js = self.nc.jetstream()

            async def beat(msg: Any) -> None:
                self.router.heartbeat(msg.data)

            await self.nc.subscribe(heartbeat_subject(self.ns), cb=beat)
        return self.nc

    async def alive(self, nc: Any, name: str, instance: str) -> bool:
        """False once nothing answers the replica's own micro PING subject (it is gone); a slow
        answer counts as alive."""
        try:
            await nc.request(f"{p.srv_prefix(self.ns)}.PING.{name}.{instance}", b"", timeout=LIVENESS)
        except Exception as exc:
            return not _no_responders(exc)
        return True

    def connect(self) -> RemoteCrew:
        _run_within(self._connected(), self.settings.connect_timeout + 5)
        return self

    async def caller_nc(self) -> Any:
        """A connection owned by the caller's event loop, or None to go through the background loop.

        A loop that keeps calling (the REPL's, a server's) gets its own connection after a few
        calls, so calls skip the thread hop; it is closed when the loop shuts down
        (``asyncio.run`` closes async generators last: our closer is one). Short-lived loops,
        hooks and sync callers use the background loop's connection.
        """
        loop = asyncio.get_running_loop()
        entry = self._local.get(loop)
        if entry is not None and not entry[0].is_closed:
            return entry[0]
        if loop is background_loop() or not self.loop_local:
            return None
        calls = self._calls[loop] = self._calls.get(loop, 0) + 1
        if calls < LOCAL_AFTER:
            return None
        lock = self._local_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            entry = self._local.get(loop)
            if entry is not None and not entry[0].is_closed:
                return entry[0]
            nc = await connect(self.settings, name="shipmates-captain", inbox_prefix=p.inbox_prefix(self.ns))
            closer = _closer(nc, lambda: (self._local.pop(loop, None), self._local_locks.pop(loop, None)))
            await closer.__anext__()
            self._local[loop] = (nc, closer)
            return nc

    async def replies(self, nc: Any) -> tuple[Replies, Any]:
        """The streamed-reply subscription of ``nc`` (None: the background loop's connection),
        made on its first streamed call; run on ``nc``'s loop."""
        if nc is None:
            nc = self.nc if self.nc is not None and not self.nc.is_closed else await self._connected()
        found = self._replies.get(nc)
        if found is None:
            made = await Replies(nc).start()
            found = self._replies.setdefault(nc, made)
            if found is not made:
                await made.stop()
        return found, nc

    @property
    def max_bytes(self) -> int:
        server_max = getattr(self.nc, "max_payload", 0) or self.settings.max_bytes
        return min(self.settings.max_bytes, server_max)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                _run_within(self.nc.close(), 5)

    # -- discovery --------------------------------------------------------------------------

    async def _scan(self, max_wait: float = SCAN_MAX) -> dict[str, RemoteView]:
        nc = await self._connected()
        inbox = nc.new_inbox()
        replies: asyncio.Queue[Any] = asyncio.Queue()
        sub = await nc.subscribe(inbox, cb=replies.put)
        now = time.monotonic()
        try:
            await nc.publish(f"{p.srv_prefix(self.ns)}.INFO", b"", reply=inbox)
            start = last = time.monotonic()
            while True:
                elapsed = time.monotonic() - start
                if elapsed >= max_wait:
                    break
                wait = max(SCAN_MIN - elapsed, SCAN_QUIET - (time.monotonic() - last), 0.005)
                try:
                    msg = await asyncio.wait_for(replies.get(), min(wait, max_wait - elapsed))
                except TimeoutError:
                    if time.monotonic() - start >= SCAN_MIN and time.monotonic() - last >= SCAN_QUIET:
                        break
                    continue
                last = time.monotonic()
                self._absorb_info(msg.data, now)
        finally:
            await sub.unsubscribe()
        alive = now - 2 * POLL_INTERVAL - SCAN_MAX
        for view in self.views.values():
            view.instances = {k: v for k, v in view.instances.items() if v.seen >= alive}
        self.router.forget(i for view in self.views.values() for i in view.instances)
        self.scanned_at = time.monotonic()
        return self.views

    def _absorb_info(self, data: bytes, now: float) -> None:
        try:
            info = json.loads(data)
        except ValueError:
            return
        card = p.parse_card(info.get("metadata") if isinstance(info, dict) else None)
        if card is None or not isinstance(info.get("id"), str):
            return  # some other micro service in this namespace
        view = self.views.setdefault(card["name"], RemoteView(card["name"]))
        view.instances[info["id"]] = Instance(info["id"], card, now)

    def scan(self, max_wait: float = SCAN_MAX) -> dict[str, RemoteView]:
        """Ask every serving replica for its card (blocking, bounded by ``max_wait``); update proxies."""
        views = _run_within(self._scan(max_wait), max_wait + self.settings.connect_timeout + 5)
        self.siblings()
        return views

    def start_polling(self, interval: float | None = None) -> None:
        """Keep ``views`` fresh in the background, so refreshes before each turn cost nothing."""
        if self._poller is not None:
            return
        interval = interval or POLL_INTERVAL

        async def poll() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._refresh()

        self._poller = submit(poll())

    async def _refresh(self) -> None:
        """Scan, and give the proxies the replicas served now (on the background loop)."""
        try:
            await self._scan()
            self.siblings()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("NATS discovery poll failed: %s", exc)

    async def rescan(self) -> None:
        """A replica a proxy knew is gone: look again now rather than at the next poll (one scan
        at a time, shared by the calls that wait for it)."""
        if self._rescan is None or self._rescan.done():
            self._rescan = submit(self._refresh())
        await asyncio.wrap_future(self._rescan)

    def siblings(self) -> list[tuple[RemoteSibling, RemoteView, str, list[Instance]]]:
        """One entry per (name, distribution) served now, each with its own proxy (reused across scans).

        When one name is served by several distributions, each has an entry, so that discovery
        reports the conflict with every provenance; a proxy never changes distribution.
        """
        out: list[tuple[RemoteSibling, RemoteView, str, list[Instance]]] = []
        ranges = requirements()
        for name, view in sorted(self.views.items()):
            for dist, every in view.by_distribution().items():
                insts = _in_range(name, every, ranges)
                if not insts:
                    continue
                card = max(insts, key=lambda i: i.seen).card
                ids = [i.id for i in insts]
                hosts = sorted({str(i.card.get("host") or "unknown host") for i in insts})
                proxy = self.bound.get((name, dist))
                if proxy is None:
                    proxy = self.bound[(name, dist)] = RemoteSibling(self, card, ids, hosts)
                    self.proxies.setdefault(name, proxy)
                proxy.routes = [i.id for i in insts if routable(i.card)]
                proxy.replica_breakers.keep(ids)
                if any(r not in ids for r in proxy._watches):
                    proxy._watches = {r: w for r, w in proxy._watches.items() if r in ids}
                proxy.exclusive = len(insts) < len(every)
                proxy.versions = _versions_note(insts)
                proxy.update(card, ids, hosts)
                out.append((proxy, view, dist, insts))
        return out

    # -- calls ------------------------------------------------------------------------------

    def call_error(
        self, proxy: RemoteSibling, exc: Exception, timeout: float, headers: dict[str, str]
    ) -> Exception:
        """The error to raise for a failed request: NATS errors explained, any other one as it is."""
        from nats.errors import MaxPayloadError, NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        if isinstance(exc, NoRespondersError):
            return NoReplicaError(
                f"no replica of {proxy.label} is serving in namespace '{self.ns}' on "
                f"{self.settings.display_url}: start `shipmates serve` where it is installed, "
                "or check --namespace"
            )
        if isinstance(exc, NatsTimeout):
            return RemoteCallError(
                f"{proxy.label} did not answer within {timeout:g}s "
                f"(trace {p.trace_id(headers[p.H_TRACEPARENT])}); "
                "its replica may have died or be overloaded. The call was not retried, since it may "
                "not be idempotent: ask again, or use durable delegation for long jobs"
            )
        if isinstance(exc, MaxPayloadError):
            return PayloadTooLargeError(f"request to {proxy.label} is too large for the NATS server: {exc}")
        return exc

    async def submit_durable(
        self, proxy: RemoteSibling, body: bytes, key: str, headers: dict[str, str], timeout: float
    ) -> str:
        from ._durable import submit

        await self._connected()
        return await submit(
            self.nc,
            self.js,
            self.ns,
            proxy.name,
            proxy.distribution,
            body,
            key,
            timeout=timeout,
            headers=headers,
        )


async def _closer(nc: Any, forget: Any) -> Any:
    """Suspended in the caller's loop; its ``finally`` closes ``nc`` when the loop shuts down."""
    try:
        yield
    finally:
        forget()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(nc.close(), 2)


def _in_range(name: str, insts: list[Instance], ranges: list[tuple[str, SpecifierSet]]) -> list[Instance]:
    """The instances within the version range ``ranges`` (:func:`~._versions.requirements`) set for
    ``name``; the others are reported once each."""
    spec = required(name, insts[0].card.get("distribution"), ranges)
    if spec is None:
        return insts
    from ._plugin import warn

    kept = []
    for inst in insts:
        if satisfies(inst.card.get("version"), spec):
            kept.append(inst)
        else:
            warn(
                f"replica {inst.id} of remote sibling '{name}' ({inst.card.get('distribution')} "
                f"{inst.card.get('version')} on host {inst.card.get('host')}) is outside the required "
                f"range '{spec}' ({WHERE}): it is not called"
            )
    return kept


def _versions_note(insts: list[Instance]) -> str:
    """``"; versions 1.0 (id1), 1.2 (id2,id3)"`` when the replicas disagree, else ""."""
    by_version: dict[str, list[str]] = {}
    for inst in insts:
        by_version.setdefault(str(inst.card.get("version")), []).append(inst.id)
    if len(by_version) < 2:
        return ""
    return "; versions " + ", ".join(f"{v} ({','.join(ids)})" for v, ids in sorted(by_version.items()))


def _no_responders(exc: BaseException) -> bool:
    from nats.errors import NoRespondersError

    return isinstance(exc, NoRespondersError)


def _describe(sibling: Any) -> str:
    name = getattr(sibling, "name", "sibling")
    return f"'{name}'"


def _replay(proxy: RemoteSibling, raw: str) -> None:
    """Hand the served sibling's tool calls to this process's tool-call hooks (the live trace)."""
    try:
        now = time.monotonic()
        for item in json.loads(raw):
            duration = float(item.get("duration") or 0.0)
            event = ToolCallEvent(
                agent=str(item["agent"]),
                tool=str(item["tool"]),
                arguments=item.get("arguments") or {},
                call_id=f"remote-{uuid.uuid4().hex[:8]}",
                depth=int(item.get("depth", 1)),
                path=tuple(item.get("path") or ()),
                is_delegation=bool(item.get("delegation")),
                started=now - duration,
                status=item.get("status", "ok"),
                result=item.get("result"),
                error=item.get("error"),
                duration=duration,
                extra={"remote": proxy.name},
            )
            # said once per plugin and hook, in one line, as shipmates says its own hook failures
            plugin_host().report(report_tool_call(event))
    except Exception as exc:  # the trace is a courtesy: never fail a call over it
        log.debug("could not replay remote events of %s: %s", proxy.name, exc)


def _answer(proxy: RemoteSibling, headers: dict[str, str] | None, data: bytes) -> str:
    headers = headers or {}
    code = headers.get(p.H_ERROR_CODE)
    if code:
        text = headers.get(p.H_ERROR, "")
        if code == p.E_END_SESSION:
            raise EndSession(text or "Goodbye.")
        if code == p.E_TOO_LARGE:
            raise PayloadTooLargeError(text)
        raise RemoteCallError(text if proxy.name in text else f"{proxy.label}: {text}")
    return data.decode("utf-8", errors="replace")


def _run_within(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coro`` on shipmates' background loop, blocking at most ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return run_sync(bounded())


_crews: dict[tuple[Any, ...], RemoteCrew] = {}


def _key(settings: NatsSettings) -> tuple[Any, ...]:
    return (
        settings.url,
        settings.namespace,
        settings.token,
        settings.user,
        settings.password,
        settings.nkey,
        settings.creds,
        settings.tls_ca,
        settings.tls_cert,
    )


def find_crew(settings: NatsSettings) -> RemoteCrew | None:
    """The crew for these settings if one is already connected (never connects)."""
    return _crews.get(_key(settings))


def get_crew(settings: NatsSettings) -> RemoteCrew:
    """The process-wide crew for these settings (connected on first use)."""
    key = _key(settings)
    crew = _crews.get(key)
    if crew is None:
        crew = RemoteCrew(settings).connect()
        _crews[key] = crew
    return crew


def reset_crews() -> None:
    """Close every crew connection (tests)."""
    for crew in _crews.values():
        crew.close()
    _crews.clear()
