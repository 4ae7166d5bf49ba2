"""The shared HTTP base for backends that talk to a server: one place for retries, timing and waste.

An async httpx client runs on a private event loop in a daemon thread, so the synchronous
`generate` API works from plain code, from several threads at once, and from inside a running
event loop alike. Requests in flight are bounded by a semaphore; a request that fails with a
connect error, a timeout, a dropped connection, HTTP 408, 429 or a 5xx is retried with exponential
backoff and full jitter (honouring Retry-After), at most `max_retries` times, and then becomes a
`BackendError` that names the URL and the last error.

The books, per logical request (an `Exchange`):
- `seconds`: the answering try's share of the time the server was busy with this backend's tries.
  Each moment some tries are in flight is split equally among them (processor sharing), so the
  shares of all requests add up to the time the server had work from us: a server that batches
  eight requests into one second is charged one second, not eight, and one that queues them is not
  charged for the queue eight times over. Waiting for the semaphore or in backoff is not in flight.
- `wait_seconds`: semaphore queueing + backoff sleeps + the round trips of tries that failed.
- `failed`: tries the server answered or may have answered without a usable result: 5xx answers,
  read/write timeouts, connections dropped after the request went out, and tries cancelled while
  in flight. They are waste: the server may have computed them. A connect error never reached the
  server, and 408/429 say the server did not take the request, so those are waits, not waste.

A try that stays silent is reported through `on_status` (a countdown to giving up), so a server
that accepts connections but never answers is visible and fails within timeout × (retries + 1)
plus backoff; the startup probe uses its own short `probe_timeout`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx

from oomlab.backends.base import Waste
from oomlab.errors import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
NOT_TAKEN_STATUS = frozenset({408, 429})  # retried, but the server says it did not work on the request
# Transport errors raised before the request reached the server: a wait, never waste.
UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)


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


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _waste_reason(e: httpx.TransportError) -> str:
    if isinstance(e, httpx.RemoteProtocolError | httpx.ReadError):
        return "dropped connection"
    return type(e).__name__  # ReadTimeout, WriteTimeout, WriteError, ...


@dataclass
class FailedTry:
    """A try the server may have computed that gave no result (waste): why, and its share of busy time."""

    reason: str
    seconds: float


@dataclass
class Exchange:
    """One logical request's history across its tries, filled in by `request_json` as it goes."""

    url: str
    seconds: float = 0.0  # the answering try's share of the server's busy time
    wait_seconds: float = 0.0  # semaphore queueing + backoff sleeps + failed tries' round trips
    failed: list[FailedTry] = field(default_factory=list)
    answered: bool = False  # a try came back with 2xx/3xx (the caller may still find the answer unusable)


class BusyClock:
    """Splits the time any try is in flight equally among the tries in flight (processor sharing).

    Used only on the event loop's thread, so it needs no lock.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._total = 0.0  # integral of dt / in_flight over time with something in flight
        self._last = time.perf_counter()

    def _advance(self) -> float:
        now = time.perf_counter()
        if self.in_flight:
            self._total += (now - self._last) / self.in_flight
        self._last = now
        return self._total

    def start(self) -> float:
        mark = self._advance()
        self.in_flight += 1
        return mark

    def stop(self, mark: float) -> float:
        """The share of busy time of the try started at `mark`."""
        share = self._advance() - mark
        self.in_flight -= 1
        return share


class HTTPBackend:
    """Base of HTTP backends: bounded concurrency, retries with backoff, one event loop of its own."""

    remote: ClassVar[bool] = True  # the compute happens on the server: local energy counters do not apply

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
        probe_timeout: float = 5.0,
        probe_retries: int = 1,
        status_interval: float = 10.0,
        on_status: Callable[[str], None] | None = None,
        server_watts: float | None = None,
    ):
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0 or probe_retries < 0:
            raise BackendError(f"max_retries and probe_retries must be 0 or more, got {max_retries}, {probe_retries}")
        if timeout <= 0 or probe_timeout <= 0 or status_interval <= 0:
            raise BackendError(f"timeouts must be positive, got timeout={timeout}, probe_timeout={probe_timeout}")
        if server_watts is not None and not server_watts > 0:
            raise BackendError(f"server_watts must be a positive number of watts, got {server_watts!r}")
        self.base_url = base_url.rstrip("/")
        self.endpoint = self.base_url  # how the server was reached: for the books, never for cache keys
        self.headers = dict(headers or {})
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after  # a server asking for longer than this is not waited on longer
        self.probe_timeout = probe_timeout
        self.probe_retries = probe_retries
        self.status_interval = status_interval  # a try silent this long gets a status line, and again each interval
        self.on_status = on_status  # None: status lines go to logging.warning, at most one per interval
        self.server_watts = None if server_watts is None else float(server_watts)  # user-given; None: unknown
        self._jitter = random.Random()  # timing only: nothing measured depends on it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._clock = BusyClock()
        self._start_lock = threading.Lock()
        self._waste: list[Waste] = []
        self._waste_lock = threading.Lock()
        self._last_logged = float("-inf")

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

    def run_delivering(self, make: Callable[[Callable[[Any], None]], Coroutine[Any, Any, T]], deliver: Callable[[Any], None]) -> T:
        """Run `make(emit)` on the loop; each item it emits is passed to `deliver` on the calling thread at once.

        Items emitted before the coroutine fails are all delivered before its error is raised here. If
        `deliver` raises (or the caller is interrupted), the coroutine is cancelled and given a moment
        to book what it cancelled before the error propagates.
        """
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = object()

        async def wrapped() -> T:
            try:
                return await make(items.put)
            finally:
                items.put(done)

        future = asyncio.run_coroutine_threadsafe(wrapped(), self._ensure_loop())
        try:
            while (item := items.get()) is not done:
                deliver(item)
        except BaseException:
            future.cancel()
            deadline = time.monotonic() + 10
            try:
                while items.get(timeout=max(0.0, deadline - time.monotonic())) is not done:
                    pass  # the caller failed: what finishes now is not delivered
            except queue.Empty:
                pass
            raise
        return future.result()

    async def _http(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # created on the loop's own thread, so both belong to that loop
        if self._client is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.AsyncClient(headers=self.headers, timeout=httpx.Timeout(self.timeout), limits=limits)
            self._semaphore = asyncio.Semaphore(self.concurrency)
        assert self._semaphore is not None
        return self._client, self._semaphore

    # -- status and waste ---------------------------------------------------------------------
    def _status(self, line: str) -> None:
        if self.on_status is not None:
            self.on_status(line)
            return
        now = time.monotonic()
        if now - self._last_logged >= self.status_interval:
            self._last_logged = now
            log.warning("%s", line)

    def book_waste(self, waste: list[Waste]) -> None:
        with self._waste_lock:
            self._waste.extend(waste)

    def take_waste(self) -> list[Waste]:
        """Work the server did (or may have done) that produced no sample, since the last call."""
        with self._waste_lock:
            waste, self._waste = self._waste, []
        return waste

    # -- requests -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff (AWS architecture blog, 2015); Retry-After wins when given."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self._jitter.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))

    def _time_left(self, attempt: int, attempts: int, try_started: float, timeout: float) -> float:
        """At most how long until this request gives up: this try's timeout, then the later tries and backoffs."""
        later = range(attempt + 1, attempts)
        return (
            max(0.0, try_started + timeout - time.perf_counter())
            + len(later) * timeout
            + sum(min(self.max_backoff, self.backoff * 2 ** (a - 1)) for a in later)
        )

    async def _send(self, client: httpx.AsyncClient, method: str, url: str, payload: dict[str, Any] | None,
                    timeout: float, attempt: int, attempts: int) -> httpx.Response:
        """One try, cut off at `timeout` whole (a server trickling bytes cannot hold it longer); while it
        stays silent, a status line every `status_interval` counts down to giving up."""
        started = time.perf_counter()
        task = asyncio.ensure_future(client.request(method, url, json=payload, timeout=timeout))
        try:
            while True:
                left = started + timeout - time.perf_counter()
                finished, _ = await asyncio.wait({task}, timeout=max(0.0, min(self.status_interval, left)))
                if finished:
                    return task.result()
                if left <= self.status_interval:
                    raise httpx.ReadTimeout(f"no answer within {timeout:g} s")
                self._status(f"no answer from {url} yet: try {attempt + 1}/{attempts}, "
                             f"giving up in {self._time_left(attempt, attempts, started, timeout):.0f} s")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def request_json(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        exchange: Exchange | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Send one request with retries; return the decoded JSON body or raise BackendError.

        `exchange`, if given, records the tries as they happen (also when this raises or is cancelled).
        """
        client, semaphore = await self._http()
        url = self.url(path)
        ex = exchange if exchange is not None else Exchange(url)
        timeout = self.timeout if timeout is None else timeout
        attempts = (self.max_retries if retries is None else retries) + 1
        last_error, kind = "", "cannot reach"
        for attempt in range(attempts):
            retry_after: float | None = None
            queued = time.perf_counter()
            async with semaphore:
                sent = time.perf_counter()
                ex.wait_seconds += sent - queued
                mark = self._clock.start()
                failure: str | None = None  # set when this try is waste
                try:
                    response = await self._send(client, method, url, payload, timeout, attempt, attempts)
                except asyncio.CancelledError:
                    failure = "cancelled"
                    raise
                except httpx.TransportError as e:  # connect errors, timeouts, dropped connections
                    last_error = _describe(e)
                    if isinstance(e, UNREACHED):
                        kind = "cannot reach"
                    else:
                        failure = _waste_reason(e)
                        kind = f"no answer within {timeout:g} s from" if isinstance(e, httpx.TimeoutException) else "lost the connection to"
                    response = None
                finally:
                    share = self._clock.stop(mark)
                    round_trip = time.perf_counter() - sent
                    if failure is not None:
                        ex.failed.append(FailedTry(failure, share))
                if response is not None:
                    status = response.status_code
                    if status < 400:
                        ex.seconds, ex.answered = share, True
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
                    if status not in NOT_TAKEN_STATUS:
                        ex.failed.append(FailedTry(f"HTTP {status}", share))
                    kind = "server kept failing at"
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                ex.wait_seconds += round_trip
            if attempt + 1 < attempts:
                delay = self._delay(attempt, retry_after)
                self._status(f"{method} {url} failed ({last_error[:80]}); try {attempt + 2}/{attempts} in {delay:.1f} s")
                slept = time.perf_counter()
                try:
                    await asyncio.sleep(delay)
                finally:
                    ex.wait_seconds += time.perf_counter() - slept
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
