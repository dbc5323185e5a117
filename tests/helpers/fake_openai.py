"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests (port 0, served from a thread).

``FakeOpenAI(reply, statuses, delay)``: POST /v1/chat/completions answers with ``reply(body)``,
which returns the assistant text, ``(http_status, text)``, or a :class:`Raw` answer (any body,
headers, status, optionally trickled byte by byte). ``statuses`` is a queue answered first, one
entry per request: an HTTP status (e.g. ``[500]`` for one transient failure) or a :class:`Raw`.
``delay`` seconds pass before each answer (so that concurrent requests overlap). Every request
body and its Authorization header is recorded; ``count`` is the number of requests received.
Error bodies echo the key back, as some servers do, so tests can check that clients never
surface it. Leaving the ``with`` block stops every answer still trickling.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Raw:
    """An answer sent exactly as given. ``body``: bytes, str, or a JSON-able object (dumped).
    ``trickle``: seconds between bytes; the body only, or the whole answer (status line and
    headers included) when ``trickle_headers``."""

    body: Any = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    trickle: float = 0.0
    trickle_headers: bool = False


def completion(text: Any, model: str = "x", n: int = 1) -> dict:
    """A chat.completion object whose one choice says ``text`` (``None`` for no content)."""
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class FakeOpenAI:
    def __init__(self, reply: Callable[[dict], str | tuple[int, str] | Raw] | None = None,
                 statuses: list[int | Raw] | None = None, delay: float = 0.0) -> None:
        self.reply = reply or (lambda body: "hello")
        self.statuses = list(statuses or [])
        self.delay = delay
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, raw: Raw) -> None:
                body = raw.body
                if not isinstance(body, (bytes, str)):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                headers = {"Content-Type": raw.content_type, "Content-Length": str(len(data)), **raw.headers}
                phrase = HTTPStatus(raw.status).phrase if raw.status in HTTPStatus._value2member_map_ else "Status"
                head = f"{self.protocol_version} {raw.status} {phrase}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
                if not raw.trickle:
                    self.wfile.write(head.encode() + data)
                    return
                slow = head.encode() + data if raw.trickle_headers else data
                if not raw.trickle_headers:
                    self.wfile.write(head.encode())
                for i in range(len(slow)):
                    if fake.stopped.wait(raw.trickle):
                        return
                    self.wfile.write(slow[i:i + 1])

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Authorization")
                with fake.lock:
                    fake.requests.append(body)
                    fake.auth.append(key)
                    n = len(fake.requests)
                    queued = fake.statuses.pop(0) if fake.statuses else 200
                if fake.delay and fake.stopped.wait(fake.delay):
                    return
                status, text, raw = (queued, "", None) if isinstance(queued, int) else (200, "", queued)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, raw = 404, None
                elif status == 200 and raw is None:
                    answer = fake.reply(body)
                    if isinstance(answer, Raw):
                        raw = answer
                    else:
                        status, text = answer if isinstance(answer, tuple) else (200, answer)
                if raw is None:
                    if status == 200:
                        payload = completion(text, body.get("model", "x"), n)
                    else:
                        payload = {"error": {"message": f"failure {status} for key {(key or '')[7:]}", "type": "server_error"}}
                    raw = Raw(payload, status=status)
                try:
                    self._send(raw)
                except OSError:  # the client gave up (a deadline): nothing more to send
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self.lock:
            return len(self.requests)

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
