"""The conversation log: every chat turn, kept in SQLite in the state directory.

Each turn records the prompt, the answer (or the error), the model, the captain, each tool call
with its sibling and provenance, the usage when the model reported it, and the duration.
``shipmates logs`` lists them; ``shipmates chat --continue`` (or ``--cid ID``) resumes a
conversation from its prompts and answers. The file is user-only (0600 in a 0700 directory) and
holds no model settings, so no API key or other secret is ever written to it.

Like ``llm``'s log: one row per conversation, one per turn, and writes that never break a chat
(a log that cannot be written is a warning, not a failed turn).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from .._run._events import ToolCallEvent

LOG_FILE = "logs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    captain TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    started REAL NOT NULL,
    duration REAL NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT,
    error TEXT,
    tool_calls TEXT NOT NULL,
    usage TEXT
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""


@dataclass
class LoggedTurn:
    """One turn as the log holds it."""

    conversation_id: str
    started: float
    duration: float
    model: str
    prompt: str
    answer: str | None
    error: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    captain: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tool_call_record(event: ToolCallEvent) -> dict[str, Any]:
    """What the log keeps of one tool call: who was called, from where, how it ended."""
    provenance = event.provenance
    return {
        "tool": event.tool,
        "agent": event.agent,
        "depth": event.depth,
        "delegation": event.is_delegation,
        "distribution": provenance.distribution if provenance is not None else None,
        "version": provenance.version if provenance is not None else None,
        "arguments": event.arguments,
        "status": event.status,
        "error": event.error,
        "duration": event.duration,
    }


class ChatLog:
    """The conversation log at ``path`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        # Opened on first use: a chat that never finishes a turn never touches the file.
        if self._connection is None:
            from .._paths import private_dir, private_file

            private_dir(os.path.dirname(self.path) or ".")
            private_file(self.path)
            import sqlite3

            self._connection = sqlite3.connect(self.path, isolation_level=None)  # autocommit
            # A log, not a ledger: without an fsync per turn a power cut may lose the last turns,
            # never the file (WAL), and a one-shot chat does not wait on the disk.
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(_SCHEMA)
        return self._connection

    @classmethod
    def default(cls) -> ChatLog:
        """The log in the user's state directory."""
        from .._paths import state_path

        return cls(os.path.join(state_path(), LOG_FILE))  # the directory is made on first write

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def start(self, captain: str, model: str) -> str:
        """A new conversation; returns its id."""
        cid = os.urandom(6).hex()  # 12 hex digits, as random as uuid4's first 12; no uuid import
        self._db.execute(
            "INSERT INTO conversations (id, started, captain, model) VALUES (?, ?, ?, ?)",
            (cid, time.time(), captain, model),
        )
        return cid

    def exists(self, cid: str) -> bool:
        return self._db.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone() is not None

    def latest(self) -> str | None:
        """The id of the conversation with the most recent turn, if any."""
        row = self._db.execute("SELECT conversation_id FROM turns ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def record(
        self,
        cid: str,
        *,
        prompt: str,
        model: str,
        started: float,
        duration: float,
        answer: str | None = None,
        error: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        """Add one turn to conversation ``cid``."""
        self._db.execute(
            "INSERT INTO turns (conversation_id, started, duration, model, prompt, answer, error, "
            "tool_calls, usage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                started,
                duration,
                model,
                prompt,
                answer,
                error,
                json.dumps(tool_calls or [], default=str),
                None if usage is None else json.dumps(usage, default=str),
            ),
        )

    def turns(self, *, cid: str | None = None, limit: int | None = None) -> list[LoggedTurn]:
        """Turns, oldest first: of conversation ``cid``, or the last ``limit`` of all."""
        query = (
            "SELECT t.conversation_id, t.started, t.duration, t.model, t.prompt, t.answer, t.error, "
            "t.tool_calls, t.usage, c.captain FROM turns t JOIN conversations c ON c.id = t.conversation_id"
        )
        params: tuple[Any, ...] = ()
        if cid is not None:
            query += " WHERE t.conversation_id = ?"
            params = (cid,)
        query += " ORDER BY t.id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params = (*params, limit)
        rows = self._db.execute(query, params).fetchall()
        return [
            LoggedTurn(
                conversation_id=row[0],
                started=row[1],
                duration=row[2],
                model=row[3],
                prompt=row[4],
                answer=row[5],
                error=row[6],
                tool_calls=json.loads(row[7]),
                usage=None if row[8] is None else json.loads(row[8]),
                captain=row[9],
            )
            for row in reversed(rows)
        ]

    def messages(self, cid: str) -> list[dict[str, Any]]:
        """Conversation ``cid`` as chat messages (each answered prompt and its answer), to resume it."""
        messages: list[dict[str, Any]] = []
        for turn in self.turns(cid=cid):
            if turn.answer is not None and turn.error is None:
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.answer})
        return messages
