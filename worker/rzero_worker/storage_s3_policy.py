"""How S3 calls end: a bounded time for every request, and which failures are worth a retry.

Time. Every S3 request (one API call, its retries included) gives up after RZERO_NETWORK_DEADLINE_S seconds
(default 300; on a cluster set it through `spec.resources.env`). Each attempt has a connect timeout of
min(10, D/10) s and a read timeout of min(60, D/5) s (at least 1 s each), and no retry starts that could end
after the deadline: a stalled endpoint fails within the deadline instead of botocore's 10 x 120 s. A
transfer is a series of requests (multipart parts; a download's body reads, each bounded by the read
timeout, retried at most 5 times by s3transfer): each is bounded, and progress never counts against it.

Permanent or transient. The worker's exit code says whether the operator should retry (2 = never):

| failure | class | why |
|---|---|---|
| invalid bucket name (botocore's parameter check, or the server's InvalidBucketName) | permanent | the name never changes by itself |
| NoSuchBucket | permanent | nothing in rzero creates buckets |
| no or partial credentials | permanent | the Secret or variables are missing |
| AccessDenied / 403, InvalidAccessKeyId, SignatureDoesNotMatch, AllAccessDisabled | permanent | wrong keys or policy |
| wrong region or endpoint (AuthorizationHeaderMalformed, PermanentRedirect) | permanent | configuration |
| malformed endpoint URL | permanent | configuration |
| endpoint unreachable (refused, DNS, connect timeout) before it ever answered, after the retries | permanent | a wrong endpoint; an outage at the very start of a phase is indistinguishable and fails the run: rerun it |
| endpoint unreachable after it answered once | transient | an outage in the middle of a phase |
| 5xx, SlowDown/throttling, RequestTimeout, dropped connections, read timeouts, the deadline | transient | may pass |
| ExpiredToken, credential-provider errors (IMDS, web identity) | transient | refreshed credentials may fix them |
| integrity mismatches (IntegrityError) | transient | a re-upload or re-download may fix them |

Permanent failures become StorageConfigurationError with one line naming the setting; the rest propagate
unchanged.
"""

from __future__ import annotations

import os
import time

from rzero_worker.storage import StorageConfigurationError, StorageError

NETWORK_DEADLINE_ENV = "RZERO_NETWORK_DEADLINE_S"
DEFAULT_NETWORK_DEADLINE_S = 300.0
_PERMISSION_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                     "InvalidToken"}
_LOCATION_CODES = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}


class StorageDeadlineExceeded(StorageError):
    """An S3 request did not succeed within the network deadline (transient: exit 1)."""


def network_deadline_s() -> float:
    raw = os.environ.get(NETWORK_DEADLINE_ENV, "").strip()
    if not raw:
        return DEFAULT_NETWORK_DEADLINE_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 1 <= value <= 86_400:
        raise StorageConfigurationError(f"{NETWORK_DEADLINE_ENV}={raw!r}: give seconds between 1 and 86400")
    return value


class RequestPolicy:
    """Deadline and error classification for one S3 client. `setting` names the configuration in messages
    (e.g. "spec.storage.uri 's3://bucket/runs'")."""

    def __init__(self, setting: str, bucket: str, endpoint: str | None, deadline_s: float | None = None):
        self.setting, self.bucket, self.endpoint = setting, bucket, endpoint
        self.deadline_s = deadline_s if deadline_s is not None else network_deadline_s()
        self.connect_timeout_s = min(10.0, max(1.0, self.deadline_s / 10))
        self.read_timeout_s = min(60.0, max(1.0, self.deadline_s / 5))
        self.answered = False  # has the endpoint ever sent an HTTP response to this client?
        self.last_error: BaseException | None = None  # of the latest failed attempt

    def register(self, client) -> None:
        client.meta.events.register("before-send.s3", self._before_send)
        client.meta.events.register("needs-retry.s3", self._after_attempt)

    def _before_send(self, request, **_) -> None:
        context, now = request.context, time.monotonic()
        started = context.setdefault("rzero_started", now)
        if now > started and now - started + self.connect_timeout_s + self.read_timeout_s > self.deadline_s:
            attempts = context.get("retries", {}).get("attempt", 2) - 1
            unreachable = self.last_error is not None and self.permanent(self.last_error)
            if unreachable:  # never answered, only connection errors: a wrong endpoint
                raise StorageConfigurationError(unreachable)
            raise StorageDeadlineExceeded(
                f"S3 request to {self.endpoint or 'AWS S3'} did not succeed within {self.deadline_s:g}s "
                f"({NETWORK_DEADLINE_ENV}); gave up after {attempts} attempts ({self.last_error or 'no answer'})"
            )

    def _after_attempt(self, response=None, caught_exception=None, **_) -> None:
        if response is not None:
            self.answered = True
        self.last_error = caught_exception
        return None  # botocore's own retry handler decides; this one only watches

    # ---------------------------------------------------------------------------------------------

    def permanent(self, error: BaseException) -> str | None:
        """One line naming the setting when no retry can fix `error`, else None."""
        from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError,
                                         NoCredentialsError, ParamValidationError, PartialCredentialsError)

        cause = _root_client_error(error) or error
        where = self.setting
        if isinstance(cause, ParamValidationError):
            detail = str(cause).split("\n", 1)[-1].strip()
            return f"{where}: {detail.split(': Bucket name must', 1)[0]} (S3 bucket names: 3-63 characters, a-z 0-9 . -)"
        if isinstance(cause, (NoCredentialsError, PartialCredentialsError)):
            return (f"{where}: no S3 credentials ({cause}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                    "(on a cluster: spec.storage.secretRef)")
        if isinstance(cause, (EndpointConnectionError, ConnectTimeoutError)) and not self.answered:
            return (f"{where}: S3 endpoint {self.endpoint or 'AWS S3'} unreachable after retries ({cause}); "
                    "check spec.storage.endpoint")
        if isinstance(cause, ClientError):
            return self._client_error(cause, where)
        return None

    def _client_error(self, error, where: str) -> str | None:
        info = error.response.get("Error", {})
        code, message = str(info.get("Code", "")), info.get("Message") or ""
        if code == "NoSuchBucket":
            return f"{where}: bucket {self.bucket!r} does not exist at {self.endpoint or 'AWS S3'}"
        if code == "InvalidBucketName":
            return f"{where}: invalid bucket name {self.bucket!r} ({message})"
        if code in _PERMISSION_CODES:
            return (f"{where}: access refused ({code}{': ' + message if message else ''}); check the credentials "
                    "(spec.storage.secretRef) and the bucket's policy")
        if code in _LOCATION_CODES:
            return f"{where}: wrong region or endpoint for bucket {self.bucket!r} ({code}); check spec.storage.region"
        return None


def _root_client_error(error: BaseException) -> BaseException | None:
    """boto3 wraps transfer failures (S3UploadFailedError...): the botocore error is in the chain."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen = error
    for _ in range(5):
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        if seen is None:
            return None
        if isinstance(seen, (ClientError, BotoCoreError)):
            return seen
    return None
