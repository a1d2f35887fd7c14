"""A tiny OpenAI-compatible chat-completions server on loopback that streams a fixed answer (SSE).

Standard library only (``asyncio.start_server``): every POST gets ``TOKENS`` chunks of one token
each, as fast as the socket takes them, then a usage chunk and ``[DONE]``; the connection is
closed after each answer. It reads nothing from the request but its length, so it answers any
model name. ``start()`` returns the server and its base URL (``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

TOKENS = 2000


def _chunks(tokens: int) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "mock"}
    out = []
    for i in range(tokens):
        delta = {"role": "assistant", "content": f"t{i} "} if i == 0 else {"content": f"t{i} "}
        out.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": tokens + 10}
    out.append({**base, "choices": [], "usage": usage})
    return b"".join(b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in out) + (
        b"data: [DONE]\n\n"
    )


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\n\r\n"
        )
        writer.write(body)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def start(tokens: int = TOKENS) -> tuple[Any, str]:
    body = _chunks(tokens)
    server = await asyncio.start_server(lambda r, w: _handle(r, w, body), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"
