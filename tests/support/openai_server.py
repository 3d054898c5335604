"""A real HTTP server on loopback that speaks the OpenAI chat completions API, for the endpoint oracle.

`openai_server` (fixture) serves `POST /v1/chat/completions` from its own thread. It answers each question
(the last message's content) with `answers[question]` as the assistant's content, and can misbehave per
question, in order, through `behaviours[question]` — a list consumed one request at a time:

    "429"        429 Too Many Requests with Retry-After: 0
    "500"/"503"  that status
    "slow"       sleep `slow_s` before answering normally (longer than the client's timeout)
    "malformed"  200 with a body that is not a chat completion
    "echo"       200 with a non-JSON body that echoes the request's Authorization header (a hostile server)
    "401"        401 with an error that echoes the Authorization header

`respond(body) -> str | None` (optional), for a question not in `answers`: the reply computed from the whole
request (a deterministic judge, e.g. tests/support/judge_server.py); None falls back to the default.

Every request is recorded (`requests`: path, headers, body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class ChatServer:
    answers: dict[str, str] = field(default_factory=dict)
    behaviours: dict[str, list[str]] = field(default_factory=dict)
    slow_s: float = 1.0
    respond: object = None  # optional callable(body) -> str | None (module notes)
    requests: list[dict] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self, question: str) -> str:
        with self._lock:
            queue = self.behaviours.get(question) or []
            return queue.pop(0) if queue else "ok"

    def record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def asked(self, question: str) -> int:
        return sum(1 for r in self.requests if r["question"] == question)


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": "oracle",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _handler(server: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            question = (body.get("messages") or [{}])[-1].get("content", "")
            auth = self.headers.get("Authorization", "")
            server.record({"path": self.path, "authorization": auth, "body": body, "question": question})
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": {"message": "not found"}}')
            behaviour = server.next_behaviour(question)
            if behaviour == "429":
                return self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"})
            if behaviour in ("500", "503"):
                return self._send(int(behaviour), b'{"error": {"message": "server error"}}')
            if behaviour == "malformed":
                return self._send(200, b'{"choices": []}')
            if behaviour == "echo":
                return self._send(200, f"<html>you sent {auth}</html>".encode())
            if behaviour == "401":
                return self._send(401, json.dumps({"error": {"message": f"bad key: {auth}"}}).encode())
            if behaviour == "slow":
                time.sleep(server.slow_s)
            content = server.answers.get(question)
            if content is None and callable(server.respond):
                content = server.respond(body)
            content = "I cannot tell." if content is None else content
            self._send(200, json.dumps(completion(content)).encode())

    return Handler


@pytest.fixture
def openai_server():
    state = ChatServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
