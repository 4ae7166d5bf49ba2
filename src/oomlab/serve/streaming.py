"""Tokens handed to a streaming client as the backend decodes them.

Backends that can stream say so (`streams_tokens`) and take an `on_token(i, piece)` callback in
`generate` (the embedded engine calls it from its decode loop, an OpenAI-compatible backend as the
upstream's server-sent events arrive). A served request reaches the backend through the sweep's
`MeteredBackend` (the cache, the books) wrapped in the request's `CappedBackend`; `TokenRoute` sits
between the two and passes the request's callback down for the draw it is asked to stream, and for
nothing else (a judge's or a verifier's tokens are not the answer).

`StreamText` keeps what the client sees a prefix of the final completion: text that could be the
start of a stop string is held back until it is known not to be one (and raw bytes, when given,
are decoded incrementally, so a character split across tokens waits for its last byte).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from oomlab.backends.base import GenRequest, Generation, SampleCallback, TokenCallback


class TokenRoute:
    """A backend (the metered one) whose `generate` calls made inside `to(fn)` stream their tokens to `fn`.

    One per served request, so no state is shared between requests; every other attribute is the
    inner backend's, so a `CappedBackend` can wrap it where it would wrap the metered backend.
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self._on_token: TokenCallback | None = None

    def __getattr__(self, name: str) -> Any:  # store, model_id, facts, backend, meter, take_used, ...
        return getattr(self.inner, name)

    @contextmanager
    def to(self, fn: TokenCallback | None) -> Iterator[None]:
        """While inside, the tokens of each request made through this route go to `fn` (None: nowhere)."""
        old, self._on_token = self._on_token, fn
        try:
            yield
        finally:
            self._on_token = old

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None) -> list[Generation]:
        if self._on_token is None:
            return self.inner.generate(request, on_sample)
        return self.inner.generate(request, on_sample, on_token=self._on_token)


class StreamText:
    """Decoded text handed out as it becomes safe: never past a stop string, never half a character."""

    def __init__(self, stops: tuple[str, ...], emit: Callable[[str], None]):
        self.stops = tuple(s for s in stops if s)
        self.emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # decoded so far
        self.sent = ""  # handed out so far (always a prefix of the final completion)
        self.stopped = False

    def feed(self, piece: str | bytes) -> None:
        """The next piece of the completion: text (as backends' `on_token` gives it) or raw bytes."""
        if self.stopped:
            return
        self.text += self._decoder.decode(piece) if isinstance(piece, bytes) else piece
        cut = min((i for i in (self.text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            safe = cut
        else:
            safe = len(self.text) - self._held(self.text)
        if safe > len(self.sent):
            delta = self.text[len(self.sent) : safe]
            self.sent += delta
            self.emit(delta)

    def _held(self, text: str) -> int:
        """Length of the longest end of `text` that begins some stop string."""
        best = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best

    def finish(self, final: str) -> None:
        """Hand out the rest of the final completion (all of it, when nothing was decoded here: a cached sample)."""
        if final.startswith(self.sent) and len(final) > len(self.sent):
            delta = final[len(self.sent) :]
            self.sent += delta
            self.emit(delta)
