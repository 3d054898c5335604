r"""The endpoint oracle: an OpenAI-compatible chat completions server answers each question.

Any server that speaks `POST <url>/chat/completions` (a vLLM server, a hosted provider) can check the
pseudo-labels. Each question is sent once with the Solver's prompt at temperature 0; the answer is the
last `\boxed{}` of `choices[0].message.content`.

What a remote service does to a run is bounded:
- timeouts: every request has a connect and read timeout (`timeoutSeconds`);
- retries: a 429, a 5xx, a timeout or a broken connection is retried up to `maxRetries` times after an
  exponential backoff (`backoffSeconds`, doubling; a `Retry-After` header wins, capped at MAX_RETRY_AFTER_S);
- a budget: at most `budget` requests in all, retries included; questions left when it is spent are not
  checked (`over_budget`);
- a malformed reply (not JSON, no choices, no string content) is counted (`malformed`) and skipped, never
  retried: a server that answers nonsense once will likely do so again;
- any other HTTP error (401, 403, 404, 400) stops the oracle for the rest of the phase: it is recorded in
  `error` (the label phase still commits; the operator posts it as a Warning event). No retry can fix a
  wrong key or URL, and labelling work is not thrown away for it.

The API key is read from an environment variable (on Kubernetes filled from a Secret by reference) and
is only ever put into the Authorization header: it is never logged, and any text from the server that is
logged or recorded has it masked, in case the server echoes it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import requests

from rzero_worker.task import OracleEndpointSettings

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 300.0
MAX_ERROR_TEXT = 200
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
_RETRY = object()  # _post's verdict "try again" (a reply's content may be any string)


class EndpointOracle:
    """Answers from an OpenAI-compatible chat endpoint, within a request budget (see the module notes)."""

    name = "endpoint"

    def __init__(
        self,
        settings: OracleEndpointSettings,
        *,
        budget: int,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.url = chat_url(settings.url)
        self.budget = max(0, budget)
        self._key = api_key or None
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self.counts = dict(requests=0, retries=0, malformed=0, no_answer=0, failed=0, over_budget=0)
        self.error: str | None = None

    # -- the Oracle interface -----------------------------------------------------------------------

    def answer(self, questions: list[str]) -> list[str | None]:
        if not questions:
            return []
        with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, len(questions))) as pool:
            answers = list(pool.map(self._answer_one, questions))
        log.info("oracle endpoint answered %d of %d questions (%s)", sum(a is not None for a in answers),
                 len(questions), ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        return answers

    def replies(self, chats: list[list[dict]]) -> list[str | None]:
        """The reply content of each chat (None, counted, where there is none), with the same timeouts, retries
        and budget: the client the endpoint Verifier shares (verifier/judges.py)."""
        if not chats:
            return []
        with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, len(chats))) as pool:
            return list(pool.map(self._ask, chats))

    def metrics(self) -> dict[str, Any]:
        """Counters for the label phase's summary (and `error` when the oracle stopped early)."""
        return {**self.counts, **({"error": self.error} if self.error else {})}

    # -- one question ---------------------------------------------------------------------------------

    def _answer_one(self, question: str) -> str | None:
        from rzero_worker.grading import extract_boxed

        from rzero_worker.prompts import solver_messages

        content = self._ask(solver_messages(question))
        if content is None:
            return None
        answer = extract_boxed(content)
        if answer is None:
            self._count("no_answer")
        return answer

    def _ask(self, messages: list[dict]) -> str | None:
        """The reply's content, or None (counted) when there is none to be had."""
        payload = {
            "model": self.settings.model, "messages": messages,
            "temperature": 0, "max_tokens": self.settings.max_tokens, "n": 1,
        }
        for attempt in range(self.settings.max_retries + 1):
            if self.error is not None:
                self._count("failed")
                return None
            if not self._spend():
                self._count("over_budget")
                return None
            outcome, wait = self._post(payload, attempt)
            if outcome is not _RETRY:
                return outcome
            if attempt < self.settings.max_retries:
                self._count("retries")
                self._sleep(wait)
        self._count("failed")
        return None

    def _post(self, payload: dict, attempt: int) -> tuple[Any, float]:
        """(content | None, 0) when done with this question, (_RETRY, seconds to wait) otherwise."""
        backoff = self.settings.backoff_seconds * 2**attempt
        try:
            response = self._session().post(
                self.url, json=payload, headers=self._headers(), timeout=self.settings.timeout_seconds
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            log.warning("oracle endpoint: %s; retrying in %.1fs", type(error).__name__, backoff)
            return _RETRY, backoff
        status = response.status_code
        if status == 429 or status in RETRYABLE_STATUS or status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), backoff)
            log.warning("oracle endpoint: HTTP %d; retrying in %.1fs", status, wait)
            return _RETRY, wait
        if status != 200:
            self._stop(f"HTTP {status} from {self.url}: {self._mask(response.text)}")
            self._count("failed")
            return None, 0.0
        content = reply_content(response)
        if content is None:
            self._count("malformed")
            log.warning("oracle endpoint: malformed reply skipped: %s", self._mask(response.text))
        return content, 0.0

    # -- plumbing -------------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:  # one per thread: requests does not promise a Session is thread-safe
            session = self._local.session = requests.Session()
        return session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _spend(self) -> bool:
        with self._lock:
            if self.counts["requests"] >= self.budget:
                return False
            self.counts["requests"] += 1
            return True

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _stop(self, message: str) -> None:
        with self._lock:
            if self.error is None:
                self.error = message
                log.error("oracle endpoint stopped: %s", message)

    def _mask(self, text: str) -> str:
        text = " ".join(str(text).split())[:MAX_ERROR_TEXT]
        return text.replace(self._key, "***") if self._key else text


def chat_url(url: str) -> str:
    """The chat completions URL of a base URL (…/v1) or of the full URL itself."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def reply_content(response) -> str | None:
    """`choices[0].message.content` of an OpenAI chat reply; None when the reply does not have one."""
    try:
        body = response.json()
    except ValueError:
        return None
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def retry_after(header: str | None, default: float) -> float:
    """Seconds to wait: a Retry-After header (seconds or an HTTP date) when present, else `default`."""
    if not header:
        return default
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return default
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)
