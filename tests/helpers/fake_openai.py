"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests (port 0, served from a thread).

``FakeOpenAI(reply, statuses)``: POST /v1/chat/completions answers with ``reply(body)``, which
returns the assistant text or ``(http_status, text)``; ``statuses`` is a queue of statuses to
answer with first (e.g. ``[500]`` for one transient failure). Every request body and its
Authorization header is recorded. Error bodies echo the key back, as some servers do, so tests
can check that clients never surface it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class FakeOpenAI:
    def __init__(self, reply: Callable[[dict], str | tuple[int, str]] | None = None,
                 statuses: list[int] | None = None) -> None:
        self.reply = reply or (lambda body: "hello")
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Authorization")
                with fake.lock:
                    fake.requests.append(body)
                    fake.auth.append(key)
                    status = fake.statuses.pop(0) if fake.statuses else 200
                text = ""
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status = 404
                elif status == 200:
                    answer = fake.reply(body)
                    status, text = answer if isinstance(answer, tuple) else (200, answer)
                if status == 200:
                    payload = {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "x"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                else:
                    payload = {"error": {"message": f"failure {status} for key {(key or '')[7:]}", "type": "server_error"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
