"""A fault-injecting HTTP proxy on loopback, in front of the moto S3 server (or any HTTP upstream).

    with FaultProxy(s3_server) as proxy:
        proxy.add(Fault("status", method="PUT", times=3, status=503))   # a 5xx storm on uploads
        proxy.add(Fault("drop", method="GET"))                          # a dropped connection
        proxy.add(Fault("stall"))                                       # an endpoint that never answers
        proxy.add(Fault("lose", method="PUT", path=r"/model\\.safetensors$"))  # acknowledged, never stored
        storage = open_storage(location.model_copy(update={"endpoint_url": proxy.url}))

Faults, each for the first `times` matching requests (`times=None`: every one):
- status: answer `status` with an S3 error document (SlowDown for 503, AccessDenied for 403...);
- drop: read the request, close the connection without a word;
- stall: read the request, answer nothing for `seconds` (None: until the proxy closes), then close;
- lose: answer a PUT 200 with the ETag S3 would give, without storing it (storage lost an acknowledged write);
- truncate: forward, but send only half of the response body under the full Content-Length (a cut download);
- corrupt: flip one byte of a PUT body on its way to the server (bytes damaged in transit).

Requests are matched by method and a regex searched in the path (bucket and key). `proxy.log` lists
"METHOD path -> action" for every request, in order.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACTIONS = ("status", "drop", "stall", "lose", "truncate", "corrupt")
_ERROR_CODES = {503: "SlowDown", 500: "InternalError", 502: "BadGateway", 403: "AccessDenied", 404: "NoSuchKey"}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a connection the fault closed under the handler: expected, not news


@dataclass
class Fault:
    action: str
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    status: int = 503
    seconds: float | None = None

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; one of {ACTIONS}")

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path))


class FaultProxy:
    """Loopback HTTP proxy that forwards to `upstream` except where a Fault applies."""

    def __init__(self, upstream: str, faults: list[Fault] | None = None):
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = list(faults or [])
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def injected(self, action: str | None = None) -> list[str]:
        """Log lines of requests that met a fault (of one action)."""
        return [line for line in self.log if not line.endswith("-> forward") and (action is None or line.endswith(action))]

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    self.log.append(f"{method} {path} -> {fault.action}")
                    return fault
            self.log.append(f"{method} {path} -> forward")
            return None


class _Handler(BaseHTTPRequestHandler):
    """Forwards a request, or plays the fault the proxy hands out for it."""

    # HTTP/1.1: answers botocore's "Expect: 100-continue" at once (HTTP/1.0 makes it wait 1 s).
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = proxy._take(self.command, self.path)
        if fault is None:
            self._forward(body)
        elif fault.action == "status":
            self._send_error(fault.status)
        elif fault.action in ("drop", "stall"):
            if fault.action == "stall":
                proxy._closing.wait(fault.seconds)
            self.close_connection = True
            self.connection.close()
        elif fault.action == "lose":
            self._acknowledge(body or b"")
        elif fault.action == "corrupt" and body:
            self._forward(bytes([body[0] ^ 0xFF]) + body[1:])
        else:
            self._forward(body, truncate=fault.action == "truncate")

    def _send_error(self, status: int) -> None:
        code = _ERROR_CODES.get(status, "InternalError")
        payload = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _acknowledge(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _forward(self, body: bytes | None, truncate: bool = False) -> None:
        upstream = self.server.proxy.upstream
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host", "expect")}
        headers["Host"] = upstream.netloc
        conn.request(self.command, self.path, body=body, headers=headers)
        reply = conn.getresponse()
        payload = reply.read()
        conn.close()
        self.send_response(reply.status, reply.reason)
        for name, value in reply.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", reply.getheader("Content-Length") or str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate and len(payload) > 1:
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
            return
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class FlakyProxy(FaultProxy):
    """The first `failures` requests get `status`, later ones reach `upstream` (retry tests)."""

    def __init__(self, upstream: str, failures: int, status: int = 500):
        super().__init__(upstream, [Fault("status", times=failures, status=status)])

    @property
    def failed(self) -> list[str]:
        """"METHOD path" of each request answered with an error."""
        return [line.rsplit(" -> ", 1)[0] for line in self.injected("status")]

    @property
    def failures_left(self) -> int:
        return self.faults[0].times

    @failures_left.setter
    def failures_left(self, value: int) -> None:
        self.faults[0].times = value
