"""A lean HTTP/1.1 client on asyncio protocols: what oomlab's HTTP backends send their requests with.

Why not httpx: a sweep against vLLM or SGLang sends thousands of small requests a second, and
httpx + httpcore spent about 2 ms of CPU on each (py-spy: connection-pool scans, anyio and sniffio
lookups, header and URL models), which held one sweep process to a few hundred samples a second and
kept a 256-slot server from ever seeing 256 requests at once. An OpenAI-compatible server needs
little of HTTP: keep-alive connections per origin, Content-Length and chunked bodies, a body read
line by line for server-sent events, and TLS for hosted APIs. That is all this does.

Proxies are not supported: a URL that the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY)
would send through a proxy is refused with a clear error rather than connected to directly behind
the user's back; loopback addresses never go through a proxy.

Errors say whether the request may have reached the server, which decides waste against wait in
the books (`oomlab.backends.http`): `ConnectError` never reached it (refused, unresolvable, TLS
failed, connect timed out), `ConnectionDropped` broke after the request went out or got an answer
that is not HTTP. Deadlines are the caller's: `_Connection.interrupt` makes the wait in progress raise its
`ReadTimeout` (no task is cancelled, so no cancellation can leak past the try).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import json
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from oomlab.errors import ConfigError

__all__ = ["Client", "ConnectError", "ConnectTimeout", "ConnectionDropped", "ReadTimeout", "Response", "WireError"]

MAX_HEAD = 64 * 1024  # a response head longer than this is not from an OpenAI-compatible server
NO_BODY_STATUS = frozenset({204, 304})


class WireError(Exception):
    """A try that gave no HTTP answer."""


class ConnectError(WireError):
    """The request never reached the server: connection refused, name not resolved, TLS handshake failed."""


class ConnectTimeout(ConnectError):
    """No connection within the try's deadline."""


class ConnectionDropped(WireError):
    """The connection closed or broke after the request went out, or the answer was not HTTP."""


class ReadTimeout(WireError):
    """The server did not answer (or went silent mid-answer) within the try's deadline."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    host_header: str


def _split(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    origin = Origin(scheme, host, port, shown if port == default else f"{shown}:{port}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_no_proxy(url: str) -> None:
    """Refuse a URL the environment would send through a proxy (this client connects directly only)."""
    origin, _ = _split(url)
    if _is_loopback(origin.host):
        return
    proxies = urllib.request.getproxies()
    proxy = proxies.get(origin.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(origin.host):
        raise ConfigError(f"{url} would go through the proxy {proxy} (from the environment), and oomlab's HTTP "
                          f"client connects directly only: add {origin.host} to NO_PROXY, or unset the proxy")


class _Connection(asyncio.Protocol):
    """One keep-alive TCP (or TLS) connection: bytes received so far, and whether it has ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.ended = False  # EOF or connection lost: nothing more will arrive
        self.error: BaseException | None = None
        self.failure: BaseException | None = None  # set by `interrupt`: what the current wait raises
        self.last_data = 0.0  # time.perf_counter() of the latest bytes (silence is measured from here)
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.last_data = time.perf_counter()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def interrupt(self, failure: BaseException) -> None:
        """Make the wait in progress (or the next one) raise `failure`: the caller's deadline, or its endpoint gone."""
        self.failure = failure
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        self.close()

    async def more(self, what: str) -> None:
        """Wait for more bytes; ConnectionDropped if the connection has ended (`what` says what was awaited)."""
        if self.failure is not None:
            raise self.failure
        if self.ended:
            reason = f": {self.error}" if self.error is not None else ""
            raise ConnectionDropped(f"server closed the connection {what}{reason}")
        self._waiter = self.loop.create_future()
        await self._waiter

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.ended = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An HTTP answer whose head has arrived; its body is read with `read()` or `lines()`."""

    def __init__(self, client: Client, origin: Origin, conn: _Connection, status: int, headers: dict[str, str],
                 keep_alive: bool, no_body: bool):
        self.status_code = status
        self.headers = headers  # lower-case names
        self.content = b""
        self._client, self._origin, self._conn = client, origin, conn
        self._keep_alive = keep_alive
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._length: int | None = None
        if no_body:
            self._length = 0
        elif not self._chunked and length is not None:
            try:
                self._length = int(length)
            except ValueError:
                conn.close()
                raise ConnectionDropped(f"the server sent a bad Content-Length: {length!r}") from None
        if self._length is None and not self._chunked:
            self._keep_alive = False  # the body ends when the connection does
        self._done = self._length == 0
        if self._done:
            self._release()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def _release(self) -> None:
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        idle = self._client._idle.setdefault(self._origin, [])
        if self._keep_alive and not conn.ended and not conn.buf and len(idle) < self._client.max_idle:
            idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Give up on the rest of the body (the connection cannot be reused)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    async def read(self) -> bytes:
        """The whole body."""
        if self._done:
            return self.content
        conn = self._conn
        try:
            if self._length is not None:
                while len(conn.buf) < self._length:
                    await conn.more("mid-body")
                self.content = bytes(conn.buf[: self._length])
                del conn.buf[: self._length]
            else:
                self.content = b"".join([piece async for piece in self._pieces()])
        except BaseException:
            self.close()
            raise
        self._done = True
        self._release()
        return self.content

    async def _pieces(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (chunked, fixed-length or until the connection ends)."""
        conn = self._conn
        if self._chunked:
            while True:
                while (end := conn.buf.find(b"\r\n")) < 0:
                    if len(conn.buf) > MAX_HEAD:
                        raise ConnectionDropped("a chunk-size line too long")
                    await conn.more("mid-body")
                line = bytes(conn.buf[:end]).split(b";", 1)[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ConnectionDropped(f"bad chunk size {line[:40]!r}") from None
                del conn.buf[: end + 2]
                if size == 0:  # trailers, then an empty line
                    while True:
                        while (end := conn.buf.find(b"\r\n")) < 0:
                            await conn.more("mid-trailer")
                        del conn.buf[: end + 2]
                        if end == 0:
                            return
                while len(conn.buf) < size + 2:
                    await conn.more("mid-chunk")
                yield bytes(conn.buf[:size])
                del conn.buf[: size + 2]
        elif self._length is not None:
            left = self._length
            while left:
                if not conn.buf:
                    await conn.more("mid-body")
                piece = bytes(conn.buf[:left])
                del conn.buf[: len(piece)]
                left -= len(piece)
                yield piece
        else:
            while True:
                if conn.buf:
                    piece = bytes(conn.buf)
                    conn.buf.clear()
                    yield piece
                if conn.ended:
                    return
                await conn.more("")  # never raises here: `ended` is checked above

    async def lines(self) -> AsyncIterator[str]:
        """The body as UTF-8 lines (split at CRLF, LF or CR, endings removed), each as soon as it is complete."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        try:
            async for piece in self._pieces():
                pending += decoder.decode(piece)
                if pending.endswith("\r"):  # may be half of a CRLF
                    text, pending = pending[:-1], "\r"
                else:
                    text, pending = pending, ""
                parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                pending = parts.pop() + pending
                for line in parts:
                    yield line
            pending += decoder.decode(b"", final=True)
            if pending.rstrip("\r"):
                yield pending.rstrip("\r")
        except BaseException:
            self.close()
            raise
        self._done = True
        self._release()


class Client:
    """Keep-alive connections per origin, opened on demand (the caller bounds how many requests are in flight)."""

    def __init__(self, headers: dict[str, str] | None = None, max_idle: int = 1024):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, tuple[Origin, str]] = {}
        self._header_lines = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._heads: dict[Origin, bytes] = {}
        self._ssl: ssl.SSLContext | None = None
        self.max_idle = max_idle

    def _target(self, url: str) -> tuple[Origin, str]:
        known = self._targets.get(url)
        if known is None:
            if len(self._targets) > 4096:
                self._targets.clear()
            known = self._targets[url] = _split(url)
        return known

    async def _connect(self, origin: Origin) -> _Connection:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        context = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await loop.create_connection(lambda: _Connection(loop), origin.host, origin.port, ssl=context,
                                                   server_hostname=origin.host if context else None)
        except ssl.SSLError as e:  # before OSError, of which it is a kind
            raise ConnectError(f"TLS with {origin.host}:{origin.port} failed: {e}") from e
        except OSError as e:
            raise ConnectError(f"{origin.host}:{origin.port}: {e.strerror or e}") from e
        return conn

    async def connection(self, url: str, timeout: float | None = None) -> _Connection:
        """A connection to `url`'s origin: an idle keep-alive one, else a new one within `timeout` (ConnectError
        if none can be made)."""
        origin, _ = self._target(url)
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.ended and not conn.buf:  # bytes on an idle connection: the server is confused, do not reuse
                return conn
            conn.close()
        if timeout is None:
            return await self._connect(origin)
        try:
            return await asyncio.wait_for(self._connect(origin), timeout)
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {origin.host}:{origin.port} within {timeout:g} s") from None

    async def send(self, conn: _Connection, method: str, url: str, json_body: Any = None, *,
                   stream: bool = False) -> Response:
        """Send one request on `conn`; return once the head of the answer is in (and, unless `stream`, its body)."""
        origin, target = self._target(url)
        head = self._heads.get(origin)
        if head is None:
            head = self._heads[origin] = f"Host: {origin.host_header}\r\nAccept: */*\r\n{self._header_lines}".encode()
        if json_body is None:
            message = b"".join((f"{method} {target} HTTP/1.1\r\n".encode(), head, b"\r\n"))
        else:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            message = b"".join((f"{method} {target} HTTP/1.1\r\n".encode(), head,
                                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode(), body))
        try:
            conn.send(message)
            response = await self._read_head(origin, conn, method)
            if not stream:
                await response.read()
            return response
        except BaseException:
            conn.close()
            raise

    async def request(self, method: str, url: str, json_body: Any = None, *, stream: bool = False) -> Response:
        """`connection` then `send`."""
        return await self.send(await self.connection(url), method, url, json_body, stream=stream)

    async def _read_head(self, origin: Origin, conn: _Connection, method: str) -> Response:
        while True:
            while (end := conn.buf.find(b"\r\n\r\n")) < 0:
                if len(conn.buf) > MAX_HEAD:
                    raise ConnectionDropped("the response head is too long")
                await conn.more("without a response" if not conn.buf else "mid-head")
            head = bytes(conn.buf[:end]).decode("latin-1")
            del conn.buf[: end + 4]
            status_line, *header_lines = head.split("\r\n")
            version, _, rest = status_line.partition(" ")
            try:
                status = int(rest[:3])
            except ValueError:
                raise ConnectionDropped(f"not an HTTP answer: {status_line[:80]!r}") from None
            if not version.startswith("HTTP/1."):
                raise ConnectionDropped(f"not an HTTP/1 answer: {status_line[:80]!r}")
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
            no_body = method == "HEAD" or status in NO_BODY_STATUS
            return Response(self, origin, conn, status, headers, keep_alive, no_body)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
