"""S3 for tests: moto's real HTTP S3 server on loopback, plus storage-location fixtures.

Fixtures (pytest plugin, listed in tests/conftest.py):
- `s3_server` (session): endpoint URL of a moto server on 127.0.0.1, free port.
- `s3_location` (function): a fresh bucket; `StorageLocation(uri="s3://<bucket>/runs", endpoint_url=...)`;
  fake AWS credentials set in the environment (subprocesses inherit them).
- `local_location` (function): `StorageLocation(uri=<tmp_path>/runs)`.
- `storage_location` (function, parametrized local/s3): for tests that must pass on both backends.

`FlakyProxy` puts an HTTP proxy in front of the server that answers the first N requests with an
error status (500, 503...) and forwards the rest: how retry behaviour is tested.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from rzero_worker.task import StorageLocation

TEST_REGION = "us-east-1"
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": TEST_REGION,
}


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fake_aws_environment(monkeypatch) -> None:
    """Fake credentials only; never the developer's real ones (no profile or config files)."""
    for name, value in _FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def create_bucket(endpoint_url: str) -> str:
    import boto3

    bucket = f"rzero-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_location(s3_server, monkeypatch) -> StorageLocation:
    fake_aws_environment(monkeypatch)
    bucket = create_bucket(s3_server)
    return StorageLocation(uri=f"s3://{bucket}/runs", endpoint_url=s3_server, region=TEST_REGION)


@pytest.fixture
def local_location(tmp_path) -> StorageLocation:
    return StorageLocation(uri=str(tmp_path / "runs"))


@pytest.fixture(params=["local", "s3"])
def storage_location(request) -> StorageLocation:
    return request.getfixturevalue(f"{request.param}_location")


class FlakyProxy:
    """Loopback HTTP proxy: the first `failures` requests get `status`, later ones reach `upstream`."""

    def __init__(self, upstream: str, failures: int, status: int = 500):
        self.upstream = urlsplit(upstream)
        self.failures_left = failures
        self.status = status
        self.failed: list[str] = []  # "METHOD path" of each request answered with an error
        self.forwarded = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FlakyProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _take_failure(self, request_line: str) -> bool:
        with self._lock:
            if self.failures_left <= 0:
                self.forwarded += 1
                return False
            self.failures_left -= 1
            self.failed.append(request_line)
            return True

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1: answers botocore's "Expect: 100-continue" at once (HTTP/1.0 makes it wait 1 s).
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._take_failure(f"{self.command} {self.path}"):
                    self._send_error()
                else:
                    self._forward(body)

            def _send_error(self) -> None:
                code = "SlowDown" if proxy.status == 503 else "InternalError"
                payload = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
                self.send_response(proxy.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body: bytes | None) -> None:
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host", "expect")}
                headers["Host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                payload = reply.read()
                self.send_response(reply.status, reply.reason)
                for name, value in reply.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", reply.getheader("Content-Length") or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler
