"""`oomlab serve`: an OpenAI-compatible endpoint that runs strategies and returns the bill."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Optional

import typer

from oomlab.cli.app import app
from oomlab.cli.common import console, db_option, err_console
from oomlab.errors import ConfigError, OomlabError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _pairs(pairs: list[str]) -> dict[str, Any]:
    from oomlab.sweep import parse_spec

    return parse_spec("x:" + ",".join(pairs))[1] if pairs else {}


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads, so a taken port fails at once (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OomlabError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    return sock


@app.command(
    epilog=(
        "[bold]Model names.[/bold] [cyan]STRATEGY[-BUDGET][\\[OPTIONS]]:MODEL[/cyan] runs a strategy: "
        "[cyan]majority-16:gemma-3-270m[/cyan] (a vote over 16 samples), "
        "[cyan]best-of-n-8\\[scorer=logprob]:gemma-3-270m[/cyan], [cyan]revise-2:gemma-3-270m[/cyan]. "
        "A plain name ([cyan]gemma-3-270m[/cyan]) is passed through: one sample with the request's own settings. "
        "Or send [cyan]extra_body={\"oomlab\": {\"strategy\": \"majority\", \"budget\": 16, \"options\": {...}, "
        "\"caps\": {\"tokens\": 2000}}}[/cyan]. GET /v1/models lists every strategy."
    ),
)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, "--port", help="Port (0: any free one; the banner says which)."),
    db: Path = db_option("SQLite database: every served sample lands here (one run per session)."),
    backend: str = typer.Option("llamacpp", "--backend", "-b", help="llamacpp (embedded, default) or openai (an upstream OpenAI-compatible server)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="llamacpp: a GGUF path (default: embedded Gemma 3 270M); openai: the upstream model name."),
    base_url: Optional[list[str]] = typer.Option(None, "--base-url", help="openai backend: upstream URL, e.g. http://127.0.0.1:8080/v1; repeat it for several endpoints of one model."),
    backend_option: list[str] = typer.Option([], "--backend-option", "-B", help="key=value for the backend, e.g. -B n_threads=2, -B concurrency=16, -B n_params=8e9."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name", help="The model's name in requests (default: a short form, e.g. gemma-3-270m)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="OOMLAB_API_KEY", show_envvar=True, help="Require 'Authorization: Bearer KEY' on /v1 routes (401 otherwise)."),
    max_tokens: Optional[float] = typer.Option(None, "--max-tokens", help="Cap per request: tokens (prompt + completion, every sample, verifier and judge). Requests may lower it, never raise it."),
    max_usd: Optional[float] = typer.Option(None, "--max-usd", help="Cap per request: dollars at the configured price."),
    max_flops: Optional[float] = typer.Option(None, "--max-flops", help="Cap per request: FLOPs (needs model facts)."),
    max_joules: Optional[float] = typer.Option(None, "--max-joules", help="Cap per request: joules (measured or estimated energy)."),
    default_budget: int = typer.Option(4, "--default-budget", min=1, help="Budget of a strategy named without one (majority:MODEL)."),
    max_budget: int = typer.Option(64, "--max-budget", min=1, help="Largest budget a request may ask for (400 above it)."),
    default_max_tokens: int = typer.Option(256, "--default-max-tokens", min=1, help="max_tokens of a request that gives none."),
    max_completion_tokens: int = typer.Option(4096, "--max-completion-tokens", min=1, help="Largest max_tokens a request may ask for (400 above it)."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", min=1, help="Largest request body (400 above it)."),
    max_pending: int = typer.Option(256, "--max-pending", min=1, help="Requests waiting or running at once; more get 429."),
    chat_format: str = typer.Option("auto", "--chat-format", help="How chat messages reach the model: auto (plain for the embedded base model, chat upstream), plain, gemma, chat."),
    keepalive: float = typer.Option(5.0, "--keepalive", min=0.01, help="Seconds between SSE keep-alive comments while a strategy works."),
    usd_per_hour: Optional[float] = typer.Option(None, help="Dollars per hour of device time (default 2.0, a user setting)."),
    usd_per_m_prompt: Optional[float] = typer.Option(None, help="Dollars per million prompt tokens (overrides --usd-per-hour)."),
    usd_per_m_completion: Optional[float] = typer.Option(None, help="Dollars per million completion tokens."),
    tdp_watts: Optional[float] = typer.Option(None, help="Device TDP for the energy estimate when no counter is readable (50% of it is charged)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level: warning, info (one line per request), debug."),
) -> None:
    """Serve the runner behind an OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models, /health.

    A client names a strategy and a budget in the model name (see below) and gets the answer; its
    [bold]usage[/bold] counts every token the request cost (all samples, the verifier's and the
    judge's), and an [bold]oomlab[/bold] object beside it carries the rest of the books: FLOPs,
    joules (measured or estimated, labelled), dollars, human time, samples drawn and served from
    the cache, the strategy and a trace id. Every sample lands in --db, one run per session, so
    `oomlab show RUN` and `oomlab report RUN` read what the server did; an identical seeded request
    is served from the cache. Streaming (stream: true) sends greedy/sample tokens as they are
    decoded and keep-alives while other strategies work.
    """
    try:
        import uvicorn

        from oomlab.serve.app import create_app
        from oomlab.serve.protocol import CHAT_FORMATS
        from oomlab.serve.runner import ServeRunner, ServeSettings
    except ImportError as e:
        raise ConfigError(f"oomlab serve needs FastAPI and uvicorn: pip install 'oomlab[server]' ({e})") from None
    from oomlab.caps import Caps
    from oomlab.energy import DEFAULT_TDP_WATTS
    from oomlab.ledger import Pricing

    if chat_format not in CHAT_FORMATS:
        raise ConfigError(f"unknown chat format '{chat_format}'; valid chat formats: {', '.join(CHAT_FORMATS)}")
    if api_key is not None and not api_key.strip():
        raise ConfigError("--api-key (or OOMLAB_API_KEY) is empty")
    caps = Caps(tokens=max_tokens, usd=max_usd, flops=max_flops, joules=max_joules)
    bopts = _pairs(backend_option)
    if model:
        bopts["model"] = model
    if base_url:
        bopts["base_url"] = base_url[0] if len(base_url) == 1 else list(base_url)
    if usd_per_m_prompt is not None or usd_per_m_completion is not None:
        pricing = Pricing(None, usd_per_m_prompt, usd_per_m_completion)
    else:
        pricing = Pricing(2.0 if usd_per_hour is None else usd_per_hour)
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    settings = ServeSettings(
        db=db, backend=backend, backend_options=bopts, served_name=served_model_name, pricing=pricing,
        tdp_watts=DEFAULT_TDP_WATTS if tdp_watts is None else tdp_watts, caps=caps, default_budget=default_budget,
        max_budget=max_budget, default_max_tokens=default_max_tokens, max_completion_tokens=max_completion_tokens,
        chat_format=chat_format, max_body_bytes=max_body_bytes, max_pending=max_pending, keepalive_s=keepalive,
        api_key=api_key.strip() if api_key else None, host=host, port=actual_port,
    )
    try:
        with console.status(f"loading backend [bold]{backend}[/bold] ..."):
            runner = ServeRunner(settings)
    except BaseException:
        sock.close()
        raise
    try:
        url_host = f"[{host}]" if ":" in host else host
        console.print(
            f"serving [bold]{runner.names[0]}[/bold] ({runner.backend.model_id}) at "
            f"[bold]http://{url_host}:{actual_port}/v1[/bold] · run [bold]{runner.run_id}[/bold] · db {db} · "
            f"energy {runner.meter.method} · {pricing.describe()}"
            + (f" · caps per request: {', '.join(f'{k} {v:g}' for k, v in caps.items())}" if caps else ""),
            highlight=False, soft_wrap=True)
        if api_key is None and host not in LOOPBACK:
            err_console.print(f"[yellow]warning: listening on {host} without --api-key: anyone who can reach it can "
                              "spend compute on this machine[/yellow]")

        def stopped() -> None:
            console.print(f"stopped · run [bold]{runner.run_id}[/bold] is in {db}: `oomlab show {runner.run_id} "
                          f"--db {db}`", highlight=False, soft_wrap=True)

        config = uvicorn.Config(create_app(runner, on_stop=stopped), log_level=log_level,
                                access_log=log_level in ("info", "debug"), timeout_graceful_shutdown=30, lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down gracefully and re-raised it; the run is closed below
    finally:
        sock.close()
        runner.close()

