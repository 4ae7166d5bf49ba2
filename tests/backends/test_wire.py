"""The lean HTTP/1.1 client against raw-socket servers that send exactly the bytes each test needs."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oomlab.backends import wire
from oomlab.backends.openai import OpenAIBackend
from oomlab.errors import ConfigError

Reply = Callable[[socket.socket, bytes, int], bool]  # (connection, request head + body, request number) -> keep open?


class RawServer:
    """A TCP server on 127.0.0.1 whose `reply` writes raw bytes; counts connections and requests."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None):
        self.reply, self.tls = reply, tls
        self.connections = self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                head, _, data = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.requests += 1
                if not self.reply(conn, head + b"\r\n\r\n" + body, self.requests):
                    return

    def close(self) -> None:
        self.sock.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_keep_alive_reuses_one_connection_and_reconnects_after_the_server_closes_it() -> None:
    def reply(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(json.dumps({"n": n, "request": request.decode()}).encode()))
        return n != 2  # the server closes the connection after the second answer

    srv = RawServer(reply)

    async def main() -> list[Any]:
        client = wire.Client({"Authorization": "Bearer k"})
        out = []
        for i in range(4):
            r = await client.request("POST", f"{srv.url}/v1/completions?x=1", {"i": i})
            out.append(r.json())
            await asyncio.sleep(0.05)  # the close reaches the client before the next request
        await client.aclose()
        return out

    answers = run(main())
    srv.close()
    assert [a["n"] for a in answers] == [1, 2, 3, 4] and srv.connections == 2
    head = answers[0]["request"]
    assert head.startswith("POST /v1/completions?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{srv.port}\r\n" in head and "Authorization: Bearer k\r\n" in head
    assert head.endswith('\r\n\r\n{"i":0}') and "Content-Length: 7\r\n" in head


def test_chunked_stream_lines_split_anywhere_with_every_line_ending_and_split_utf8() -> None:
    text = "data: a\r\n\r\ndata: b\n\ndata: é€\r\rdata: last".encode()
    pieces = [text[i:i + 3] for i in range(0, len(text), 3)]  # cuts CRLFs and the UTF-8 sequences apart

    def reply(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim answer, skipped
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in pieces:
            conn.sendall(f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n")
        conn.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
        return True

    srv = RawServer(reply)

    async def main() -> tuple[list[str], list[str]]:
        client = wire.Client()
        r = await client.request("GET", f"{srv.url}/s", stream=True)
        first = [line async for line in r.lines()]
        r = await client.request("GET", f"{srv.url}/s", stream=True)  # the same connection, after the trailer
        second = [line async for line in r.lines()]
        await client.aclose()
        return first, second

    first, second = run(main())
    srv.close()
    assert first == second == ["data: a", "", "data: b", "", "data: é€", "", "data: last"]
    assert srv.connections == 1


@pytest.mark.parametrize("answer, message", [
    (b"", "without a response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"a\"", "mid-body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "mid-chunk"),
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
])
def test_a_broken_answer_is_a_dropped_connection(answer: bytes, message: str) -> None:
    def reply(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(answer)
        return False

    srv = RawServer(reply)

    async def main() -> None:
        client = wire.Client()
        with pytest.raises(wire.ConnectionDropped, match=message):
            await client.request("POST", f"{srv.url}/x", {})
        await client.aclose()

    run(main())
    srv.close()


def test_a_body_that_ends_with_the_connection() -> None:
    def reply(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"whole": "' + b"x" * 100_000 + b'"}')
        return False

    srv = RawServer(reply)

    async def main() -> Any:
        client = wire.Client()
        r = await client.request("GET", f"{srv.url}/x")
        await client.aclose()
        return r

    r = run(main())
    srv.close()
    assert r.status_code == 200 and r.json() == {"whole": "x" * 100_000}


def test_unreachable_and_interrupted() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def refused() -> None:
        with pytest.raises(wire.ConnectError):
            await wire.Client().request("GET", f"http://127.0.0.1:{port}/x")

    run(refused())

    srv = RawServer(lambda conn, request, n: threading.Event().wait(5) and False)  # never answers

    async def interrupted() -> None:
        client = wire.Client()
        conn = await client.connection(srv.url)
        asyncio.get_running_loop().call_later(0.2, conn.interrupt, wire.ReadTimeout("deadline"))
        with pytest.raises(wire.ReadTimeout, match="deadline"):
            await client.send(conn, "GET", f"{srv.url}/x")
        assert conn.ended  # an interrupted connection is never reused
        await client.aclose()

    run(interrupted())
    srv.close()


def test_a_proxy_in_the_environment_is_refused_by_name_but_loopback_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ConfigError, match=r"https://api\.example\.com/v1 would go through the proxy http://proxy\.example:3128"):
        wire.check_no_proxy("https://api.example.com/v1")
    wire.check_no_proxy("http://127.0.0.1:8000/v1")
    wire.check_no_proxy("http://localhost:8000/v1")
    monkeypatch.setenv("NO_PROXY", "api.example.com")
    wire.check_no_proxy("https://api.example.com/v1")
    with pytest.raises(ConfigError, match="would go through the proxy"):
        OpenAIBackend("https://api.other.example/v1", model="m")


def test_tls_with_a_certificate_the_client_trusts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    srv = RawServer(lambda conn, request, n: conn.sendall(ok(b'{"tls": true}')) or True, tls=tls)

    async def fetch() -> Any:
        client = wire.Client()
        try:
            return (await client.request("GET", f"{srv.url}/x")).json()
        finally:
            await client.aclose()

    with pytest.raises(wire.ConnectError, match="TLS with localhost"):  # not trusted: refused before sending
        run(fetch())
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ssl.create_default_context reads it
    assert run(fetch()) == {"tls": True}
    srv.close()
