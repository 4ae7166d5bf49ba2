"""Tokens handed to a streaming client as the embedded engine decodes them.

The llama.cpp backend hands over whole samples (`on_sample`); it has no per-token callback. Its
decode loop turns every sampled token into text with `_piece`, on the caller's thread, so a
subclass that also passes each piece to a thread-local tap streams a one-sample request token by
token without touching the engine. (With several samples in one batch the pieces would
interleave, so only one-sample requests are tapped.) The clean seam is an `on_token` argument to
`LlamaCppBackend.generate`; until it exists this subclass leans on `_piece`, and if that name ever
changes, streaming degrades to one chunk at the end of the sample (the serve tests notice).

`StreamText` keeps what the client sees a prefix of the final completion: bytes are decoded
incrementally (a character split across tokens waits for its last byte), and text that could be
the start of a stop string is held back until it is known not to be one.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from oomlab.backends.llamacpp import LlamaCppBackend

_tap = threading.local()


@contextmanager
def token_tap(fn: Callable[[bytes], None] | None) -> Iterator[None]:
    """While inside, every token the engine decodes on this thread is passed to `fn` (its bytes)."""
    old = getattr(_tap, "fn", None)
    _tap.fn = fn
    try:
        yield
    finally:
        _tap.fn = old


class StreamingLlamaCppBackend(LlamaCppBackend):
    """The embedded backend, with each decoded token also handed to this thread's `token_tap`."""

    def _piece(self, token: int) -> bytes:
        piece = super()._piece(token)
        fn = getattr(_tap, "fn", None)
        if fn is not None:
            fn(piece)
        return piece


class StreamText:
    """Decoded text handed out as it becomes safe: never past a stop string, never half a character."""

    def __init__(self, stops: tuple[str, ...], emit: Callable[[str], None]):
        self.stops = tuple(s for s in stops if s)
        self.emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # decoded so far
        self.sent = ""  # handed out so far (always a prefix of the final completion)
        self.stopped = False

    def feed(self, piece: bytes) -> None:
        if self.stopped:
            return
        self.text += self._decoder.decode(piece)
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
