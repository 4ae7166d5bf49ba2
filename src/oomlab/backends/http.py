"""The shared HTTP base for backends that talk to a server: one place for retries and rate limits.

An async httpx client runs on a private event loop in a daemon thread, so the synchronous
`generate` API works from plain code, from several threads at once, and from inside a running
event loop alike. Requests in flight are bounded by a semaphore; a request that fails with a
connect error, a timeout, HTTP 429 or a 5xx is retried with exponential backoff and full jitter
(honouring Retry-After), at most `max_retries` times, and then becomes a `BackendError` that
names the URL and the last error.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from oomlab.errors import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HTTPBackend:
    """Base of HTTP backends: bounded concurrency, retries with backoff, one event loop of its own."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
    ):
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise BackendError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after  # a server asking for longer than this is not waited on longer
        self._jitter = random.Random()  # timing only: nothing measured depends on it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._start_lock = threading.Lock()

    # -- the private event loop ---------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name=f"oomlab-http {self.base_url}", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this backend's loop and wait for its result (callable from any thread)."""
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def _http(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # created on the loop's own thread, so both belong to that loop
        if self._client is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.AsyncClient(headers=self.headers, timeout=httpx.Timeout(self.timeout), limits=limits)
            self._semaphore = asyncio.Semaphore(self.concurrency)
        assert self._semaphore is not None
        return self._client, self._semaphore

    # -- requests -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff (AWS architecture blog, 2015); Retry-After wins when given."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self._jitter.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))

    async def request_json(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request with retries; return the decoded JSON body or raise BackendError."""
        client, semaphore = await self._http()
        url = self.url(path)
        attempts = self.max_retries + 1
        last_error, kind = "", "cannot reach"
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                async with semaphore:
                    response = await client.request(method, url, json=payload)
            except httpx.TransportError as e:  # connect errors, timeouts, dropped connections
                last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                kind = "cannot reach"
            else:
                status = response.status_code
                if status < 400:
                    try:
                        body = response.json()
                    except ValueError as e:
                        raise BackendError(f"{url} answered HTTP {status} with a body that is not JSON: {response.text[:200]!r}") from e
                    if not isinstance(body, dict):
                        raise BackendError(f"{url} answered with JSON that is not an object: {response.text[:200]!r}")
                    return body
                last_error = f"HTTP {status}: {response.text[:300]}"
                if status not in RETRY_STATUS and status < 500:
                    hint = " (check --api-key)" if status in (401, 403) else ""
                    raise BackendError(f"{method} {url} was refused{hint}: {last_error}")
                kind = "server kept failing at"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 < attempts:
                delay = self._delay(attempt, retry_after)
                log.debug("%s %s failed (%s); retry %d/%d in %.2fs", method, url, last_error, attempt + 1, self.max_retries, delay)
                await asyncio.sleep(delay)
        raise BackendError(f"{kind} {url} after {attempts} attempt{'s' if attempts != 1 else ''}: {last_error}")

    def close(self) -> None:
        """Close the HTTP client and stop the private event loop."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return

        async def shutdown() -> None:
            if self._client is not None:
                await self._client.aclose()
            self._client = self._semaphore = None

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=10)
            loop.close()

    def __enter__(self) -> HTTPBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
