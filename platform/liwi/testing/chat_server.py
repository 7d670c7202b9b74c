"""A real OpenAI-style chat-completions server on 127.0.0.1 for tests of LLM/VLM clients.

Replies come from a function of the request body; every request (path, headers, body)
is recorded. It runs in a thread of the test process and stops on ``close()``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (HTTP status, JSON payload) for one request body.
Responder = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


@dataclass
class ChatRequest:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def assistant_reply(content: str | None = None, tool_calls: list[dict] | None = None) -> dict:
    """A ``chat.completion`` payload with one assistant message (text or tool calls)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "message": message,
            }
        ],
    }


class ChatServer:
    """``with ChatServer(respond) as chat: client(endpoint=chat.url)``; see ``chat.requests``."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[ChatRequest] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(ChatRequest(self.path, dict(self.headers), body))
                status, payload = respond(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
