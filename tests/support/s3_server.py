"""S3 for tests: moto's real HTTP S3 server on loopback, plus storage-location fixtures.

Fixtures (pytest plugin, listed in tests/conftest.py):
- `s3_server` (session): endpoint URL of a moto server on 127.0.0.1, free port.
- `s3_location` (function): a fresh bucket; `StorageLocation(uri="s3://<bucket>/runs", endpoint_url=...)`;
  fake AWS credentials set in the environment (subprocesses inherit them).
- `local_location` (function): `StorageLocation(uri=<tmp_path>/runs)`.
- `storage_location` (function, parametrized local/s3): for tests that must pass on both backends.

Fault injection in front of the server (5xx storms, drops, stalls, lost or damaged objects):
support/fault_proxy.py (`FaultProxy`, and `FlakyProxy` for "the first N requests fail").
"""

from __future__ import annotations

import uuid

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
