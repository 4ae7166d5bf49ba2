"""The torch backend: N=64 samples of one prompt, batched with a shared KV cache vs one after another.

Batched: the prompt is evaluated once, its KV cache expanded to the 64 sequences, and each step
decodes one token for every live sequence in one forward pass. Sequential: the same backend with
batched=False, each sample decoded alone (with its own KV cache; the short prompt re-evaluated per
sample). Both draw the same seeds, and the texts are checked identical. Last line: `speedup: X.XX`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `oomlab lab run` does: idle threads sleep, not spin
import torch  # noqa: E402

from oomlab.backends.base import GenRequest, SamplingParams  # noqa: E402
from oomlab.backends.torch import TorchBackend  # noqa: E402
from oomlab.lab.model import GPT, GPTConfig  # noqa: E402
from oomlab.lab.train import save_blob  # noqa: E402
from oomlab.tasks.base import create_task  # noqa: E402


def checkpoint(directory: Path, d_model: int, n_layer: int) -> Path:
    """A lab checkpoint of the default task's shape (weights at init: speed does not depend on them)."""
    task = create_task("lab-chain", format="cot")
    config = GPTConfig(len(task.vocab), 64, n_layer, max(1, d_model // 32), d_model)
    model = GPT(config, seed=0)
    path, _ = save_blob({"config": config.as_dict(), "weights": model.state_dict(),
                         "meta": {"vocab": task.vocab, "name": f"bench-{d_model}x{n_layer}"}}, directory)
    return path


def tokens_per_second(backend: TorchBackend, request: GenRequest, repeats: int) -> tuple[float, list[str]]:
    backend.generate(GenRequest(request.prompt, request.params, request.seeds[:2]))  # warm up
    best, texts = 0.0, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gens = backend.generate(request)
        best = max(best, sum(g.completion_tokens for g in gens) / (time.perf_counter() - t0))
        texts = [g.text for g in gens]
    return best, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        backend = TorchBackend(str(checkpoint(Path(tmp), args.d_model, args.layers)), device=args.device,
                               max_parallel=args.n)
        params = SamplingParams(temperature=1.0, max_tokens=args.max_tokens, top_k=0, stop=())
        request = GenRequest("3+5*2-4+1*6..=", params, tuple(range(args.n)))
        b_tps, b_texts = tokens_per_second(backend, request, args.repeats)
        backend.batched = False
        s_tps, s_texts = tokens_per_second(backend, request, args.repeats)
    assert b_texts == s_texts, "batched and sequential samples differ"
    print(f"model: lab GPT {args.d_model}x{args.layers} ({backend.facts.n_params_non_embedding:,} non-embedding "
          f"params), {args.device}, {args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"batched:    {b_tps:9.1f} tokens/s (N={args.n}, one forward pass per step for all live samples)")
    print(f"sequential: {s_tps:9.1f} tokens/s (N={args.n}, one sample after another, KV cache each)")
    print(f"speedup: {b_tps / s_tps:.2f}")


if __name__ == "__main__":
    main()
