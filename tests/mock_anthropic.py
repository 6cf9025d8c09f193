"""A local stand-in for the Anthropic Messages API (loopback only), for driving the REAL bundled
Claude Code CLI through the real Agent SDK in tests.

It records every request body and answers ``POST /v1/messages`` with a streamed (SSE) message:
through the ``StructuredOutput`` tool when the CLI offers one (that is how ``--json-schema`` is
served), else as text; or with an HTTP error status when ``status`` is set.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


class MockAnthropic:
    def __init__(self, reply: dict[str, Any], status: int = 200):
        self.reply = reply
        self.status = status
        self.requests: list[dict[str, Any]] = []
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    request = json.loads(body)
                except ValueError:
                    request = {}
                if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
                    self._json(200, {"input_tokens": 10})
                    return
                mock.requests.append(request)
                if mock.status != 200:
                    kind = "authentication_error" if mock.status == 401 else "api_error"
                    self._json(
                        mock.status,
                        {"type": "error", "error": {"type": kind, "message": "mock refusal"}},
                    )
                    return
                self._stream(request)

            def _json(self, status: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", "req_mock")
                if status != 200:
                    self.send_header("x-should-retry", "false")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, request: dict) -> None:
                tools = [t.get("name", "") for t in request.get("tools", []) if isinstance(t, dict)]
                structured = next((t for t in tools if t == "StructuredOutput"), None)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()

                def event(name: str, data: dict) -> None:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

                event(
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": "msg_mock",
                            "type": "message",
                            "role": "assistant",
                            "model": request.get("model", "mock"),
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 1000, "output_tokens": 1},
                        },
                    },
                )
                text = json.dumps(mock.reply)
                if structured:
                    block = {
                        "type": "tool_use",
                        "id": "toolu_mock",
                        "name": structured,
                        "input": {},
                    }
                    delta = {"type": "input_json_delta", "partial_json": text}
                    stop = "tool_use"
                else:
                    block = {"type": "text", "text": ""}
                    delta = {"type": "text_delta", "text": text}
                    stop = "end_turn"
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                )
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
                event("content_block_stop", {"type": "content_block_stop", "index": 0})
                event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": 50},
                    },
                )
                event("message_stop", {"type": "message_stop"})
                self.wfile.flush()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> MockAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
