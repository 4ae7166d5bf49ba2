"""The OpenAI wire format: request bodies into `ServedRequest`s, results into responses and stream chunks.

Fields that would change what a completion means and that the backends cannot honour (tools,
response formats, logit bias, penalties, `echo`, `logprobs`, `n` > 1) are refused with a 400
rather than silently ignored. Everything oomlab-specific rides in one `oomlab` object of the
body (the official client's `extra_body={"oomlab": {...}}`):

    strategy, budget, options   the strategy to run (override the model name's)
    caps                        {"tokens": ..., "usd": ..., "flops": ..., "joules": ...}, at most the server's
    answer                      how a completion's answer is read for voting: text | number | line
    reference                   the right answer, when the client knows it (accuracy is then measured)
"""

from __future__ import annotations

import math
import time
from typing import Any

from oomlab.backends.base import SamplingParams
from oomlab.caps import Caps
from oomlab.errors import ConfigError
from oomlab.serve.names import check_budget, parse_model_name
from oomlab.serve.runner import RequestError, ServedRequest, ServedResult, ServeSettings
from oomlab.serve.task import ANSWER_RULES

OOMLAB_KEYS = ("strategy", "budget", "options", "caps", "answer", "reference")
MAX_STOPS = 16
CHAT_FORMATS = ("auto", "plain", "gemma", "chat")

# (field, the value that means "not used"): refused when set to anything else
UNSUPPORTED = {
    "tools": None, "functions": None, "tool_choice": None, "function_call": None, "response_format": None,
    "logit_bias": None, "logprobs": None, "top_logprobs": None, "echo": False, "suffix": None, "best_of": None,
    "presence_penalty": 0, "frequency_penalty": 0, "audio": None, "modalities": None, "prediction": None,
}


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> RequestError:
    return RequestError(message, param, code)


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise _bad(f"'{key}' must be a number from {lo:g} to {hi:g}, got {v!r}", key)
    return float(v)


def _integer(body: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(f"'{key}' must be a whole number from {lo} to {hi:,}, got {v!r}", key)
    return v


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise _bad(f"'stop' must be a non-empty string or a list of at most {MAX_STOPS} of them", "stop")
    return tuple(stops)


def _common(body: dict[str, Any], settings: ServeSettings, strategies: set[str], endpoint: str,
            remote: bool) -> dict[str, Any]:
    """The fields chat and completions share, checked; returns ServedRequest keywords.

    `top_k` (an extension) defaults to the embedded engine's 40 (a full draw over Gemma's 262k
    vocabulary is slow) and, upstream, to none at all, so a plain request reaches the server as sent.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' is required: a model name, or STRATEGY[-BUDGET]:MODEL (see GET /v1/models)", "model",
                   "missing_model")
    for key, unused in UNSUPPORTED.items():
        if key in body and body[key] not in (unused, None, [], {}) and not (key == "logprobs" and body[key] is False):
            raise _bad(f"'{key}' is not supported by oomlab serve", key, "unsupported_parameter")
    n = _integer(body, "n", 1, 1_000_000)
    if n is not None and n != 1:
        raise _bad("'n' must be 1: ask for a strategy instead (e.g. model 'sample-8:NAME' or 'majority-8:NAME')", "n")
    mt = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = _integer({"max_tokens": mt}, "max_tokens", 1, settings.max_completion_tokens)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0)
    top_k = _integer(body, "top_k", 0, 1_000_000)
    seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be true or false", "stream")
    so = body.get("stream_options") or {}
    if not isinstance(so, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    include_usage = bool(so.get("include_usage", False))

    name = parse_model_name(model.strip(), strategies)
    extra = body.get("oomlab") or {}
    if not isinstance(extra, dict):
        raise _bad("'oomlab' must be an object with any of " + ", ".join(OOMLAB_KEYS), "oomlab")
    unknown = sorted(set(extra) - set(OOMLAB_KEYS))
    if unknown:
        raise _bad(f"unknown key(s) {', '.join(unknown)} in 'oomlab'; valid keys: {', '.join(OOMLAB_KEYS)}", "oomlab",
                   "unknown_parameter")
    strategy = extra.get("strategy", name.strategy)
    if strategy is not None and (not isinstance(strategy, str) or strategy not in strategies):
        raise _bad(f"unknown strategy {strategy!r}; valid strategies: {', '.join(sorted(strategies))}",
                   "oomlab.strategy", "unknown_strategy")
    budget = extra.get("budget", name.budget)
    if budget is not None:
        try:
            budget = check_budget(budget, "budget")
        except ConfigError as e:
            raise _bad(str(e), "oomlab.budget") from None
        if budget > settings.max_budget:
            raise _bad(f"budget {budget} is over this server's limit of {settings.max_budget} (--max-budget)",
                       "oomlab.budget", "budget_too_large")
    options = dict(name.options)
    given = extra.get("options") or {}
    if not isinstance(given, dict):
        raise _bad("'oomlab.options' must be an object of strategy options", "oomlab.options")
    options.update({str(k).replace("-", "_"): v for k, v in given.items()})
    if strategy is None and (options or budget is not None):
        raise _bad("options and a budget need a strategy (oomlab.strategy, or a model name like majority-8:NAME)",
                   "oomlab.strategy")
    try:
        caps = Caps.parse(extra.get("caps"), "oomlab.caps")
    except ConfigError as e:
        raise _bad(str(e), "oomlab.caps") from None
    answer = extra.get("answer", "text")
    if answer not in ANSWER_RULES:
        raise _bad(f"unknown answer rule {answer!r}; valid: {', '.join(ANSWER_RULES)}", "oomlab.answer")
    reference = extra.get("reference")
    if reference is not None and not isinstance(reference, str | int | float):
        raise _bad("'oomlab.reference' must be a string or a number", "oomlab.reference")
    params = SamplingParams(
        temperature=1.0 if temperature is None else temperature,
        max_tokens=max_tokens or settings.default_max_tokens,
        top_k=(0 if remote else 40) if top_k is None else top_k,
        top_p=1.0 if top_p is None else top_p,
        stop=_stops(body.get("stop")),
    )
    return dict(endpoint=endpoint, model=model, params=params, strategy=strategy, budget=budget, options=options,
                temperature=temperature, seed=seed, caps=caps, answer=answer,
                reference=None if reference is None else str(reference), stream=stream, include_usage=include_usage,
                base=name.base)


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"messages[{i}]: only text content parts are supported", f"messages[{i}].content")
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"messages[{i}].content must be a string or a list of text parts", f"messages[{i}].content")


def render_messages(messages: list[dict[str, Any]], fmt: str) -> tuple[str, tuple[str, ...]]:
    """Chat messages as one prompt for a completion model, and the stop strings that end its turn.

    `plain` (a base model, such as the embedded one, which has no chat template):
    "System text\\n\\nUser: ...\\nAssistant: ...\\nUser: ...\\nAssistant:", stopping at "\\nUser:".
    `gemma`: Gemma's turn markers (<start_of_turn>user ... <end_of_turn>), stopping at <end_of_turn>.
    """
    if fmt == "gemma":
        system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
        out = []
        for m in messages:
            if m["role"] in ("system", "developer"):
                continue
            role = "model" if m["role"] == "assistant" else "user"
            text = m["content"]
            if role == "user" and system:
                text, system = f"{system}\n\n{text}", ""
            out.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
        return "".join(out) + "<start_of_turn>model\n", ("<end_of_turn>",)
    lines = []
    for m in messages:
        if m["role"] in ("system", "developer"):
            lines.append(f"{m['content']}\n\n")
        else:
            lines.append(f"{'Assistant' if m['role'] == 'assistant' else 'User'}: {m['content']}\n")
    return "".join(lines) + "Assistant:", ("\nUser:",)


def parse_chat(body: dict[str, Any], settings: ServeSettings, strategies: set[str], remote: bool) -> ServedRequest:
    """A /v1/chat/completions body; messages are rendered for the backend (see `render_messages`)."""
    kw = _common(body, settings, strategies, "chat", remote)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "messages", "missing_messages")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant"):
            raise _bad(f"messages[{i}] needs a role of system, developer, user or assistant", f"messages[{i}].role")
        if m.get("tool_calls") or m.get("function_call"):
            raise _bad(f"messages[{i}]: tool calls are not supported", f"messages[{i}]")
        clean.append({"role": m["role"], "content": _content(m, i)})
    fmt = settings.chat_format
    if fmt == "auto":
        fmt = "chat" if remote else "plain"
    flattened = False
    if fmt == "chat":  # upstream chat endpoint: one message; several are rendered into it
        turns = [m for m in clean if m["role"] not in ("system", "developer")]
        system = "\n\n".join(m["content"] for m in clean if m["role"] in ("system", "developer"))
        if len(turns) == 1 and turns[0]["role"] == "user":
            prompt = f"{system}\n\n{turns[0]['content']}" if system else turns[0]["content"]
        else:
            prompt, _ = render_messages(clean, "plain")
            flattened = True
        extra_stops: tuple[str, ...] = ()
        chat = True
    else:
        prompt, extra_stops = render_messages(clean, fmt)
        chat = False
    params = kw["params"]
    stops = tuple(dict.fromkeys(params.stop + extra_stops))
    kw["params"] = SamplingParams(params.temperature, params.max_tokens, params.top_k, params.top_p, stops)
    return ServedRequest(prompt=prompt, chat=chat, inputs={"messages": clean}, flattened=flattened, **kw)


def parse_completion(body: dict[str, Any], settings: ServeSettings, strategies: set[str],
                     remote: bool = False) -> ServedRequest:
    """A /v1/completions body: one prompt string (a list of one is accepted)."""
    kw = _common(body, settings, strategies, "completion", remote)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad("'prompt' must be a string (one prompt per request)", "prompt", "invalid_prompt")
    return ServedRequest(prompt=prompt, chat=False, inputs={"prompt": prompt}, **kw)


# -- responses ------------------------------------------------------------------------------------
def completion_body(req: ServedRequest, result: ServedResult, rid: str, created: int) -> dict[str, Any]:
    """The whole response of a non-streaming request, with `usage` and the `oomlab` books."""
    if req.endpoint == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None,
                  "finish_reason": result.finish_reason}
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": result.text, "logprobs": None, "finish_reason": result.finish_reason}
        obj = "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": req.model, "choices": [choice],
            "usage": result.usage, "oomlab": result.books, "system_fingerprint": None}


def chunk(req: ServedRequest, rid: str, created: int, *, text: str | None = None, role: bool = False,
          finish: str | None = None) -> dict[str, Any]:
    """One streamed chunk: a piece of text, the opening role, or the finish reason."""
    if req.endpoint == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
            delta["content"] = ""
        if text is not None:
            delta["content"] = text
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    out = {"id": rid, "object": obj, "created": created, "model": req.model, "choices": [choice]}
    if req.include_usage:
        out["usage"] = None
    return out


def usage_chunk(req: ServedRequest, result: ServedResult, rid: str, created: int) -> dict[str, Any]:
    """The last chunk when `stream_options.include_usage` is set: no choices, the usage and the books."""
    obj = "chat.completion.chunk" if req.endpoint == "chat" else "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": req.model, "choices": [],
            "usage": result.usage, "oomlab": result.books}


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def now() -> int:
    return int(time.time())
