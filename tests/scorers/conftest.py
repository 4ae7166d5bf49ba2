"""A protocol-faithful stand-in for a process reward model server, on 127.0.0.1.

No PRM can run on these machines (Qwen2.5-Math-PRM-7B needs a GPU and its weights), so this
server speaks the two protocols the prm scorer uses, byte for byte as a real server would, and
only the *scores* are made up:

- vLLM's pooling API: `POST /pooling` with `{"model", "messages": [...]}`, the assistant message
  holding the steps each followed by the step tag; answered with vLLM's PoolingResponse,
  `{"id", "object": "list", "created", "model", "data": [{"index": 0, "object": "pooling",
  "data": [[p_wrong, p_right], ...]}], "usage": {"prompt_tokens", "total_tokens", "completion_tokens": 0}}`,
  one row per step tag, as vLLM's STEP pooler returns for Qwen2.5-Math-PRM.
- a plain reward endpoint: `POST /reward` with `{"question", "steps"}`, answered with
  `{"scores": [...], "usage": {"prompt_tokens": N}}`.

The made-up PRM checks arithmetic: a step claiming `a op b = c` scores 0.95 when the claim is
true and 0.05 when it is false; any other step scores 0.5. Its "tokenizer" counts
whitespace-separated words, plus 4 per message. Faults are injected per test: HTTP 500s for the
next requests, or a malformed answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CLAIM = re.compile(r"(-?\d+)\s*([+\-*/])\s*(-?\d+)\s*=\s*(-?\d+)")
STEP_TAG = "<extra_0>"


def step_score(step: str) -> float:
    """0.95 for a true arithmetic claim, 0.05 for a false one, 0.5 for a step without one."""
    m = CLAIM.search(step)
    if m is None:
        return 0.5
    a, op, b, c = Fraction(m.group(1)), m.group(2), Fraction(m.group(3)), Fraction(m.group(4))
    if op == "/" and b == 0:
        return 0.05
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
    return 0.95 if value == c else 0.05


def count_tokens(texts: list[str]) -> int:
    return sum(len(t.split()) + 4 for t in texts)


@dataclass
class PRMServerState:
    url: str = ""
    fail_next: int = 0  # answer this many requests with HTTP 500 first
    bad: str | None = None  # "no-data" | "rows" | "nan" | "no-usage": a malformed answer
    requests: list[dict[str, Any]] = field(default_factory=list)  # every body received, failures included
    tokens_reported: int = 0  # prompt tokens in the answers that succeeded
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.fail_next, self.bad, self.requests, self.tokens_reported = 0, None, [], 0


def make_handler(state: PRMServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def send_json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": "fake-prm", "object": "model"}]})
            else:
                self.send_json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                state.requests.append({"path": self.path, "body": body})
                if state.fail_next > 0:
                    state.fail_next -= 1
                    fail = True
                else:
                    fail = False
                bad = state.bad
            if fail:
                self.send_json(500, {"object": "error", "message": "simulated overload", "code": 500})
                return
            if self.path == "/pooling":
                messages = body.get("messages")
                if not isinstance(messages, list):
                    self.send_json(400, {"object": "error", "message": "messages required"})
                    return
                assistant = messages[-1]["content"]
                steps = assistant.split(STEP_TAG)[:-1]  # one row per step tag
                rows = [[1 - step_score(s), step_score(s)] for s in steps]
                tokens = count_tokens([m["content"] for m in messages])
                answer: dict[str, Any] = {
                    "id": "pool-test", "object": "list", "created": int(time.time()), "model": body.get("model", "fake-prm"),
                    "data": [{"index": 0, "object": "pooling", "data": rows}],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
                }  # fmt: skip
                if bad == "no-data":
                    answer = {"object": "list", "usage": answer["usage"]}
                elif bad == "rows":
                    answer["data"][0]["data"] = rows + [[0.5, 0.5]] * 40  # every token pooled, not the step tags
                elif bad == "nan":
                    answer["data"][0]["data"] = [[0.5, "NaN"] for _ in rows]
            elif self.path == "/reward":
                steps = body["steps"]
                tokens = count_tokens([body["question"], *steps])
                answer = {"scores": [step_score(s) for s in steps], "usage": {"prompt_tokens": tokens}}
            else:
                self.send_json(404, {"detail": "Not Found"})
                return
            if bad == "no-usage":
                answer.pop("usage", None)
            elif bad is None:
                with state.lock:
                    state.tokens_reported += tokens
            self.send_json(200, answer)

    return Handler


@pytest.fixture(scope="session")
def prm_server() -> Iterator[PRMServerState]:
    """The stand-in PRM, serving on a free port of 127.0.0.1 for the whole session."""
    state = PRMServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prm(prm_server: PRMServerState) -> PRMServerState:
    """The stand-in PRM with no faults and an empty request log."""
    prm_server.reset()
    return prm_server
