"""Tab completion in the REPL: slash commands as you type; agent and model names on Tab."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

_ON_OFF_COMMANDS = ("/trace ", "/approve ")


class ReplCompleter(Completer):
    """Completes ``/commands``, ``on|off`` after /trace and /approve, models after /model, agent names."""

    def __init__(
        self,
        commands: Callable[[], Iterable[str]],
        agents: Callable[[], Iterable[str]],
        models: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self._commands = commands
        self._agents = agents
        self._models = models

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("/") and " " not in text:
            for name in self._commands():
                if f"/{name}".startswith(text):
                    yield Completion(f"/{name}", start_position=-len(text))
            return
        for prefix in _ON_OFF_COMMANDS:
            if text.startswith(prefix):
                word = text[len(prefix) :]
                for choice in ("on", "off"):
                    if choice.startswith(word):
                        yield Completion(choice, start_position=-len(word))
                return
        names = self._models() if text.startswith("/model ") else self._agents()
        word = document.get_word_before_cursor(WORD=True)
        # Names only on Tab, so typing prose does not pop up menus.
        if not complete_event.completion_requested:
            return
        for name in sorted(set(names)):
            if name.startswith(word) and name != word:
                yield Completion(name, start_position=-len(word))
