"""The captain REPL: the I/O shell over a :class:`~._chat_session.ChatSession`.

prompt-toolkit on a terminal, one turn per line when stdin is piped. The shell reads lines,
prints answers (stdout) and notices, errors and the trace (stderr), draws the "working"
indicator, asks approval questions and turns Ctrl-C into :meth:`ChatSession.cancel`; the chat
session does the rest, and :mod:`._views` renders every text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from .._errors import EndSession
from .._models._model import DEFAULT_MODEL
from .._settings import memory_turns_from
from .._startup import GcPause, start_litellm_import
from .._text import terminal_safe
from ._chat_session import ChatSession, TurnCancelledError
from ._commands import CommandTable, ReplContext, build_commands
from ._indicator import RunningIndicator
from ._trace import Tracer, tracing
from ._views import (
    CANCELLED,
    GOODBYE,
    approval_question,
    banner,
    error_text,
    once_json,
    refused_text,
    usage_text,
)

if TYPE_CHECKING:
    from .._crew._assemble import Crew
    from .._run._agent import Agent
    from .._run._events import ToolCallEvent

HISTORY_FILE = "history"
USAGE_ERROR = 2
TURNS_FAILED = 1
YES = ("y", "yes")


class Repl:
    """The REPL over one chat session.

    ``chat`` is a :class:`ChatSession`, or a :class:`Crew` to start one with ``approve`` and
    ``memory`` (None: ``SHIPMATES_MEMORY_TURNS``, else the last 200 messages). Slash commands
    receive a :class:`ReplContext` (:attr:`context`), not the REPL.
    """

    def __init__(
        self,
        chat: ChatSession | Crew,
        *,
        approve: bool = False,
        trace: bool = True,
        memory: int | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        interactive: bool | None = None,
        pm: Any = None,
        usage: bool = False,
    ) -> None:
        if not isinstance(chat, ChatSession):
            memory = memory_turns_from() if memory is None else memory
            chat = ChatSession(chat, approve=approve, memory=memory, pm=pm)
        self.chat = chat
        chat.on_warning = self.warn
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        if interactive is None:
            interactive = _isatty(self.stdin) and _isatty(self.stdout)
        self.interactive = interactive
        self.host = chat.host
        self.pm = chat.host.manager
        # On a terminal the captain's own words stream live to stdout: the trace need not repeat them.
        self.tracer = Tracer(self._trace_line, enabled=trace, said_at_top=not interactive)
        self.show_usage = usage
        """Print a line of tokens and cost on stderr after each answer (``--usage``)."""
        # Trace lines are dimmed on a terminal so answers stand out (NO_COLOR turns it off).
        self._dim = interactive and _isatty(self.stderr) and not os.environ.get("NO_COLOR")
        self._indicator: RunningIndicator | None = None
        self._prompt_shown = False
        self._gc: GcPause | None = None
        self.failed_turns = 0
        self._unpriced_told = False
        """Turns that ended with an error (a piped session then exits 1)."""
        self.commands: CommandTable = build_commands(self.host, self.warn)
        self.context = ReplContext(
            chat, say=self.say, warn=self.warn, error=self.error, commands=self.commands, tracer=self.tracer
        )

    @property
    def captain(self) -> Agent:
        return self.chat.captain

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

    def _write(self, stream: IO[str], text: str, *, dim: bool = False) -> None:
        """Every line the REPL prints goes through here: answers, errors and command output
        carry text from outside the process (siblings, tools, models, remote peers), so
        terminal control sequences are stripped; ``dim`` is the trace's own styling, the
        only styling printed."""
        text = terminal_safe(text)
        if dim:
            text = f"\x1b[2m{text}\x1b[0m"
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
        self._write(self.stderr, line, dim=self._dim)

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the session to its end; returns the exit status.

        On a terminal the collector stays paused until the prompt is drawn (prompt-toolkit's
        import and the prompt session allocate tens of thousands of objects that live on),
        then they are frozen out of its sight (see :mod:`shipmates._startup`).
        """
        self._gc = GcPause(self.interactive)
        try:
            return asyncio.run(self.main())
        finally:
            self._gc.end()

    def run_once(self, prompt: str, *, as_json: bool = False) -> int:
        """Answer one prompt on stdout (0), or print ``error: ...`` on stderr (2); ``as_json``:
        print one JSON object instead (output, status, usage, tool calls), errors included."""
        return asyncio.run(self.once(prompt, as_json=as_json))

    @contextlib.contextmanager
    def _traced(self) -> Iterator[None]:
        with tracing(self.tracer):  # the built-in trace plugin prints through it
            yield

    async def main(self) -> int:
        with self._traced():
            for line in banner(self.chat, interactive=self.interactive):
                (self.say if self.interactive else self.note)(line)
            try:
                if self.interactive:
                    await self._interactive()
                else:
                    await self._piped()
            except EndSession as end:
                self.say(end.message)
            # A script piping turns in learns that some failed (each said why on stderr).
            return TURNS_FAILED if self.failed_turns and not self.interactive else 0

    async def once(self, prompt: str, *, as_json: bool = False) -> int:
        if as_json:
            return await self._once_json(prompt)
        with self._traced():
            self.chat.refresh()
            try:
                answer = await self.chat.ask(prompt, self._approver)
            except EndSession as end:
                self.say(end.message)
                return 0
            except Exception as exc:
                self.error(error_text(exc))
                return USAGE_ERROR
            self.say(answer)
            self._show_usage()
            return 0

    async def _once_json(self, prompt: str) -> int:
        from .._run._stream_events import ToolCallFinished

        calls: list[ToolCallEvent] = []

        def collect(event: Any) -> None:
            if isinstance(event, ToolCallFinished):
                calls.append(event.call)

        with self._traced():
            self.chat.refresh()
            try:
                await self.chat.ask(prompt, self._approver, collect)
            except EndSession as end:
                self.say(once_json(None, calls, status="ended", output=end.message))
                return 0
            except Exception as exc:
                self.say(
                    once_json(self.chat.last_result, calls, error=error_text(exc).removeprefix("error: "))
                )
                return USAGE_ERROR
            self.say(once_json(self.chat.last_result, calls))
            self._show_usage()
            return 0

    def _show_usage(self) -> None:
        result = self.chat.last_result
        if result is None:
            return
        if self.show_usage:
            self.note(f"usage: {usage_text(result.usage)}")
        budget = self.chat.budget
        unpriced = result.usage.calls_without_cost
        if (
            unpriced
            and not self._unpriced_told
            and budget is not None
            and budget.max_cost_usd is not None
            and self.chat.model_name != DEFAULT_MODEL
        ):
            self._unpriced_told = True
            self.note(
                f"warning: the cost budget counted nothing for {unpriced} model call(s): no price is "
                f"known for {self.chat.model_name} (litellm's cost map has none). Give its prices, e.g. "
                "-o input_cost_per_token=0.0000005 -o output_cost_per_token=0.0000015 "
                "(US dollars per token), or limit tokens with --max-tokens."
            )

    async def handle(self, line: str) -> None:
        """One input line: a slash command or a turn. EndSession propagates."""
        line = line.strip()
        if not line:
            return
        if line.startswith("/"):
            with self.chat.using_model():  # /agents names the model the session uses now
                await self.commands.dispatch(self.context, line)
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
                raise EndSession(GOODBYE) from None
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
            completer=ReplCompleter(self.commands.names, self.chat.agent_names, _model_names),
            complete_while_typing=True,
        )

    def _on_prompt_shown(self) -> None:
        """Once the first prompt is drawn: collect garbage again, start importing litellm and
        the run loop.

        litellm's import takes seconds, mostly holding the GIL; started any earlier it would
        delay the prompt. The first turn waits for it (:meth:`ChatSession.turn`). The run loop
        (some 8 ms) is not needed to draw the prompt either: it loads while the user types.
        """
        if self._prompt_shown:
            return
        self._prompt_shown = True
        if self._gc is not None:
            self._gc.end()
        start_litellm_import(self.captain.model)
        threading.Thread(target=_import_run_loop, name="shipmates-run-loop-preload", daemon=True).start()

    def _loading(self, waiting: bool) -> None:
        """The indicator says ``(loading litellm)`` while the turn waits for its import."""
        indicator = self._indicator
        if indicator is None:
            return
        suffix = " (loading litellm)"
        if waiting:
            indicator.label += suffix
        else:
            indicator.label = indicator.label.removesuffix(suffix)

    async def turn(self, text: str) -> None:
        """Run one turn; print its answer, or ``error: ...``, or that it was cancelled."""
        loop = asyncio.get_running_loop()
        sigint = self._catch_sigint(loop)
        self._indicator = RunningIndicator(
            self.stderr, f"{self.captain.name} is working", active=self.interactive and _isatty(self.stderr)
        )
        self._indicator.start()
        live = _LiveAnswer(self) if self.interactive else None  # a terminal: the answer as it comes
        try:
            try:
                answer = await self.chat.turn(text, self._approver, loading=self._loading, on_event=live)
            finally:
                self._stop_turn(loop, sigint)
                if live is not None:
                    live.end()
        except TurnCancelledError:
            self.note(CANCELLED)
            return
        except EndSession:
            raise
        except Exception as exc:
            self.failed_turns += 1
            self.error(error_text(exc))
            return
        if live is None or not live.wrote:
            self.say(answer)
        self._show_usage()

    def _stop_turn(self, loop: asyncio.AbstractEventLoop, sigint: bool) -> None:
        if self._indicator is not None:
            self._indicator.stop()
            self._indicator = None
        if sigint:
            loop.remove_signal_handler(signal.SIGINT)

    def interrupt(self) -> None:
        """Cancel the running turn (what Ctrl-C does)."""
        self.chat.cancel()

    def _catch_sigint(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            return False
        return True

    # -- approval -------------------------------------------------------------------------

    async def _approver(self, event: ToolCallEvent) -> bool:
        question = approval_question(event, self.chat.provenance(event))
        if self._indicator is not None:
            self._indicator.pause()
        try:
            answer = await self._ask_user(question)
        finally:
            if self._indicator is not None:
                self._indicator.resume()
        allowed = answer.strip().lower() in YES
        if not allowed:
            self.note(refused_text(event))
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


class _LiveAnswer:
    """Writes the captain's text to stdout as the model generates it (a turn on a terminal).

    The indicator stops at the first words; text the captain writes before calling tools ends its
    line when the calls start, so trace lines never share a line with it.
    """

    def __init__(self, repl: Repl) -> None:
        self.repl = repl
        self.wrote = False
        self._open = False  # a line of text without its newline yet

    def __call__(self, event: Any) -> None:
        from .._run._stream_events import ModelCallFinished, TextDelta

        if event.depth != 0:
            return
        if isinstance(event, TextDelta):
            if self.repl._indicator is not None:
                self.repl._indicator.stop()
                self.repl._indicator = None
            self.repl.stdout.write(terminal_safe(event.text))
            self.repl.stdout.flush()
            self.wrote = self._open = True
        elif isinstance(event, ModelCallFinished) and event.tool_calls:
            self.end()

    def end(self) -> None:
        if self._open:
            self.repl.stdout.write("\n")
            self.repl.stdout.flush()
            self._open = False


def _import_run_loop() -> None:
    from .._run import _run_loop  # noqa: F401 - what the first turn imports, done ahead of it
