"""An OpenAI-compatible chat server on loopback, for tests of litellm's real HTTP path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    """An OpenAI-compatible chat server on loopback: the captain (it has a ``helper`` tool) is
    told to delegate, the helper answers, the captain passes the answer on. Records each request.
    ``status``: answer every request with this HTTP error instead."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
                if server.status != 200:
                    self._send(server.status, {"error": {"message": "nope", "type": "invalid_request_error"}})
                    return
                message = server.reply(body)
                if body.get("stream"):
                    self._stream(message)
                else:
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    self._send(
                        200,
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "created": 1,
                            "model": "m",
                            "choices": [choice],
                        },
                    )

            def _send(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, message: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                delta = dict(message)
                if "tool_calls" in delta:
                    delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
                for choice in (
                    {"index": 0, "delta": delta},
                    {"index": 0, "delta": {}, "finish_reason": "stop"},
                ):
                    chunk = {
                        "id": "x",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [choice],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def reply(body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return {"role": "assistant", "content": f"the helper said: {last['content']}"}
        if any(t["function"]["name"] == "helper" for t in body.get("tools") or ()):
            call = {
                "id": "c1",
                "type": "function",
                "function": {"name": "helper", "arguments": json.dumps({"query": last["content"]})},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"role": "assistant", "content": "helper here"}

    def who(self) -> list[str]:
        """Who sent each request: the captain (it has tools) or the helper."""
        return ["captain" if body.get("tools") else "helper" for body, _ in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
