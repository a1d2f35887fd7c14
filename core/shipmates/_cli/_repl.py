"""The captain REPL: prompt-toolkit on a terminal, one turn per line when stdin is piped.

A turn runs as its own asyncio task: Ctrl-C cancels that task (and the sibling calls it is
waiting on) and the REPL goes back to the prompt. The session memory only records turns that
completed, so a cancelled or failed turn leaves the conversation as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from .. import __version__
from .._crew._records import AgentRecord
from .._crew._sibling import is_available
from .._errors import EndSession, ShipmatesError
from .._run._session import Session
from ._commands import CommandTable, build_commands
from ._indicator import RunningIndicator
from ._trace import Tracer, format_arguments, shorten, tracing
from ._views import format_agents, format_tools

if TYPE_CHECKING:
    from .._crew._assemble import Crew
    from .._crew._sibling import Provenance
    from .._run._events import ToolCallEvent

HISTORY_FILE = "history"
USAGE_ERROR = 2
YES = ("y", "yes")
LITELLM_POLL = 0.02
"""Seconds between checks whether litellm's background import has finished (a turn waiting)."""


def memory_from_env() -> int | None:
    """Turns to remember from ``SHIPMATES_MEMORY_TURNS`` (unset: the Session default bound)."""
    raw = os.environ.get("SHIPMATES_MEMORY_TURNS", "").strip()
    if not raw:
        return None
    try:
        return max(int(raw), 0)
    except ValueError:
        return None


def model_name(model: Any) -> str:
    """A model setting (None, a name, or a Model) as text."""
    if model is None:
        from .._models._registry import default_model_name

        return default_model_name()
    return model if isinstance(model, str) else str(getattr(model, "model_id", model))


class Repl:
    """One chat session with a captain.

    Plugin commands receive this object: ``captain``, ``crew``, ``session``, ``say(text)``,
    ``error(text)`` and ``refresh()`` are theirs to use.
    """

    def __init__(
        self,
        crew: Crew,
        *,
        approve: bool = False,
        trace: bool = True,
        memory: int | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        interactive: bool | None = None,
        pm: Any = None,
    ) -> None:
        self.crew = crew
        self.captain = crew.captain
        self.approve = approve
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        if interactive is None:
            interactive = _isatty(self.stdin) and _isatty(self.stdout)
        self.interactive = interactive
        memory = memory_from_env() if memory is None else memory
        self.session: Session | None = None
        if memory != 0:
            self.session = Session(max_turns=memory) if memory else Session()
        from .._plugins._host import host_of

        self.host = host_of(pm)
        self.pm = self.host.manager
        self.tracer = Tracer(self._trace_line, enabled=trace)
        # Trace lines are dimmed on a terminal so answers stand out (NO_COLOR turns it off).
        self._dim = interactive and _isatty(self.stderr) and not os.environ.get("NO_COLOR")
        self._indicator: RunningIndicator | None = None
        self._prompt_shown = False
        self._gc_paused = False
        self._turn: asyncio.Task[str] | None = None
        self._interrupted = False
        self.commands: CommandTable = build_commands(self.host, self.warn)

    # -- streams (looked up late, so prompt-toolkit's patch_stdout and pytest capture work) ----

    @property
    def stdin(self) -> IO[str]:
        return self._stdin or sys.stdin

    @property
    def stdout(self) -> IO[str]:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return self._stderr or sys.stderr

    def _write(self, stream: IO[str], text: str) -> None:
        if self._indicator is not None and stream is self.stderr:
            self._indicator.print(text)
            return
        if self._indicator is not None:
            self._indicator.pause()
        try:
            stream.write(text + "\n")
            stream.flush()
        finally:
            if self._indicator is not None:
                self._indicator.resume()

    def say(self, text: str) -> None:
        """Print to stdout: answers and command output."""
        self._write(self.stdout, text)

    def note(self, text: str) -> None:
        """Print to stderr: banner when piped, notices, the trace."""
        self._write(self.stderr, text)

    def error(self, text: str) -> None:
        self.note(text if text.startswith(("error:", "unknown command")) else f"error: {text}")

    def warn(self, text: str) -> None:
        self.note(f"warning: {text}")

    def _trace_line(self, line: str) -> None:
        if self._dim:
            line = f"\x1b[2m{line}\x1b[0m"
        self.note(line)

    # -- state shown by commands ----------------------------------------------------------

    @property
    def model_name(self) -> str:
        return model_name(self.captain.model)

    def set_model(self, name: str) -> None:
        self.captain.model = name
        start_litellm_import(name)  # the prompt is already up: nothing to delay

    def clear(self) -> None:
        if self.session is not None:
            self.session.clear()

    def crew_names(self) -> list[str]:
        return list(self.captain.siblings)

    def agent_names(self) -> list[str]:
        return [self.captain.name, *self.captain.siblings, *(t.name for t in self.captain.tools)]

    def failed_plugins(self) -> list[str]:
        """One line per pluggy plugin that failed to load (they may have brought siblings)."""
        return [r.one_line() for r in self.host.list_plugins() if r.status == "failed"]

    def load_problems(self) -> int:
        d = self.crew.discovery
        return (
            len(d.failures) + len(d.conflicts) + len(self.crew.report.rejected) + len(self.failed_plugins())
        )

    def banner(self) -> list[str]:
        origin = "built-in" if self.crew.general else self._origin(self.captain.name)
        lines = [
            f"shipmates {__version__} | captain: {self.captain.name} ({origin}) | model: {self.model_name}"
        ]
        crew = self.crew_names()
        if crew:
            lines.append(f"crew: {', '.join(crew)}")
        else:
            lines.append("crew: none yet (install sibling packages, see `shipmates new`)")
        problems = self.load_problems()
        if problems:
            lines.append(f"{problems} load failure{'s' if problems != 1 else ''}: see /agents")
        if self.interactive:
            lines.append("/help for commands, Ctrl-C cancels a turn, Ctrl-D exits")
        return lines

    def _origin(self, name: str) -> str:
        record = next((r for r in self.crew.discovery.records if r.name == name), None)
        return record.provenance.describe() if record is not None else "code"

    def roster(self) -> list[str]:
        lines = format_agents([self._live(r) for r in self.crew.discovery.records], details=False)
        lines += self.crew.report.lines()
        lines += self.failed_plugins()
        discovered = {r.name for r in self.crew.discovery.records}
        others = [name for name in self.captain.siblings if name not in discovered]
        if others:
            lines.append(f"also absorbed (plugins, remote): {', '.join(others)}")
        lines.append(f"captain: {self.captain.name}; crew: {', '.join(self.crew_names()) or 'none'}")
        return lines

    def _live(self, record: AgentRecord) -> AgentRecord:
        """The record as it stands now: a sibling that stopped answering since discovery (a
        remote one whose replicas all left, ``available = False``) is shown unavailable."""
        if record.status == "ok" and not is_available(record.sibling):
            reason = "not answering now; /refresh takes it back when it returns"
            return dataclasses.replace(record, status="unavailable", reason=reason)
        return record

    def tool_lines(self) -> list[str]:
        return format_tools(self.captain)

    def refresh(self, *, report: bool = False) -> str:
        """Run the ``refresh_agents`` hook; with ``report``, say what changed."""
        before = set(self.captain.siblings)
        for failure in self.host.call_each("refresh_agents", captain=self.captain).failures:
            self.warn(str(failure))  # a plugin bug must not end the session
        if not report:
            return ""
        after = set(self.captain.siblings)
        added, gone = sorted(after - before), sorted(before - after)
        changes = [f"+{n}" for n in added] + [f"-{n}" for n in gone]
        return f"crew: {', '.join(sorted(after)) or 'none'}" + (
            f" (changed: {' '.join(changes)})" if changes else " (no change)"
        )

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the session to its end; returns the exit status."""
        # Until the prompt is up, start-up (prompt-toolkit's import, the session) allocates
        # tens of thousands of objects that live on: the collector's passes over them are
        # wasted time before the prompt. Once the prompt is drawn they are frozen out of its
        # sight (gc.freeze(), as `shipmates chat` does for the crew) and collection resumes.
        self._gc_paused = self.interactive and gc.isenabled()
        if self._gc_paused:
            gc.disable()
        try:
            return asyncio.run(self.main())
        finally:
            self._resume_gc()

    def _resume_gc(self) -> None:
        if self._gc_paused:
            self._gc_paused = False
            gc.freeze()
            gc.enable()

    def run_once(self, prompt: str) -> int:
        """Answer one prompt on stdout (0), or print ``error: ...`` on stderr (2)."""
        return asyncio.run(self.once(prompt))

    @contextlib.contextmanager
    def _traced(self) -> Iterator[None]:
        with tracing(self.tracer):  # the built-in trace plugin prints through it
            yield

    async def main(self) -> int:
        with self._traced():
            for line in self.banner():
                (self.say if self.interactive else self.note)(line)
            try:
                if self.interactive:
                    await self._interactive()
                else:
                    await self._piped()
            except EndSession as end:
                self.say(end.message)
            return 0

    async def once(self, prompt: str) -> int:
        with self._traced():
            self.refresh()
            try:
                answer = await self._ask(prompt)
            except EndSession as end:
                self.say(end.message)
                return 0
            except Exception as exc:
                self.error(error_text(exc))
                return USAGE_ERROR
            self.say(answer)
            return 0

    async def handle(self, line: str) -> None:
        """One input line: a slash command or a turn. EndSession propagates."""
        line = line.strip()
        if not line:
            return
        if line.startswith("/"):
            await self.commands.dispatch(self, line)
        else:
            await self.turn(line)

    async def _piped(self) -> None:
        while True:
            line = await self._readline()
            if not line:
                return
            await self.handle(line)

    async def _readline(self) -> str:
        """``stdin.readline()`` without blocking the loop.

        A daemon thread rather than the default executor: asyncio.run joins executor threads
        on exit, which would hang on a pending read after Ctrl-C.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def deliver(line: str | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(line or "")

        def read() -> None:
            try:
                line = self.stdin.readline()
            except Exception as exc:
                loop.call_soon_threadsafe(deliver, None, exc)
            else:
                loop.call_soon_threadsafe(deliver, line, None)

        threading.Thread(target=read, name="shipmates-stdin", daemon=True).start()
        return await future

    async def _interactive(self) -> None:
        from prompt_toolkit.patch_stdout import patch_stdout

        prompt = self._prompt_session()
        loop = asyncio.get_running_loop()

        def pre_run() -> None:
            # Called just before prompt-toolkit draws the prompt; the callback runs once the
            # drawing task yields, so with the prompt on the screen.
            if not self._prompt_shown:
                loop.call_soon(self._on_prompt_shown)

        while True:
            try:
                with patch_stdout(raw=True):
                    line = await prompt.prompt_async(f"{self.captain.name}> ", pre_run=pre_run)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt: the line is dropped, ask again
            except EOFError:
                raise EndSession("Goodbye.") from None
            await self.handle(line)

    def _prompt_session(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory

        from .._paths import private_file, state_dir
        from ._completion import ReplCompleter

        history: History
        try:
            history = FileHistory(private_file(str(state_dir() / HISTORY_FILE)))
        except OSError as exc:
            self.warn(f"history not saved: {exc}")
            history = InMemoryHistory()
        return PromptSession(
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            completer=ReplCompleter(self.commands.names, self.agent_names, _model_names),
            complete_while_typing=True,
        )

    def _on_prompt_shown(self) -> None:
        """Once the first prompt is drawn: collect garbage again, start importing litellm.

        litellm's import takes seconds, mostly holding the GIL; started any earlier it would
        delay the prompt. The first turn waits for it (:meth:`_model_ready`).
        """
        if self._prompt_shown:
            return
        self._prompt_shown = True
        self._resume_gc()
        start_litellm_import(self.captain.model)

    async def _model_ready(self) -> None:
        """Wait, without blocking the loop (Ctrl-C still cancels), for litellm's background import.

        Starts the import if nothing did yet (piped mode, or a turn typed before the prompt's
        first render finished). Returns at once for registered models such as ``offline``.
        """
        thread = start_litellm_import(self.captain.model)
        if thread is None or not thread.is_alive():
            return
        indicator = self._indicator
        label = indicator.label if indicator is not None else ""
        if indicator is not None:
            indicator.label = f"{label} (loading litellm)"
        try:
            while thread.is_alive():
                await asyncio.sleep(LITELLM_POLL)
        finally:
            if indicator is not None:
                indicator.label = label

    async def _answer(self, text: str) -> str:
        await self._model_ready()
        return await self._ask(text)

    async def turn(self, text: str) -> None:
        """Run one turn; print its answer, or ``error: ...``, or that it was cancelled."""
        self.refresh()
        loop = asyncio.get_running_loop()
        self._interrupted = False
        task = self._turn = loop.create_task(self._answer(text))
        sigint = self._catch_sigint(loop)
        self._indicator = RunningIndicator(
            self.stderr, f"{self.captain.name} is working", active=self.interactive and _isatty(self.stderr)
        )
        self._indicator.start()
        try:
            try:
                answer = await task
            finally:
                self._stop_turn(loop, sigint)
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            self.note("cancelled (the conversation before this turn is kept)")
            return
        except EndSession:
            raise
        except Exception as exc:
            self.error(error_text(exc))
            return
        self.say(answer)

    def _stop_turn(self, loop: asyncio.AbstractEventLoop, sigint: bool) -> None:
        if self._indicator is not None:
            self._indicator.stop()
            self._indicator = None
        if sigint:
            loop.remove_signal_handler(signal.SIGINT)
        self._turn = None

    async def _ask(self, text: str) -> str:
        result = await self.captain.arun(
            text, session=self.session, approve=self._approver if self.approve else None
        )
        if result.status == "max_turns":
            raise ShipmatesError(
                f"the captain was still calling tools after max_turns={self.captain.max_turns} model calls"
                f"{': ' + shorten(result.output, 200) if result.output else ''}"
            )
        return result.output

    def interrupt(self) -> None:
        """Cancel the running turn (what Ctrl-C does)."""
        if self._turn is not None and not self._turn.done():
            self._interrupted = True
            self._turn.cancel()

    def _catch_sigint(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            return False
        return True

    # -- approval -------------------------------------------------------------------------

    def _provenance(self, event: ToolCallEvent) -> Provenance | None:
        if event.provenance is not None:
            return event.provenance
        for record in self.crew.discovery.records:
            if record.name == event.agent:
                return record.provenance
        return None

    def approval_question(self, event: ToolCallEvent) -> str:
        what = "delegate to sibling" if event.is_delegation else "call tool"
        provenance = self._provenance(event)
        where = provenance.describe() if provenance is not None else "code"
        call = f"{event.tool}({format_arguments(event.arguments)})"
        return f"approve? {event.agent} wants to {what} {call} from {where}"

    async def _approver(self, event: ToolCallEvent) -> bool:
        question = self.approval_question(event)
        if self._indicator is not None:
            self._indicator.pause()
        try:
            answer = await self._ask_user(question)
        finally:
            if self._indicator is not None:
                self._indicator.resume()
        allowed = answer.strip().lower() in YES
        if not allowed:
            self.note(f"refused: {event.tool}")
        return allowed

    async def _ask_user(self, question: str) -> str:
        if not self.interactive:
            self.note(f"{question} [y/N]")
            return await self._readline()
        from prompt_toolkit import PromptSession

        self.note(question)
        try:
            # handle_sigint=False keeps our Ctrl-C handler; Ctrl-C arrives as a key here.
            answer: str = await PromptSession().prompt_async("run it? [y/N] ", handle_sigint=False)
        except KeyboardInterrupt:
            self.interrupt()
            return ""
        except EOFError:
            return ""
        return answer


def _model_names() -> list[str]:
    from .._models._registry import registered_models

    return list(registered_models())


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ShipmatesError):
        return f"error: {text or type(exc).__name__}"
    return f"error: {type(exc).__name__}: {text}" if text else f"error: {type(exc).__name__}"


def start_litellm_import(model: Any) -> threading.Thread | None:
    """Start importing litellm in a background thread when ``model`` is reached through litellm.

    ``model`` is a model setting: None (the session default), a name, or a Model. Returns the
    import thread (cheap to call again: always the same thread), or None when the model is a
    registered one (such as ``offline``) and litellm is not needed.
    """
    from .._models._registry import get_model

    try:
        resolved = get_model(model)
    except Exception:  # the turn reports a bad model setting properly
        return None
    from .._models import _litellm

    if not isinstance(resolved, _litellm.LiteLLMModel):
        return None
    return _litellm.preload()
