"""The `torch` backend: a lab-trained model (oomlab.lab) as an ordinary oomlab backend, on CPU or CUDA.

n samples of one prompt are decoded together: the prompt is evaluated once, its KV cache is
expanded to the n sequences, and each step decodes one token for every live sequence in one
forward pass (oomlab.lab.model.decode); a sample that stops leaves the batch and is handed to
`on_sample` at once. Sample i draws from its own seed, so its text does not depend on its batch.
torch is imported only when a model is loaded: `pip install 'oomlab[lab]'`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from oomlab.backends.base import BACKENDS, GenRequest, Generation, ModelFacts, SampleCallback, TokenCallback
from oomlab.errors import BackendError, ModelNotFoundError


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


@BACKENDS.register("torch")
class TorchBackend:
    """A lab checkpoint (`checkpoint`: a final-weights .pt that oomlab.lab wrote) served by PyTorch."""

    name: ClassVar[str]
    streams_tokens: ClassVar[bool] = False  # whole samples only: on_token is ignored

    def __init__(self, checkpoint: str, device: str = "cpu", max_parallel: int = 64, batched: bool = True,
                 threads: int | None = None):
        try:
            import torch
        except ImportError as e:  # pragma: no cover - torch is in the test extras
            raise BackendError("the torch backend needs PyTorch: pip install 'oomlab[lab]'") from e
        from oomlab.lab.train import load_weights

        path = Path(checkpoint)
        if not path.is_file():
            raise ModelNotFoundError(f"lab checkpoint not found: {checkpoint} (train one with `oomlab lab run`)")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"--device {device}: this PyTorch has no CUDA device (torch {torch.__version__})")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.path, self.device = str(path.resolve()), device
        self.sha256 = _sha256(path)
        try:
            self.model, self.meta = load_weights(path, device)
        except Exception as e:
            raise ModelNotFoundError(f"{checkpoint} is not a lab checkpoint ({type(e).__name__}: {e})") from None
        self.vocab: str = self.meta["vocab"]
        self._ids = {ch: i for i, ch in enumerate(self.vocab)}
        label = self.meta.get("name") or f"lab-{self.model.config.n_params_non_embedding}"
        self.model_id = f"{label}@{self.sha256[:12]}"
        c = self.model.config
        self.facts: ModelFacts = c.facts(self.model_id, source=f"lab checkpoint {path.name[:16]}",
                                         training_flops=self.meta.get("flops"), training_tokens=self.meta.get("tokens"),
                                         task=self.meta.get("spec", {}).get("task"),
                                         task_options=self.meta.get("spec", {}).get("task_options"))
        self.max_parallel, self.batched = max_parallel, batched
        self._lock = threading.Lock()

    def tokenize(self, text: str) -> list[int]:
        try:
            return [self._ids[ch] for ch in text]
        except KeyError as e:
            raise BackendError(f"character {e.args[0]!r} is not in this lab model's vocabulary {self.vocab!r}") from None

    def _text(self, tokens: list[int]) -> str:
        return "".join(self.vocab[t] for t in tokens)

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        """Decode the n samples in batches of up to max_parallel (or one by one with batched=False).

        `on_token` is accepted and ignored: this backend hands over whole samples (`streams_tokens` is False).
        """
        prompt = self.tokenize(request.prompt)
        if len(prompt) >= self.model.config.n_ctx:
            raise BackendError(f"prompt of {len(prompt)} tokens leaves no room in a context of {self.model.config.n_ctx}")
        size = self.max_parallel if self.batched else 1
        out: list[Generation | None] = [None] * request.n
        with self._lock:
            for start in range(0, request.n, size):
                seeds = list(request.seeds[start:start + size])
                for i, g in self._group(prompt, request, seeds):
                    out[start + i] = g
                    if on_sample is not None:
                        on_sample(start + i, g)
        return [g for g in out if g is not None]

    def _group(self, prompt: list[int], request: GenRequest, seeds: list[int]):
        """Yield (index in group, Generation) as each sample stops; step time is split among live samples."""
        from oomlab.lab.model import decode

        p = request.params
        single = frozenset(self._ids[s] for s in p.stop if len(s) == 1 and s in self._ids)
        longer = tuple(s for s in p.stop if len(s) > 1)
        n = len(seeds)
        seconds = [0.0] * n
        mark = time.perf_counter()
        steps = decode(self.model, prompt, seeds, max_new=p.max_tokens, temperature=p.temperature, top_k=p.top_k,
                       top_p=p.top_p, stop=single, logprobs=request.logprobs,
                       is_stop=(lambda toks: any(s in self._text(toks) for s in longer)) if longer else None)
        for live, finished in steps:
            now = time.perf_counter()
            for i in live:
                seconds[i] += (now - mark) / len(live)
            mark = now
            for d in finished:
                text = self._text(d.tokens)
                cut = min((j for j in (text.find(s) for s in p.stop) if j >= 0), default=-1)
                yield d.index, Generation(
                    text=text if cut < 0 else text[:cut], prompt_tokens=len(prompt),
                    completion_tokens=len(d.tokens), seconds=seconds[d.index], seed=seeds[d.index],
                    finish_reason=d.finish_reason, token_logprobs=tuple(d.logprobs) if request.logprobs else None,
                    group_size=n)
            mark = time.perf_counter()  # the hand-over (a Store commit) is not device time

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]

    def info(self) -> dict[str, Any]:
        return {"checkpoint": self.path, "device": self.device, "sha256": self.sha256, **self.meta}
