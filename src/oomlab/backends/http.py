"""The shared HTTP base for backends that talk to servers: one place for retries, timing and waste.

A lean asyncio HTTP/1.1 client (`oomlab.backends.wire`) runs on a private event loop in a daemon thread, so the synchronous
`generate` API works from plain code, from several threads at once, and from inside a running
event loop alike. `base_url` may name several endpoints serving one model (`oomlab.backends.endpoints`):
each try goes to the least-loaded live one, with at most `concurrency` in flight per endpoint. A
request that fails with a connect error, a timeout, a dropped connection, HTTP 408, 429 or a 5xx is
retried with exponential backoff and full jitter (honouring Retry-After), at most `max_retries`
times, and then becomes a `BackendError` that names the URL and the last error. A try lost because
its endpoint was set aside as dead is retried on another at once and does not count as a retry.

The books, per logical request (an `Exchange`):
- `seconds`: the answering try's share of the time the server was busy with this backend's tries.
  Each moment some tries are in flight is split equally among them (processor sharing), so the
  shares of all requests add up to the time the server had work from us: a server that batches
  eight requests into one second is charged one second, not eight, and one that queues them is not
  charged for the queue eight times over. Each endpoint is a server of its own, with its own clock.
  Waiting for a free slot or in backoff is not in flight.
- `wait_seconds`: queueing for a slot + backoff sleeps + the round trips of tries that failed.
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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from oomlab.backends import wire
from oomlab.backends.base import Waste
from oomlab.backends.endpoints import BusyClock, Endpoint, EndpointDied, EndpointPool, parse_base_urls
from oomlab.errors import BackendError

__all__ = ["BusyClock", "Exchange", "FailedTry", "HTTPBackend", "retry_after_seconds"]

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
NOT_TAKEN_STATUS = frozenset({408, 429})  # retried, but the server says it did not work on the request
Payload = dict[str, Any] | Callable[[Endpoint], dict[str, Any]] | None
Consume = Callable[[wire.Response], Awaitable[T]]


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


def _json_object(response: wire.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as e:
        raise BackendError(f"{url} answered HTTP {response.status_code} with a body that is not JSON: "
                           f"{response.text[:200]!r}") from e
    if not isinstance(body, dict):
        raise BackendError(f"{url} answered with JSON that is not an object: {response.text[:200]!r}")
    return body


@dataclass
class FailedTry:
    """A try the server may have computed that gave no result (waste): why, and its share of busy time."""

    reason: str
    seconds: float
    url: str = ""  # where the try went (one request's tries may go to several endpoints)


@dataclass
class Exchange:
    """One logical request's history across its tries, filled in by `HTTPBackend.request` as it goes."""

    url: str  # the URL of its latest try (the one that answered, if any)
    seconds: float = 0.0  # the answering try's share of the server's busy time
    wait_seconds: float = 0.0  # slot queueing + backoff sleeps + failed tries' round trips
    failed: list[FailedTry] = field(default_factory=list)
    answered: bool = False  # a try came back with 2xx/3xx (the caller may still find the answer unusable)


class HTTPBackend:
    """Base of HTTP backends: one or many endpoints, bounded concurrency, retries, one event loop of its own."""

    remote: ClassVar[bool] = True  # the compute happens on the server: local energy counters do not apply

    def __init__(
        self,
        base_url: str | Sequence[str],
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
        endpoint_failures: int = 3,
        prefix_affinity: bool = True,
    ):
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0 or probe_retries < 0:
            raise BackendError(f"max_retries and probe_retries must be 0 or more, got {max_retries}, {probe_retries}")
        if timeout <= 0 or probe_timeout <= 0 or status_interval <= 0:
            raise BackendError(f"timeouts must be positive, got timeout={timeout}, probe_timeout={probe_timeout}")
        if server_watts is not None and not server_watts > 0:
            raise BackendError(f"server_watts must be a positive number of watts, got {server_watts!r}")
        urls = parse_base_urls(base_url)
        for url in urls:
            wire.check_no_proxy(url)
        self.pool = EndpointPool(urls, concurrency, endpoint_failures, prefix_affinity)
        self.endpoints = [e.url for e in self.pool.endpoints]
        self.base_url = self.endpoints[0]
        self.endpoint = ", ".join(self.endpoints)  # how the servers were reached: for the books, never for cache keys
        self.headers = dict(headers or {})
        self.endpoint_concurrency = concurrency  # the bound per endpoint
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
        self._wire: wire.Client | None = None
        self._start_lock = threading.Lock()
        self._waste: list[Waste] = []
        self._waste_lock = threading.Lock()
        self._last_logged = float("-inf")

    # -- many endpoints: what the sweep and a progress bar read (from any thread) ----------------
    @property
    def concurrency(self) -> int:
        """Requests this backend may have in flight: `concurrency` per live endpoint, summed."""
        return self.pool.concurrency

    @property
    def in_flight(self) -> int:
        """Tries at the servers right now, over all endpoints."""
        return self.pool.in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most tries ever at the servers at once."""
        return self.pool.peak_in_flight

    @property
    def dead_endpoints(self) -> list[tuple[str, str]]:
        """(url, last error) of each endpoint set aside as dead, in the order they died."""
        return self.pool.dead

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: url, model, concurrency, in_flight, answered, dead, last_error."""
        return self.pool.stats()

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

    def _client(self) -> wire.Client:
        """The connection pool, made on first use (on the loop's own thread)."""
        if self._wire is None:
            self._wire = wire.Client(self.headers, max_idle=self.endpoint_concurrency)
        return self._wire

    # -- status and waste ---------------------------------------------------------------------
    def _status(self, line: str) -> None:
        if self.on_status is not None:
            self.on_status(line)
            return
        now = time.monotonic()
        if now - self._last_logged >= self.status_interval:
            self._last_logged = now
            log.warning("%s", line)

    def _announce(self, line: str) -> None:
        """A line that must not be rate-limited away (an endpoint set aside)."""
        if self.on_status is not None:
            self.on_status(line)
        else:
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
    def url(self, path: str, endpoint: Endpoint | None = None) -> str:
        """`path` at `endpoint` (default: the first one)."""
        return f"{endpoint.url if endpoint is not None else self.base_url}/{path.lstrip('/')}"

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

    async def _try(self, method: str, url: str, body: dict[str, Any] | None, ep: Endpoint, timeout: float,
                   attempt: int, attempts: int, consume: Consume[T] | None, watch: bool) -> T | wire.Response:
        """One try, given up after `timeout` (whole; with `consume`, of silence); while it stays silent a status
        line every `status_interval` counts down to giving up; with `watch`, abandoned (EndpointDied) as soon
        as its endpoint is set aside. Returns `consume`'s result, or the answer read whole (a status >= 400
        is always read whole). `consume` must await nothing but the response it is given."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        failures: list[BaseException] = []
        conn: Any = None

        def interrupt(failure: BaseException) -> None:
            if not failures:
                failures.append(failure)
                if conn is not None:
                    conn.interrupt(failure)

        def tick() -> None:
            nonlocal handle
            now = time.perf_counter()
            since = max(started, conn.last_data) if consume is not None and conn is not None else started
            left = since + timeout - now
            if left <= 0:
                interrupt(wire.ReadTimeout(f"no answer within {timeout:g} s"))
                return
            quiet = now - since
            if quiet >= 0.999 * self.status_interval:
                self._status(f"no answer from {url} yet: try {attempt + 1}/{attempts}, "
                             f"giving up in {self._time_left(attempt, attempts, since, timeout):.0f} s")
                quiet = 0.0
            handle = loop.call_later(min(self.status_interval - quiet, left), tick)

        handle = loop.call_later(min(self.status_interval, timeout), tick)
        died = ep.died if watch else None
        on_died = (lambda _: interrupt(EndpointDied(url))) if died is not None else None
        try:
            if died is not None:
                if died.done():
                    raise EndpointDied(url)
                died.add_done_callback(on_died)
            client = self._client()
            conn = await client.connection(url, timeout)
            if failures:  # the deadline or the endpoint's end came while connecting: nothing was sent
                conn.close()
                if isinstance(failures[0], wire.ReadTimeout):
                    raise wire.ConnectTimeout(f"no connection within {timeout:g} s")
                raise failures[0]
            response = await client.send(conn, method, url, body, stream=consume is not None)
            if consume is None or response.status_code >= 400:
                await response.read()
                return response
            return await consume(response)
        finally:
            handle.cancel()
            if died is not None:
                died.remove_done_callback(on_died)

    async def request_json(self, method: str, path: str, payload: Payload = None, **options: Any) -> dict[str, Any]:
        """Send one request with retries; return the decoded JSON object or raise BackendError (see `request`)."""
        return await self.request(method, path, payload, **options)

    async def request(
        self,
        method: str,
        path: str,
        payload: Payload = None,
        *,
        exchange: Exchange | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        endpoint: Endpoint | None = None,
        affinity: Any = None,
        consume: Consume[T] | None = None,
        handed_on: Callable[[], int] | None = None,
    ) -> Any:
        """Send one request with retries and return its answer, or raise BackendError.

        Each try goes to the least-loaded live endpoint, a retry to another one if any has room.
        `payload` may be a function of the endpoint (each may serve the model under its own name);
        `endpoint` pins every try to one endpoint (the startup probe of each); `affinity` (e.g. the
        prompt) keeps requests with the same one on one endpoint while it is not much busier than
        the least-loaded, for its prefix cache. `exchange`, if given, records the tries as they
        happen (also when this raises or is cancelled).

        Without `consume` the answer is the body's JSON object. With it, the answer's body is left
        unread for `consume(response)`, whose result is returned: a stream, given up only after
        `timeout` of silence. `handed_on()` says how many pieces of a try `consume` has passed on:
        once any has, a failure is final (the caller has seen text a retry might not draw again).
        A ValueError from `consume` is an unusable answer: waste, and not retried.
        """
        pool = self.pool
        ex = exchange if exchange is not None else Exchange(self.url(path, endpoint))
        timeout = self.timeout if timeout is None else timeout
        attempts = (self.max_retries if retries is None else retries) + 1
        last_error, kind = "", "cannot reach"
        counted = tries = 0  # tries that count against `attempts`; all tries
        avoid: Endpoint | None = None
        while True:
            retry_after: float | None = None
            queued = time.perf_counter()
            ep = await pool.acquire(avoid=avoid, pin=endpoint, key=affinity)  # raises once every endpoint is set aside
            tries += 1
            url = self.url(path, ep)
            ex.url = url
            body_out = payload(ep) if callable(payload) else payload
            sent = time.perf_counter()
            ex.wait_seconds += sent - queued
            mark = ep.clock.start()
            failure: str | None = None  # set when this try is waste
            server_fault = False  # a failure that speaks against the endpoint's health
            answer: Any = None
            response: wire.Response | None = None
            consumed = False  # `consume` gave its answer
            try:
                answer = await self._try(method, url, body_out, ep, timeout, counted, attempts, consume, endpoint is None)
                if isinstance(answer, wire.Response):
                    response, answer = answer, None
                else:
                    consumed = True
            except asyncio.CancelledError:
                failure = "cancelled"
                raise
            except EndpointDied:
                failure = "abandoned: endpoint set aside"  # it was sent, so the server may have computed it
                last_error, kind = f"endpoint set aside ({ep.last_error[:100]})", "lost the connection to"
            except wire.WireError as e:  # connect errors, timeouts, dropped connections
                last_error = _describe(e)
                server_fault = True
                if isinstance(e, wire.ConnectError):
                    kind = "cannot reach"
                else:
                    failure = "dropped connection" if isinstance(e, wire.ConnectionDropped) else type(e).__name__
                    kind = f"no answer within {timeout:g} s from" if isinstance(e, wire.ReadTimeout) else "lost the connection to"
            except ValueError as e:
                failure = "unusable answer"
                raise BackendError(f"{url} sent an answer that cannot be used (not JSON): {e}") from e
            finally:
                share = ep.clock.stop(mark)
                round_trip = time.perf_counter() - sent
                pool.release(ep)
                if failure is not None:
                    ex.failed.append(FailedTry(failure, share, url))
            if consumed:
                pool.succeeded(ep, probe=endpoint is not None)
                ex.seconds, ex.answered = share, True
                return answer
            if response is not None:
                status = response.status_code
                if status < 400:
                    pool.succeeded(ep, probe=endpoint is not None)
                    ex.seconds, ex.answered = share, True
                    return _json_object(response, url)
                last_error = f"HTTP {status}: {response.text[:300]}"
                if status not in RETRY_STATUS and status < 500:
                    hint = " (check --api-key)" if status in (401, 403) else ""
                    raise BackendError(f"{method} {url} was refused{hint}: {last_error}")
                if status not in NOT_TAKEN_STATUS:
                    ex.failed.append(FailedTry(f"HTTP {status}", share, url))
                    server_fault = True
                kind = "server kept failing at"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            ex.wait_seconds += round_trip
            if server_fault and pool.failed(ep, last_error):
                live = len(self.endpoints) - len(pool.dead)
                rest = "none is left" if not live else f"{live} endpoint{'s carry' if live != 1 else ' carries'} on"
                self._announce(f"endpoint {ep.url} set aside after {pool.max_failures} failures in a row "
                               f"({last_error[:80]}); {rest}")
            if handed_on is not None and (n := handed_on()):
                raise BackendError(f"the stream from {url} broke after {n} piece{'s' if n != 1 else ''}: {last_error}")
            lost = ep.dead and endpoint is None  # its endpoint was set aside: retried elsewhere, not counted
            if not lost:
                counted += 1
            if counted >= attempts:
                raise BackendError(f"{kind} {url} after {tries} attempt{'s' if tries != 1 else ''}: {last_error}")
            avoid = ep
            if lost:
                continue  # straight to another endpoint, no backoff: this one is gone, not busy
            delay = self._delay(counted - 1, retry_after)
            self._status(f"{method} {url} failed ({last_error[:80]}); try {counted + 1}/{attempts} in {delay:.1f} s")
            slept = time.perf_counter()
            try:
                await asyncio.sleep(delay)
            finally:
                ex.wait_seconds += time.perf_counter() - slept

    def close(self) -> None:
        """Close the HTTP client and stop the private event loop."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return

        async def shutdown() -> None:
            client, self._wire = self._wire, None
            if client is not None:
                await client.aclose()

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
