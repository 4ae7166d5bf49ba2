"""Batched vs sequential sampling on the embedded model: N=16 samples of one prompt.

Batched: the prompt is evaluated once and all 16 sequences decode together, one llama_decode per step.
Sequential (the fair baseline): the same prompt KV cache is reused, and the samples are decoded one
after another. Both draw the same seeds with the same sampler chain. Last line: `speedup: X.XX`.
"""

from __future__ import annotations

import argparse
import time

from oomlab.backends.base import GenRequest, SamplingParams
from oomlab.backends.llamacpp import LlamaCppBackend

PROMPT = "The following is a short story about a robot who learns to paint.\n\nOnce upon a time,"


def tokens_per_second(backend: LlamaCppBackend, request: GenRequest, repeats: int) -> tuple[float, int]:
    backend.generate(GenRequest(request.prompt, request.params, request.seeds[:2]))  # warm up
    best = 0.0
    tokens = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        gens = backend.generate(request)
        dt = time.perf_counter() - t0
        tokens = sum(g.completion_tokens for g in gens)
        best = max(best, tokens / dt)
    return best, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    request = GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=args.max_tokens), tuple(range(args.n)))
    batched = LlamaCppBackend(batched=True)
    b_tps, b_tok = tokens_per_second(batched, request, args.repeats)
    batched.batched = False  # same model and context, the sequential path
    s_tps, s_tok = tokens_per_second(batched, request, args.repeats)
    batched.close()
    print(f"batched:    {b_tps:7.1f} tokens/s ({b_tok} tokens, N={args.n})")
    print(f"sequential: {s_tps:7.1f} tokens/s ({s_tok} tokens, N={args.n}, prompt cache reused)")
    print(f"speedup: {b_tps / s_tps:.2f}")


if __name__ == "__main__":
    main()
