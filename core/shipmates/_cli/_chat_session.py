"""One chat with a captain, without any I/O: the REPL (``_repl``) and ``--once`` drive it.

A :class:`ChatSession` holds the captain and its crew, the conversation memory, the model, the
approve switch, and the turn that is running: :meth:`ChatSession.turn` runs one as its own
asyncio task, which :meth:`ChatSession.cancel` stops (with the sibling calls it is waiting
on). The memory only records turns that completed, so a cancelled or failed turn leaves the
conversation as it was. What it needs from the outside (a warning to show, the user's answer
to an approval question, a "loading litellm" label) comes through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._crew._sibling import is_available
from .._errors import EndSession, ShipmatesError
from .._run._session import Session
from .._startup import start_litellm_import, wait_for_litellm
from ._views import max_turns_text

if TYPE_CHECKING:
    from .._crew._assemble import Crew
    from .._crew._records import AgentRecord
    from .._crew._sibling import Provenance
    from .._plugins._host import PluginRecord
    from .._run._agent import Agent
    from .._run._budget import Budget
    from .._run._events import ToolCallEvent
    from .._run._run_loop import RunResult
    from .._run._stream_events import RunEvent
    from .._run._usage import AgentUsage
    from ._chat_log import ChatLog

Approver = Callable[["ToolCallEvent"], Awaitable[bool]]
"""Asks the user whether a tool call may run (the shell's approval prompt)."""


class TurnCancelledError(Exception):
    """The running turn was stopped by :meth:`ChatSession.cancel` (Ctrl-C)."""


def _ignore(text: str) -> None:
    return None


class ChatSession:
    """The state of one chat and the turns run in it; no I/O of its own.

    ``memory``: turns to remember (0: none; None: the last 200 messages). ``on_warning``
    receives warnings (a plugin's ``refresh_agents`` failing); the shell prints them.
    """

    def __init__(
        self,
        crew: Crew,
        *,
        approve: bool = False,
        memory: int | None = None,
        pm: Any = None,
        on_warning: Callable[[str], None] = _ignore,
        budget: Budget | None = None,
        log: ChatLog | None = None,
    ) -> None:
        self.crew = crew
        self.budget = budget
        """The limits of each turn's whole tree (``--max-tokens`` and the like); None: none."""
        self.approve = approve
        self.memory: Session | None = None
        if memory != 0:
            self.memory = Session(max_turns=memory) if memory else Session()
        from .._plugins._host import host_of

        self.host = host_of(pm)
        self.on_warning = on_warning
        self._turn: asyncio.Task[str] | None = None
        self._cancelled = False
        self.last_result: RunResult | None = None
        """The last completed turn's result (its usage, its tool calls)."""
        self.log = log
        """Where each turn is recorded (None: not recorded)."""
        self.cid: str | None = None
        """The logged conversation's id: set by :meth:`resume`, else at the first recorded turn."""
        self.usage: dict[str, AgentUsage] = {}
        """The session's usage by agent, every completed turn added."""
        self._model: str | None = None
        """The model ``/model`` switched to (None: the chat's, see ``use_session``)."""

    # -- the crew and the model ---------------------------------------------------------------

    @property
    def captain(self) -> Agent:
        return self.crew.captain

    @property
    def model_name(self) -> str:
        """The captain's model as text (its name, or the session default's)."""
        model = self.captain.model
        if model is None:
            from .._models._registry import default_model_name

            return self._model or default_model_name()
        return model if isinstance(model, str) else str(getattr(model, "model_id", model))

    def set_model(self, name: str) -> None:
        """Make ``name`` the session's model: the captain and every sibling without a model of its
        own switch to it from the next turn; litellm starts loading if it needs it."""
        self._model = name
        self.captain.model = None
        with self.using_model():
            start_litellm_import(None)  # the prompt is already up: nothing to delay

    @contextlib.contextmanager
    def using_model(self) -> Iterator[None]:
        """The session's model (as ``/model`` last set it) for the block."""
        from .._models._session import session_model

        if self._model is None:
            yield
            return
        token = session_model.set(self._model)
        try:
            yield
        finally:
            session_model.reset(token)

    def clear(self) -> None:
        """Forget the conversation."""
        if self.memory is not None:
            self.memory.clear()

    def crew_names(self) -> list[str]:
        return list(self.captain.siblings)

    def agent_names(self) -> list[str]:
        """The captain, its siblings and its tools (what Tab completes)."""
        return [self.captain.name, *self.captain.siblings, *(t.name for t in self.captain.tools)]

    def records(self) -> list[AgentRecord]:
        """Every discovered sibling as it stands now: one that stopped answering since
        discovery (a remote one whose replicas all left, ``available = False``) is unavailable."""
        return [self._live(r) for r in self.crew.discovery.records]

    @staticmethod
    def _live(record: AgentRecord) -> AgentRecord:
        if record.status == "ok" and not is_available(record.sibling):
            reason = "not answering now; /refresh takes it back when it returns"
            return dataclasses.replace(record, status="unavailable", reason=reason)
        return record

    def failed_plugins(self) -> list[PluginRecord]:
        """Plugins that failed to load (they may have brought siblings)."""
        return [r for r in self.host.list_plugins() if r.status == "failed"]

    def load_problems(self) -> int:
        d = self.crew.discovery
        rejected = len(self.crew.report.rejected)
        return len(d.failures) + len(d.conflicts) + rejected + len(self.failed_plugins())

    def origin(self, name: str) -> Provenance:
        """Where the agent ``name`` comes from (``code`` when not discovered)."""
        from .._crew._sibling import CODE

        record = next((r for r in self.crew.discovery.records if r.name == name), None)
        return record.provenance if record is not None else CODE

    def provenance(self, event: ToolCallEvent) -> Provenance | None:
        """Where the tool or sibling a call goes to comes from (for the approval question)."""
        if event.provenance is not None:
            return event.provenance
        for record in self.crew.discovery.records:
            if record.name == event.agent:
                return record.provenance
        return None

    def refresh(self) -> tuple[list[str], list[str]]:
        """Run the ``refresh_agents`` hook; returns the crew's names before and after."""
        before = list(self.captain.siblings)
        # A plugin bug must not end the session; said once, not on every /refresh.
        called = self.host.call_each("refresh_agents", captain=self.captain)
        self.host.report(called.failures, self.on_warning)
        return before, list(self.captain.siblings)

    # -- turns ----------------------------------------------------------------------------------

    # -- the conversation log -------------------------------------------------------------------

    def resume(self, conversation: str) -> int:
        """Continue the logged conversation ``conversation`` (an id, or ``"latest"``): its answered
        turns become the memory and later turns join it. Returns how many turns were restored."""
        if self.log is None:
            raise ShipmatesError("cannot resume a conversation with logging off (--no-log, SHIPMATES_LOG=0)")
        cid = self.log.latest() if conversation == "latest" else conversation
        if cid is None or not self.log.exists(cid):
            what = "no logged conversation yet" if cid is None else f"no conversation {cid!r} in the log"
            raise ShipmatesError(f"{what} ({self.log.path}); `shipmates logs` lists them")
        self.cid = cid
        messages = self.log.messages(cid)
        if self.memory is not None:
            self.memory.add(messages)
        return len(messages) // 2

    def _record(
        self,
        text: str,
        begun: float,
        clock: float,
        *,
        answer: str | None = None,
        error: str | None = None,
        result: RunResult | None = None,
    ) -> None:
        """Log one turn; a log that cannot be written is one warning, then logging stops."""
        if self.log is None:
            return
        from ._chat_log import tool_call_record

        try:
            if self.cid is None:
                self.cid = self.log.start(self.captain.name, self.model_name)
            self.log.record(
                self.cid,
                prompt=text,
                model=self.model_name,
                started=begun,
                duration=time.monotonic() - clock,
                answer=answer,
                error=error,
                tool_calls=[tool_call_record(e) for e in result.events] if result is not None else [],
                usage=dataclasses.asdict(result.usage) if result is not None else None,
            )
        except Exception as exc:  # sqlite3.Error, OSError: the chat goes on without its log
            self.on_warning(f"conversation log not written ({type(exc).__name__}: {exc}); logging stops")
            self.log = None

    # -- turns ----------------------------------------------------------------------------------

    async def ask(
        self, text: str, approver: Approver | None = None, on_event: Callable[[RunEvent], None] | None = None
    ) -> str:
        """Run ``text`` through the captain in the current task; returns its answer.

        ``approver`` is asked before each call while :attr:`approve` is on; ``on_event`` (if
        given) sees every event of the run as it happens. A turn that never stopped calling
        tools is a ShipmatesError; EndSession and other errors propagate.
        """
        from .._run._stream import run_streamed
        from .._run._usage import add_by_agent

        approve = approver if self.approve and approver is not None else None
        begun, clock = time.time(), time.monotonic()
        self.last_result = None
        try:
            with self.using_model():
                if on_event is None:
                    result = await self.captain.arun(
                        text, session=self.memory, approve=approve, budget=self.budget
                    )
                else:
                    result = await run_streamed(
                        self.captain, text, on_event, session=self.memory, approve=approve, budget=self.budget
                    )
        except EndSession as end:
            self._record(text, begun, clock, answer=str(end))
            raise
        except Exception as exc:
            self._record(text, begun, clock, error=f"{type(exc).__name__}: {exc}")
            raise
        self.last_result = result
        self.usage = add_by_agent(self.usage, result.usage_by_agent)
        if result.status == "max_turns":
            message = max_turns_text(self.captain.max_turns, result.output)
            self._record(text, begun, clock, error=message, result=result)
            raise ShipmatesError(message)
        if result.status == "budget_exhausted":
            message = f"stopped: {result.reason}"
            self._record(text, begun, clock, error=message, result=result)
            raise ShipmatesError(message)
        self._record(text, begun, clock, answer=result.output, result=result)
        return result.output

    async def turn(
        self,
        text: str,
        approver: Approver | None = None,
        *,
        loading: Callable[[bool], None] | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> str:
        """One REPL turn: refresh the crew, wait for litellm if the model needs it (``loading``
        is told), then :meth:`ask` (``on_event`` as there), as its own task. Raises
        :class:`TurnCancelledError` when :meth:`cancel` stopped it."""
        self.refresh()
        self._cancelled = False
        answer = self._answer(text, approver, loading, on_event)
        task = self._turn = asyncio.get_running_loop().create_task(answer)
        try:
            return await task
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            raise TurnCancelledError from None
        finally:
            self._turn = None

    async def _answer(
        self,
        text: str,
        approver: Approver | None,
        loading: Callable[[bool], None] | None,
        on_event: Callable[[RunEvent], None] | None,
    ) -> str:
        with self.using_model():
            await wait_for_litellm(self.captain.model, loading)
        return await self.ask(text, approver, on_event)

    @property
    def running(self) -> bool:
        """True while a turn started by :meth:`turn` runs."""
        return self._turn is not None and not self._turn.done()

    def cancel(self) -> bool:
        """Stop the running turn (what Ctrl-C does); False when none runs."""
        if not self.running:
            return False
        assert self._turn is not None
        self._cancelled = True
        self._turn.cancel()
        return True
