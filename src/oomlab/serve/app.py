"""The FastAPI app: `/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`.

Requests run on a thread pool as wide as the backend's concurrency (one for the embedded engine,
which decodes one batch at a time; an upstream's `concurrency` per endpoint, summed over its endpoints),
so the event loop stays free: `/health` answers while the engine is busy, and a request that
fails (a bad option, a backend error, a bug) answers with its own error object and nothing else.
Past `max_pending` requests waiting or running, new ones get a 429 instead of an unbounded queue.

With an API key set, every `/v1` route needs `Authorization: Bearer KEY` (compared in constant
time); `/health` stays open for probes: it says only that the server is up, what it serves, its run
id and how many requests it has in flight, served and failed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from oomlab.errors import BackendError, ConfigError, OomlabError
from oomlab.serve.protocol import (
    chunk,
    completion_body,
    error_body,
    parse_chat,
    parse_completion,
    usage_chunk,
)
from oomlab.serve.runner import Prepared, RequestError, ServedRequest, ServedResult, ServeRunner
from oomlab.strategies.base import STRATEGIES, DrawStrategy

log = logging.getLogger("oomlab.serve")


class ApiError(Exception):
    """An error answered as an OpenAI-style error object."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.type, self.param, self.code), status_code=self.status,
                            headers=self.headers)


def _as_api_error(e: BaseException, remote: bool) -> ApiError:
    """What a failed request answers: 400 for what the client can fix, 502/500 for the backend, 500 for the rest."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, RequestError):
        return ApiError(e.status, str(e), "invalid_request_error" if e.status < 500 else "server_error", e.param, e.code)
    if isinstance(e, ConfigError):
        return ApiError(400, str(e), "invalid_request_error")
    if isinstance(e, BackendError):
        return ApiError(502 if remote else 500, f"backend error: {e}", "server_error", code="backend_error")
    if isinstance(e, OomlabError):
        return ApiError(500, str(e), "server_error")
    log.exception("request failed", exc_info=e)
    return ApiError(500, f"internal error: {type(e).__name__}: {e}", "server_error", code="internal_error")


def create_app(runner: ServeRunner, on_stop: Callable[[], None] | None = None) -> FastAPI:
    """The app over one runner (its backend, its run in the Store).

    At shutdown the requests in flight finish (their samples are committed), then the runner is
    closed, so the run is marked finished: this happens in the app's lifespan, because uvicorn
    re-raises a SIGTERM after a graceful shutdown and nothing after `Server.run` would run.
    """
    settings = runner.settings
    pool = ThreadPoolExecutor(max_workers=runner.concurrency, thread_name_prefix="oomlab-serve")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.get_running_loop().run_in_executor(None, lambda: pool.shutdown(wait=True, cancel_futures=True))
        runner.close()
        if on_stop is not None:
            on_stop()

    app = FastAPI(title="oomlab serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    state = {"pending": 0, "served": 0, "failed": 0}
    created = int(time.time())
    strategies = runner.strategies

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error", None, code), status_code=exc.status_code)

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise ApiError(401, "missing or incorrect API key: send 'Authorization: Bearer KEY'", "invalid_request_error",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    async def read_json(request: Request) -> dict[str, Any]:
        limit = settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(400, f"request body of {int(length):,} bytes is over the limit of {limit:,} (--max-body-bytes)",
                           code="body_too_large")
        buf = bytearray()
        async for part in request.stream():
            buf += part
            if len(buf) > limit:
                raise ApiError(400, f"request body is over the limit of {limit:,} bytes (--max-body-bytes)",
                               code="body_too_large")
        try:
            body = json.loads(bytes(buf))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the body is not valid JSON: {e}", code="invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        return body

    def models() -> list[dict[str, Any]]:
        base = runner.names[0]
        out = [{"id": base, "object": "model", "created": created, "owned_by": "oomlab",
                "oomlab": {"strategy": None, "model_id": runner.backend.model_id,
                           "note": "passed through: one sample with the request's own settings"}}]
        for name, cls in STRATEGIES.items():
            draw = issubclass(cls, DrawStrategy)
            out.append({"id": f"{name}:{base}", "object": "model", "created": created, "owned_by": "oomlab",
                        "oomlab": {"strategy": name, "knob": cls.knob, "knob_help": cls.knob_help,
                                   "description": cls.description, "one_draw": draw,
                                   "default_budget": settings.default_budget, "max_budget": settings.max_budget,
                                   "example": f"{name}-{settings.default_budget}:{base}"}})
        return out

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": runner.names[0], "run_id": runner.run_id, "in_flight": state["pending"],
                "served": state["served"], "failed": state["failed"]}

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": models()}

    @app.get("/v1/models/{model:path}")
    async def get_model(model: str, request: Request) -> dict[str, Any]:
        authorize(request)
        for m in models():
            if m["id"] == model:
                return m
        raise ApiError(404, f"model {model!r} is not served here (see GET /v1/models)", param="model",
                       code="model_not_found")

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Response:
        authorize(request)
        body = await read_json(request)
        return await serve(lambda: parse_chat(body, settings, strategies, runner.remote), "chatcmpl")

    @app.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Response:
        authorize(request)
        body = await read_json(request)
        return await serve(lambda: parse_completion(body, settings, strategies, runner.remote), "cmpl")

    async def serve(parse: Any, prefix: str) -> Response:
        if state["pending"] >= settings.max_pending:
            raise ApiError(429, f"{state['pending']} requests are already waiting or running (--max-pending); "
                           "try again shortly", "rate_limit_error", code="server_busy", headers={"Retry-After": "1"})
        try:
            req: ServedRequest = parse()
            prepared = runner.prepare(req)
        except Exception as e:  # noqa: BLE001 - every failure is answered, never raised into the server
            raise _as_api_error(e, runner.remote) from None
        if req.stream:
            return StreamingResponse(stream(prepared, prefix), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        loop = asyncio.get_running_loop()
        future = submit(loop, prepared, None)
        try:
            result: ServedResult = await asyncio.shield(future)
        except Exception as e:  # noqa: BLE001
            raise _as_api_error(e, runner.remote) from None
        rid = f"{prefix}-{prepared.trace_id}"
        return JSONResponse(completion_body(req, result, rid, int(time.time())))

    def submit(loop: asyncio.AbstractEventLoop, prepared: Prepared, on_text: Any) -> asyncio.Future[ServedResult]:
        state["pending"] += 1
        future = loop.run_in_executor(pool, runner.handle, prepared, on_text)

        def done(f: asyncio.Future[ServedResult]) -> None:
            state["pending"] -= 1
            if f.cancelled() or f.exception() is not None:  # retrieved here, so a gone client leaves no warning
                state["failed"] += 1
            else:
                state["served"] += 1

        future.add_done_callback(done)
        return future

    async def stream(prepared: Prepared, prefix: str) -> AsyncIterator[str]:
        """Server-sent events: the role, then text as it comes (or keep-alives until the answer), the finish
        reason, the usage chunk when asked for, and [DONE]. An error after the start is sent as an error event."""
        req = prepared.request
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def on_text(delta: str) -> None:  # on the worker thread
            try:
                loop.call_soon_threadsafe(queue.put_nowait, delta)
            except RuntimeError:  # the loop is gone (shutting down): the sample is still committed
                pass

        future = submit(loop, prepared, on_text if prepared.streams_tokens else None)
        future.add_done_callback(lambda f: queue.put_nowait(None))
        rid = f"{prefix}-{prepared.trace_id}"
        t0 = int(time.time())

        def event(obj: dict[str, Any]) -> str:
            return f"data: {json.dumps(obj)}\n\n"

        yield event(chunk(req, rid, t0, role=True))
        while True:
            try:
                delta = await asyncio.wait_for(queue.get(), timeout=settings.keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if delta is None:
                break
            yield event(chunk(req, rid, t0, text=delta))
        try:
            result = future.result()
        except Exception as e:  # noqa: BLE001
            err = _as_api_error(e, runner.remote)
            yield event(error_body(err.message, err.type, err.param, err.code))
            yield "data: [DONE]\n\n"
            return
        if not result.streamed and result.text:
            yield event(chunk(req, rid, t0, text=result.text))
        yield event(chunk(req, rid, t0, finish=result.finish_reason))
        if req.include_usage:
            yield event(usage_chunk(req, result, rid, t0))
        yield "data: [DONE]\n\n"

    return app
