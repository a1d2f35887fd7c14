"""A run's event stream: where events go, how siblings' events join it, and the iterators over it.

The run loop (``_run_loop``) is the producer: each run opens a :class:`RunScope` that emits its
events to the consumer of the outermost :func:`stream_run` (a :class:`Sink`) and to the plugins'
``run_event`` hook. With neither, nothing is built: ``Agent.arun`` is the same producer with no
one listening but the usage ledger, which is always kept.

Each tool call sets ``_context.parent_call`` to its call id and the run that made it (a context
variable, so it follows the call into tasks, worker threads and the shared background loop): an
agent run inside it finds the sink there, links its events to that call, and hands its usage
to that run when it ends. Nothing is set per run, only per call.

A sibling that is not an :class:`~shipmates.Agent` but has ``astream(query)`` is called through
:func:`streaming_call`: its events are re-based one level under the captain's call and forwarded.
A later remote transport can do the same with the events it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._budget import BudgetExhausted, Spend, ambient
from ._context import delegation_stack, parent_call
from ._events import ToolCallEvent
from ._stream_events import (
    ModelCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from ._tool_calls import _Hooks
from ._usage import Ledger, UsageSnapshot

if TYPE_CHECKING:
    from .._plugins._host import PluginHost
    from ._agent import Agent
    from ._run_loop import RunResult

Notify = Callable[[RunEvent], None]


class Sink:
    """The consumer end of a stream, fed from any thread: a queue on the consumer's event loop,
    or (``deliver``) a callback called at once, in the producing task.

    A queue costs a hop per event (the consumer's task wakes up on a later turn of the loop);
    a callback costs none, which is what :func:`run_streamed` uses.
    """

    __slots__ = ("deliver", "loop", "queue", "thread")

    def __init__(self, deliver: Callable[[Any], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        if deliver is None:
            self.queue: asyncio.Queue[Any] = asyncio.Queue()
            deliver = self.queue.put_nowait
        self.deliver = deliver

    def put(self, item: Any) -> None:
        if threading.get_ident() == self.thread:
            self.deliver(item)
            return
        # A sync sibling runs its own agent in a worker thread or on the background loop.
        with contextlib.suppress(RuntimeError):  # the consumer's loop is gone: nobody listens
            self.loop.call_soon_threadsafe(self.deliver, item)


class RunScope:
    """One run's place in the stream: its usage ledger, and its emitter when anyone listens.

    Made on every run, also when nobody listens: the run loop reads its fields directly and
    calls its methods only when :attr:`emitting`.
    """

    __slots__ = ("caller", "depth", "emitting", "ledger", "notify", "sink", "spend", "where")

    def __init__(self, host: PluginHost, stack: tuple[str, ...]) -> None:
        link = parent_call.get()
        caller = link[1] if link is not None else None
        self.caller: Ledger | None = caller.ledger if caller is not None else None
        self.sink: Sink | None = caller.sink if caller is not None else None
        # The budget the tree draws from (None: no budget); run_agent nests the run's own in it.
        spend = caller.spend if caller is not None else None
        self.spend: Spend | None = spend if spend is not None else ambient.get()
        self.depth = len(stack) - 1
        self.ledger: Ledger = []
        self.notify = host.notifier("run_event", "event") if host.implemented("run_event") else None
        self.emitting = self.sink is not None or self.notify is not None
        if self.emitting:
            parent = link[0] if link is not None else None
            self.where = {"agent": stack[-1], "depth": self.depth, "path": stack, "parent_call_id": parent}

    def close(self) -> None:
        """Hand this run's usage to the run that called it (its entries carry whole paths)."""
        if self.caller is not None:
            self.caller.extend(self.ledger)

    def snapshot(self) -> UsageSnapshot:
        """The usage this run and its siblings recorded so far."""
        return UsageSnapshot(tuple(self.ledger), self.depth)

    def emit(self, event: RunEvent) -> None:
        if self.sink is not None:
            self.sink.put(event)
        if self.notify is not None:
            self.notify(event)

    def new(self, kind: type[Any], **fields: Any) -> None:
        """Emit an event of ``kind`` located at this run (agent, depth, path, parent call)."""
        self.emit(kind(**self.where, **fields))

    def started(self, query: str, model: str) -> None:
        self.new(RunStarted, query=query, model=model)

    def finished(self, result: RunResult) -> None:
        self.new(
            RunFinished,
            status=result.status,
            output=result.output,
            reason=result.reason,
            usage=result.usage,
            usage_by_agent=result.usage_by_agent,
            turns=result.turns,
            result=result,
        )

    def failed(self, exc: BaseException) -> None:
        if self.emitting:
            cancelled = isinstance(exc, asyncio.CancelledError)
            error = "cancelled" if cancelled else f"{type(exc).__name__}: {exc}"
            usage = self.snapshot()
            self.new(
                RunFinished,
                status="cancelled" if cancelled else "error",
                usage=usage.total,
                usage_by_agent=usage.by_agent(),
                error=error,
            )


class StreamHooks(_Hooks):
    """The tool-call hooks, which also put each call on the stream."""

    __slots__ = ("emit",)

    def __init__(self, host: PluginHost, emit: Notify) -> None:
        super().__init__(host)
        self.emit = emit

    def start(self, event: ToolCallEvent) -> None:
        super().start(event)
        # A copy: the call's object is updated in place when it finishes.
        self.emit(ToolCallStarted(call=copy.copy(event)))

    def finish(self, event: ToolCallEvent) -> None:
        super().finish(event)
        self.emit(ToolCallFinished(call=event))


class _Root:
    """What the top-level run of a stream finds as its caller: the sink, no ledger."""

    __slots__ = ("ledger", "notify", "sink", "spend")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.ledger: Ledger | None = None
        self.notify: Notify | None = None
        self.spend: Spend | None = None


_END = object()


async def stream_run(agent: Agent, query: Any, **options: Any) -> AsyncGenerator[RunEvent, None]:
    """The events of ``agent.arun(query, **options)`` as they happen (see :meth:`Agent.stream`)."""
    from ._run_loop import run_agent

    sink = Sink()

    async def produce() -> RunResult:
        # Set inside the task: its own copy of the context, so nothing needs resetting.
        parent_call.set((None, _Root(sink)))
        try:
            return await run_agent(agent, query, **options)
        finally:
            sink.put(_END)

    task = asyncio.ensure_future(produce())
    try:
        while True:
            event = await sink.queue.get()
            if event is _END:
                break
            yield event
        task.result()  # the run's exception, if it raised
    finally:
        if not task.done():  # the consumer stopped early or was cancelled: so is the run
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        elif not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when the consumer left


async def run_streamed(agent: Agent, query: Any, on_event: Notify, **options: Any) -> RunResult:
    """``agent.arun(query, **options)``, with ``on_event`` called for every event as it happens.

    ``on_event`` is called by the run itself, in its task, as each event is made (the events of a
    sibling running in another thread: on this loop, in order): no queue, no task switch per
    event. When it raises, the run is cancelled and its exception is raised here.
    """
    from ._run_loop import run_agent

    failed: list[BaseException] = []

    def deliver(event: RunEvent) -> None:
        if failed:
            return
        try:
            on_event(event)
        except BaseException as exc:  # the consumer failed: stop the run, never fail a tool call
            failed.append(exc)
            task.cancel()

    sink = Sink(deliver)

    async def produce() -> RunResult:
        parent_call.set((None, _Root(sink)))  # in the task's own copy of the context
        return await run_agent(agent, query, **options)

    task = asyncio.ensure_future(produce())
    try:
        result = await task
    except BaseException:
        if failed:
            raise failed[0] from None
        raise
    if failed:
        raise failed[0]
    return result


def stream_sync(agent: Agent, query: Any, **options: Any) -> Iterator[RunEvent]:
    """:func:`stream_run` for synchronous code: the run goes on shipmates' background loop."""
    from .._runtime import _background_thread, background_loop

    if threading.current_thread() is _background_thread:
        raise RuntimeError(
            f"Agent.stream_sync('{agent.name}') was called on shipmates' background event loop, which "
            "it would block: use 'async for event in agent.stream(...)' there"
        )
    loop = background_loop()
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()

    async def pump() -> None:
        try:
            await run_streamed(agent, query, events.put, **options)
        except BaseException as exc:
            events.put(_Failed(exc))
            raise
        finally:
            events.put(_END)

    ctx = contextvars.copy_context()  # the caller's context (session model, approver, tracer)
    tasks: list[asyncio.Task[None]] = []
    loop.call_soon_threadsafe(lambda: tasks.append(ctx.run(loop.create_task, pump())))
    try:
        while (item := events.get()) is not _END:
            if isinstance(item, _Failed):
                if not isinstance(item.exc, asyncio.CancelledError):
                    raise item.exc
                continue
            yield item
    finally:
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks if not t.done()])


@dataclasses.dataclass(frozen=True)
class _Failed:
    exc: BaseException


# -- siblings with astream ------------------------------------------------------------------


def streaming_call(sibling: Any) -> Callable[[Any], Awaitable[str]] | None:
    """The call that runs ``sibling.astream(query)`` and forwards its events, or None when the
    sibling has no ``astream`` (or is an Agent, whose runs join the stream on their own)."""
    from ._agent import Agent

    astream = None if isinstance(sibling, Agent) else getattr(sibling, "astream", None)
    if not callable(astream):
        return None

    async def call(query: Any) -> str:
        return await forward(astream(query), getattr(sibling, "name", "sibling"))

    return call


async def forward(events: AsyncIterator[RunEvent], name: str) -> str:
    """Forward a delegated run's ``events`` (as that run saw them: its own agent at depth 0) into
    the current stream, one level under the captain's call, counting their usage; return the
    run's output, or raise when it failed."""
    link = parent_call.get()
    parent, caller = link if link is not None else (None, None)
    stack = delegation_stack.get()
    prefix, base = stack[:-1], len(stack) - 1
    finished: RunFinished | None = None
    async for event in events:
        moved = _rebase(event, prefix, base, parent)
        if event.depth == 0 and isinstance(event, RunFinished):
            finished = event
        if caller is None:
            continue
        if isinstance(moved, ModelCallFinished):
            if caller.ledger is not None:
                caller.ledger.append((moved.path, moved.usage))
            if caller.spend is not None:  # a remote sibling's model calls count in the budget too
                caller.spend.charge(moved.usage.total_tokens, moved.usage.cost_usd)
        if caller.sink is not None:
            caller.sink.put(moved)
        if caller.notify is not None:
            caller.notify(moved)
    if finished is None:
        raise RuntimeError(f"sibling '{name}' ended its astream() without a RunFinished event")
    if finished.status in ("error", "cancelled"):
        raise RuntimeError(f"sibling '{name}' failed: {finished.error or finished.status}")
    if finished.status == "budget_exhausted":
        raise BudgetExhausted(f"sibling '{name}' stopped: {finished.reason or 'budget exhausted'}")
    return finished.output


def _rebase(event: RunEvent, prefix: tuple[str, ...], base: int, parent: str | None) -> RunEvent:
    if isinstance(event, (ToolCallStarted, ToolCallFinished)):
        call = event.call
        moved = dataclasses.replace(
            call,
            depth=call.depth + base,
            path=(*prefix, *call.path),
            parent_call_id=call.parent_call_id if call.parent_call_id is not None else parent,
        )
        return type(event)(call=moved)
    return dataclasses.replace(
        event,
        depth=event.depth + base,
        path=(*prefix, *event.path),
        parent_call_id=event.parent_call_id if event.parent_call_id is not None else parent,
    )
