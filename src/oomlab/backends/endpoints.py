"""Many endpoints behind one HTTP backend: least-loaded first, a bound per endpoint, dead ones set aside.

A vLLM data-parallel deployment with external load balancing, or several SGLang servers, is N
base URLs serving one model. The pool hands each try to the live endpoint with the lowest load
(requests in flight over its bound; ties rotate), so no server idles while another queues, and no
server gets more than its own `concurrency`. One refinement, for prefix caches: a try for a prompt
goes back to the endpoint that last took that prompt (which holds its prefix, so n samples cost
one prompt evaluation, not n) while that endpoint has a free slot and at most `slack` more in
flight than the least-loaded one (a quarter of the bound, at least 1); when every endpoint is
full, whichever frees a slot first takes the next try, as before. An endpoint whose tries fail `max_failures` times in a
row at the server's end (connect errors, dropped connections, timeouts, 5xx) is marked dead: its
tries still in flight are abandoned and, like every later request, go to the others. A success
resets the count, so a server that fails now and then stays in. With one endpoint nothing is ever
marked dead: there is nowhere else to go, and a request's own bounded retries decide.

All state changes happen on the backend's event loop thread; the counters other threads read
(`in_flight`, `peak_in_flight`, `dead`) are plain ints and lists replaced under a lock, so a
progress bar or the sweep may read them at any time.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections import OrderedDict
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oomlab.errors import BackendError, ConfigError


def parse_base_urls(base_url: str | Sequence[str]) -> list[str]:
    """The endpoint URLs in `base_url`: one URL, a list of them, or '@FILE' (one URL per line, '#' comments).

    Each is given without its trailing '/'. A URL given twice is refused: it would double one
    server's concurrency bound without anyone noticing.
    """
    items = [base_url] if isinstance(base_url, str | os.PathLike) else list(base_url)
    urls: list[str] = []
    for item in items:
        text = str(item).strip()
        if text.startswith("@"):
            urls.extend(_read_url_file(Path(text[1:]).expanduser()))
        elif text:
            urls.append(text)
    if not urls:
        raise ConfigError("no endpoint given: pass --base-url URL (several times for several endpoints, or @FILE)")
    seen: set[str] = set()
    out: list[str] = []
    for url in urls:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint {url!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)")
        if url in seen:
            raise ConfigError(f"endpoint {url} is given twice")
        seen.add(url)
        out.append(url)
    return out


def _read_url_file(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read the endpoint file {path}: {e.strerror or e}") from e
    urls = [line.split("#", 1)[0].strip() for line in lines]
    urls = [u for u in urls if u]
    if not urls:
        raise ConfigError(f"the endpoint file {path} lists no URLs (one per line)")
    return urls


class BusyClock:
    """Splits the time any try is in flight at one server equally among the tries in flight there.

    Processor sharing per server: each endpoint has its own clock, so N servers working at once are
    charged N times the wall time, and one server batching eight requests is charged once.
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


@dataclass(eq=False)
class Endpoint:
    """One server: where it is, its bound, what it serves, and how it is doing."""

    url: str
    concurrency: int
    index: int = 0  # its place in the pool (for rotating ties)
    model: str | None = None  # the name it serves the model under (payloads use it)
    in_flight: int = 0  # tries holding one of its slots
    answered: int = 0  # tries it answered with 2xx/3xx (startup probes not counted)
    failures: int = 0  # server-side failures since its last success
    last_error: str = ""
    dead: bool = False
    clock: BusyClock = field(default_factory=BusyClock)
    died: asyncio.Future[None] | None = None  # set when marked dead, so tries in flight there stop waiting

    def load(self) -> float:
        return self.in_flight / self.concurrency


class EndpointDied(Exception):
    """Raised inside a try whose endpoint was marked dead while it was in flight (it is retried elsewhere)."""


class EndpointPool:
    """The endpoints of one backend and the choice among them (see the module docstring)."""

    HOMES = 4096  # prompts whose endpoint is remembered (the most recent ones)

    def __init__(self, urls: list[str], concurrency: int, max_failures: int = 3, affinity: bool = True):
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, got {concurrency}")
        if max_failures < 1:
            raise BackendError(f"endpoint_failures must be at least 1, got {max_failures}")
        self.endpoints = [Endpoint(url, concurrency, index=i) for i, url in enumerate(urls)]
        self.max_failures = max_failures
        self.in_flight = 0
        self.peak_in_flight = 0
        self._dead: list[tuple[str, str]] = []
        self._lock = threading.Lock()  # for readers on other threads
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._turn = 0  # rotates ties, so idle endpoints share the first requests
        self.slack = max(1, concurrency // 4) if affinity else -1  # how much busier a prompt's home may be
        self._homes: OrderedDict[Any, Endpoint] = OrderedDict()  # prompt key -> the endpoint that last took it

    # -- what other threads may read --------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """Requests this pool may have in flight now: the sum of the live endpoints' bounds."""
        return sum(e.concurrency for e in self.endpoints if not e.dead)

    @property
    def dead(self) -> list[tuple[str, str]]:
        """(url, last error) of each endpoint marked dead, in the order they died."""
        with self._lock:
            return list(self._dead)

    def stats(self) -> list[dict[str, Any]]:
        """A snapshot per endpoint, for progress bars and reports."""
        with self._lock:
            return [{"url": e.url, "model": e.model, "concurrency": e.concurrency, "in_flight": e.in_flight,
                     "answered": e.answered, "dead": e.dead, "last_error": e.last_error} for e in self.endpoints]

    # -- taking and giving back a slot (on the loop) ----------------------------------------------
    def _bind(self, ep: Endpoint) -> asyncio.Future[None]:
        if ep.died is None:
            ep.died = asyncio.get_running_loop().create_future()
            if ep.dead:
                ep.died.set_result(None)
        return ep.died

    def _pick(self, avoid: Endpoint | None, pin: Endpoint | None, key: Any) -> Endpoint | None:
        if pin is not None:
            return pin if pin.in_flight < pin.concurrency else None
        if len(self.endpoints) == 1:  # nothing to choose (and no prefix to keep anywhere)
            ep = self.endpoints[0]
            if ep.dead:
                raise self.all_dead_error()
            return ep if ep.in_flight < ep.concurrency else None
        live = [e for e in self.endpoints if not e.dead]
        if not live:
            raise self.all_dead_error()
        free = [e for e in live if e.in_flight < e.concurrency]
        if not free:
            return None
        n, turn = len(self.endpoints), self._turn
        ep = min(free, key=lambda e: (e is avoid, e.load(), (e.index - turn) % n))
        home = self._homes.get(key) if key is not None else None
        if (home is not None and home is not ep and home is not avoid and home in free
                and home.in_flight <= ep.in_flight + self.slack):
            ep = home  # it holds this prompt's prefix, and is not much busier
        else:
            self._turn = (ep.index + 1) % n
        if key is not None:
            self._homes[key] = ep
            self._homes.move_to_end(key)
            if len(self._homes) > self.HOMES:
                self._homes.popitem(last=False)
        return ep

    async def acquire(self, avoid: Endpoint | None = None, pin: Endpoint | None = None, key: Any = None) -> Endpoint:
        """A slot on the least-loaded live endpoint (not `avoid`, if another has room), or on `pin`.

        `key` (a prompt) may send it to that prompt's last endpoint instead (see the module docstring).
        Waits while every live endpoint is at its bound; raises BackendError once none is alive.
        """
        while True:
            ep = self._pick(avoid, pin, key)
            if ep is not None:
                self._bind(ep)
                with self._lock:
                    ep.in_flight += 1
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                return ep
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)  # a cancelled one stays queued, done, and `_wake` skips it: O(1)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # the slot it was woken for goes to the next in line
                raise

    def release(self, ep: Endpoint) -> None:
        with self._lock:
            ep.in_flight -= 1
            self.in_flight -= 1
        self._wake()

    def _wake(self, everyone: bool = False) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    # -- health -----------------------------------------------------------------------------------
    def succeeded(self, ep: Endpoint, probe: bool = False) -> None:
        with self._lock:
            ep.answered += 0 if probe else 1
            ep.failures = 0

    def failed(self, ep: Endpoint, error: str) -> bool:
        """Count a server-side failure at `ep`; True if this marked it dead."""
        with self._lock:
            ep.failures += 1
            ep.last_error = error
            if ep.dead or len(self.endpoints) == 1 or ep.failures < self.max_failures:
                return False
            ep.dead = True
            self._dead.append((ep.url, error))
        if ep.died is not None and not ep.died.done():
            ep.died.set_result(None)  # tries in flight there give up now
        self._wake(everyone=True)  # waiters re-choose, or learn that none is left
        return True

    def all_dead_error(self) -> BackendError:
        dead = "; ".join(f"{url} ({error[:120]})" for url, error in self.dead)
        return BackendError(f"all {len(self.endpoints)} endpoints failed and were set aside: {dead}")
