"""`oomlab ooms convert ...`: unit conversions between tokens, time, watts, dollars and clusters."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.common import console, print_json
from oomlab.cli.ooms.common import (
    DataOpt,
    DaysPerWeekOpt,
    HoursPerDayOpt,
    HumanTpsOpt,
    JsonOpt,
    PaceOpt,
    command_pace,
    convert_app,
    figure,
    print_pace,
    reference_data,
    wants_json,
)
from oomlab.errors import ConfigError
from oomlab.forecast import conversions as conv
from oomlab.forecast.pace import HumanPace, human_time_to_tokens, tokens_to_human_time

# ---------------------------------------------------------------- convert


@convert_app.command("tokens")
def convert_tokens(
    ctx: typer.Context,
    tokens: Annotated[float | None, typer.Argument(help="Thinking tokens; alone, the essay's table.")] = None,
    hours: Annotated[float | None, typer.Option(help="Hours of human thinking to turn into tokens instead.")] = None,
    pace: PaceOpt = None,
    human_tokens_per_second: HumanTpsOpt = None,
    hours_per_day: HoursPerDayOpt = None,
    days_per_week: DaysPerWeekOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Tokens ↔ human working time at one human pace (default: SA ch. I's 100 tokens/minute, 8 h days, 40 h weeks)."""
    human = command_pace(ctx, pace, human_tokens_per_second, hours_per_day, days_per_week)
    as_json = wants_json(ctx, json_out)
    if hours is not None and tokens is not None:
        raise ConfigError("give tokens or --hours, not both")
    if hours is not None:
        n = human_time_to_tokens(hours, human)
        if as_json:
            print_json({"hours": hours, "tokens": n, "workdays": hours / human.hours_per_day,
                        "human_pace": human.as_dict()})
            return
        console.print(f"{hours:g} hours of human thinking ≈ {n:,.0f} tokens "
                      f"({hours / human.hours_per_day:.3g} working days)")
        print_pace(human)
        return
    if tokens is not None:
        t = tokens_to_human_time(tokens, human)
        if as_json:
            print_json(t.as_dict())
            return
        console.print(f"{tokens:,.0f} tokens ≈ {t.phrase()} of human work")
        print_pace(human)
        return
    rows = conv.thinking_time_table(human)
    if as_json:
        print_json({"human_pace": human.as_dict(),
                    "rows": [{"order": r.order, "tokens": r.tokens, "essay_says": r.essay_says,
                              "hours": r.human_time.hours, "phrase": r.human_time.phrase()} for r in rows]})
        return
    table = Table(title="Thinking tokens as human working time (essay: Aschenbrenner 2024, SA ch. I)")
    for name in ("tokens", "e.g.", "essay says", "computed"):
        table.add_column(name)
    for r in rows:
        table.add_row(r.order, f"{r.tokens:,.0f}", r.essay_says, r.human_time.phrase())
    console.print(table)
    print_pace(human)


@convert_app.command("watts")
def convert_watts(
    ctx: typer.Context,
    j_per_token: Annotated[float | None, typer.Option("--j-per-token", help="Energy per token, J.")] = None,
    watts: Annotated[float | None, typer.Option(help="A power budget, W, to turn into J/token instead.")] = None,
    pace: PaceOpt = None,
    human_tokens_per_second: HumanTpsOpt = None,
    hours_per_day: HoursPerDayOpt = None,
    days_per_week: DaysPerWeekOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """J/token ↔ human-equivalent watts: the power to produce tokens at a human's pace."""
    human = command_pace(ctx, pace, human_tokens_per_second, hours_per_day, days_per_week)
    if (j_per_token is None) == (watts is None):
        raise ConfigError("give exactly one of --j-per-token or --watts")
    if j_per_token is not None:
        result = {"joules_per_token": j_per_token, "human_equivalent_watts": conv.human_equivalent_watts(j_per_token, human)}
    else:
        assert watts is not None
        result = {"human_equivalent_watts": watts, "joules_per_token": conv.joules_per_token_at(watts, human)}
    result["watt_hours_per_workday"] = result["human_equivalent_watts"] * human.hours_per_day
    result["brain_watts"] = conv.HUMAN_BRAIN_WATTS
    if wants_json(ctx, json_out):
        print_json({**result, "human_pace": human.as_dict()})
        return
    console.print(f"{figure(result['joules_per_token'])} J/token at {human.tokens_per_second:.3g} tokens/s = "
                  f"{figure(result['human_equivalent_watts'])} W per human-equivalent, "
                  f"{figure(result['watt_hours_per_workday'])} Wh per {human.hours_per_day:g}-hour day "
                  f"(a brain: ~{conv.HUMAN_BRAIN_WATTS:g} W)")
    print_pace(human)


def _quantity(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, float | int):
        return escape(str(v))
    if float(v).is_integer() and abs(v) < 1e13:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _print_dict(title: str, values: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in values.items():
        table.add_row(k.replace("_", " "), _quantity(v))
    console.print(table)


def _show(ctx: typer.Context, json_out: bool, title: str, values: dict[str, Any], pace: HumanPace | None = None) -> None:
    """One conversion's result: JSON when asked for, else a two-column table; the pace it used, if any."""
    if wants_json(ctx, json_out):
        print_json(values if pace is None else {**values, "human_pace": pace.as_dict()})
        return
    _print_dict(title, values)
    if pace is not None:
        print_pace(pace)


@convert_app.command("fleet")
def convert_fleet(
    ctx: typer.Context,
    gpus: Annotated[float, typer.Option(help="GPUs serving.")] = conv.SEED_GPUS,
    watts: Annotated[float, typer.Option(help="All-in watts per GPU.")] = conv.SEED_WATTS_PER_GPU,
    streams: Annotated[float, typer.Option(help="Concurrent generation streams.")] = conv.SEED_STREAMS,
    speed: Annotated[float, typer.Option(help="Each stream's speed relative to a human.")] = conv.SEED_SPEED_VS_HUMAN,
    pace: PaceOpt = None,
    human_tokens_per_second: HumanTpsOpt = None,
    hours_per_day: HoursPerDayOpt = None,
    days_per_week: DaysPerWeekOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A serving fleet in human terms (defaults: the seed estimate, 0.8 W per human-equivalent at any pace)."""
    human = command_pace(ctx, pace, human_tokens_per_second, hours_per_day, days_per_week)
    est = conv.fleet_estimate(gpus, watts, streams, speed, human)
    _show(ctx, json_out, "Serving fleet in human-equivalents", est.as_dict(), human)


@convert_app.command("price-energy")
def convert_price_energy(
    ctx: typer.Context,
    usd_per_gpu_hour: Annotated[float, typer.Option(help="Rental price per GPU-hour.")] = conv.SEED_USD_PER_GPU_HOUR,
    watts: Annotated[float, typer.Option(help="All-in watts per GPU.")] = conv.SEED_WATTS_PER_GPU,
    usd_per_million: Annotated[float, typer.Option(help="Price per million tokens.")] = conv.SEED_USD_PER_MILLION_TOKENS,
    pace: PaceOpt = None,
    human_tokens_per_second: HumanTpsOpt = None,
    hours_per_day: HoursPerDayOpt = None,
    days_per_week: DaysPerWeekOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Energy behind a token price: GPU-hours per M tokens × watts, per hour of human thinking replaced.

    The hours a million tokens replace come from the human pace: 1e6 ÷ (tokens/s × 3600)
    hours of thinking. The seed's "750 hours per million tokens" is the month-per-million
    preset (a calendar month of round-the-clock thinking), which gives its 2.5 W.
    """
    human = command_pace(ctx, pace, human_tokens_per_second, hours_per_day, days_per_week)
    est = conv.energy_from_price(usd_per_gpu_hour, watts, usd_per_million, human)
    _show(ctx, json_out, "Energy implied by a token price", est.as_dict(), human)


@convert_app.command("cost")
def convert_cost(
    ctx: typer.Context,
    usd_per_gpu_hour: Annotated[float, typer.Option(help="Rental price per GPU-hour.")] = conv.SEED_USD_PER_GPU_HOUR,
    tokens_per_second: Annotated[float | None, typer.Option(help="Throughput per GPU, tokens/s.")] = None,
    usd_per_million: Annotated[float | None, typer.Option(help="Price per M tokens, to get the throughput it implies.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Cost per million tokens from $/GPU-hour and throughput (or the throughput a price implies)."""
    if (tokens_per_second is None) == (usd_per_million is None):
        raise ConfigError("give exactly one of --tokens-per-second or --usd-per-million")
    if tokens_per_second is not None:
        result = {"usd_per_gpu_hour": usd_per_gpu_hour, "tokens_per_second": tokens_per_second,
                  "usd_per_million_tokens": conv.usd_per_million_tokens(usd_per_gpu_hour, tokens_per_second)}
    else:
        assert usd_per_million is not None
        result = {"usd_per_gpu_hour": usd_per_gpu_hour, "usd_per_million_tokens": usd_per_million,
                  "tokens_per_second": conv.tokens_per_second_for_price(usd_per_gpu_hour, usd_per_million)}
    _show(ctx, json_out, "Serving cost", result)


@convert_app.command("cluster")
def convert_cluster(
    ctx: typer.Context,
    gpus: Annotated[float, typer.Option(help="Accelerators in the cluster.")] = 100_000,
    accelerator: Annotated[str, typer.Option(help="Hardware row for unit price, power and FLOP/s.")] = "H100 SXM",
    unit_usd: Annotated[float | None, typer.Option(help="Override the unit price.")] = None,
    all_in_watts: Annotated[float | None, typer.Option(help="Override datacenter watts per GPU.")] = None,
    gpu_share: Annotated[float, typer.Option(help="GPUs' share of cluster cost (SA IIIa: about half).")] = conv.GPU_SHARE_OF_CLUSTER_COST,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cluster size → capex and megawatts (Situational Awareness IIIa's arithmetic)."""
    hw = reference_data(ctx, data).accelerator(accelerator)
    price = unit_usd if unit_usd is not None else hw.unit_usd
    power = all_in_watts if all_in_watts is not None else hw.all_in_watts
    if price is None:
        raise ConfigError(f"{hw.accelerator} has no sourced unit price; pass --unit-usd")
    if power is None:
        raise ConfigError(f"{hw.accelerator} has no sourced all-in power; pass --all-in-watts (TDP is {hw.tdp_watts:g} W)")
    est = conv.cluster_estimate(gpus, price, power, gpu_share, hw.peak_flops)
    if wants_json(ctx, json_out):
        print_json({"accelerator": hw.accelerator, **est.as_dict(), "source": hw.source})
        return
    _print_dict(f"Cluster of {gpus:,.0f} × {hw.accelerator}", est.as_dict())
    console.print(f"[dim]source: {hw.source}[/]")
