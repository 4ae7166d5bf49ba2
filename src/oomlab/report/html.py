"""One self-contained HTML report of one or more runs: figures inline (base64 PNG), tables,
the books, the fits and each run's configuration. No scripts, fonts or styles from the network.

Fits come from :func:`oomlab.analysis.run_fitting.fit_run`, the function behind `oomlab fit`,
and are embedded verbatim as JSON (``<script type="application/json" id="fits-RUN">``), so a
reader or a test can check that the report and `oomlab fit --json` say the same thing.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Sequence

from oomlab.analysis.curves import Curve, run_curves
from oomlab.analysis.intervals import describe_methods
from oomlab.analysis.run_fitting import ORACLE_NOTE, RunFits, curve_compute, exchange_models, fit_run
from oomlab.errors import ConfigError, OomlabError
from oomlab.numbers import human_time, json_safe
from oomlab.report.fit_tables import (
    CHECK_CAPTION,
    REACH_CAPTION,
    difficulty_table_rows,
    fit_rows,
    fmt,
    reach_rows,
)
from oomlab.store import RunData, RunInfo, Store, load_run

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1150px; padding: 1.5em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccd; padding-bottom: 0.2em;
margin-top: 2em; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #d0d4dc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #eef1f6; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: 0.9em; padding-top: 0.3em; }
.oracle { background: #fff1c2; color: #6b4e00; border-radius: 3px; padding: 0 0.3em; font-size: 0.85em;
          white-space: nowrap; }
.est { background: #e8eefc; color: #24407a; border-radius: 3px; padding: 0 0.3em; font-size: 0.85em; }
.refused { background: #fff4d6; color: #7a5200; }
.unreliable { background: #fde2e2; color: #8a1111; font-weight: bold; } .assumes { color: #6b4e00; font-size: 0.9em; }
figure { margin: 0.5em 0 1.2em; } figure img { max-width: 100%; height: auto; border: 1px solid #e2e4e8; }
figcaption { color: #555; font-size: 0.88em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; } .grid figure { flex: 1 1 480px; max-width: 560px; }
pre { background: #f6f7f9; padding: 0.8em; overflow-x: auto; font-size: 0.85em; border: 1px solid #e2e4e8; }
.meta { color: #444; } .note { color: #555; font-size: 0.9em; }
"""


@dataclass
class _Figures:
    folder: Path
    count: int = 0

    def next_path(self) -> Path:
        self.count += 1
        return self.folder / f"figure{self.count}.png"


def _img(path: str | Path, alt: str, caption: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">{cap}</figure>'


def _oracle_badge(oracle: bool) -> str:
    return f' <span class="oracle">{ORACLE_NOTE}</span>' if oracle else ""


def _est(measured: bool) -> str:
    return "" if measured else ' <span class="est">estimated</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "", numeric_from: int = 99) -> str:
    """Cells are HTML already (escape text before passing it)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def oracle_labelled(curves: Sequence[Curve]) -> list[Curve]:
    """Curves whose legend labels carry the oracle note (for the plot)."""
    out = []
    for c in curves:
        if c.oracle:
            label = c.label.replace("(oracle)", "").strip()
            c = replace(c, label=f"{label} ({ORACLE_NOTE})")
        out.append(c)
    return out


def _summary(info: RunInfo) -> str:
    rows = [("model", info.model_id), ("backend", info.backend), ("task", info.task),
            ("created", info.created_at), ("finished", info.finished_at or "—"), ("status", info.status),
            ("strategies", ", ".join(info.config.get("strategies", []))),
            ("N (samples per problem)", str(info.config.get("n"))), ("ladder", str(info.config.get("ladder"))),
            ("problems", str(info.config.get("problems"))), ("energy", info.energy_method),
            ("pricing", info.pricing.describe()),
            ("samples", f"{info.samples_drawn} drawn, {info.samples_reused} reused from cache"),
            ("model parameters", f"{info.facts.n_params:,}" if info.facts.n_params else "unknown")]
    return _table(["run", escape(info.id)], [[escape(k), escape(v)] for k, v in rows])


def _totals(run: RunData) -> str:
    info, t = run.info, run.totals()
    est = _est(t.energy_measured)
    rows = [("samples", f"{t.samples:,}"), ("prompt tokens (a shared prompt counted once)", f"{t.prompt_tokens:,.0f}"),
            ("completion tokens", f"{t.completion_tokens:,.0f}"), ("FLOPs", fmt(t.flops, 3)),
            ("seconds", f"{t.seconds:,.1f}"), (f"joules{est}", f"{t.joules:,.0f}"),
            (f"kWh{est}", fmt(t.joules / 3.6e6, 3)), ("dollars", f"${t.dollars:.4g}"),
            ("human-time equivalent (100 tokens/min)", human_time(t.human_minutes))]
    cap = f"energy {escape(info.energy_method)}; dollars at {escape(info.pricing.describe())}"
    return _table(["ledger total", "value"], [[k if "span" in k else escape(k), escape(v)] for k, v in rows],
                  cap, numeric_from=1)


def _curve_table(c: Curve, energy_method: str) -> str:
    header = ["strategy", "k", "accuracy ± 95% CI", "tokens", "FLOPs", f"joules{_est(c.energy_measured)}",
              "dollars", "human time"]
    rows = []
    for r in c.rungs:
        rows.append([escape(c.label) + _oracle_badge(c.oracle), str(r.k),
                     f"{100 * r.accuracy:.1f}% [{100 * r.lo:.1f}, {100 * r.hi:.1f}]", f"{r.tokens:,.0f}",
                     fmt(r.flops, 3), f"{r.joules:.3g}", f"{r.dollars:.2g}", human_time(r.human_minutes)])
    cap = (f"means per problem; 95% intervals: {escape(describe_methods([r.interval for r in c.rungs]))}; "
           f"energy {escape(energy_method)}")
    return _table(header, rows, cap, numeric_from=1)


def _fits_section(fits: RunFits, figures: _Figures) -> str:
    parts = ["<h3>Fits</h3>"]
    floor = "free" if fits.logistic_floor is None else fmt(fits.logistic_floor)
    rows = []
    for r in fit_rows(fits):
        who = escape(r.label) + _oracle_badge(r.oracle)
        law = f"{escape(r.law)}<br><span class='note'>vs {escape(r.x_axis)}</span>"
        if r.refused:
            rows.append([who, law, f'<span class="refused">refused: {escape(r.refused)}</span>', "", "", ""])
        else:
            params = "<br>".join(escape(f"{n} = {v} {iv}".rstrip()) for n, v, iv in r.params)
            check = escape(r.check)
            if r.check_status == "failed":
                check = f'<span class="unreliable">{check}</span>'
            rows.append([who, law, params, r.r2, r.rmse, check])
    parts.append(_table(["strategy", "law", "parameters [95% interval]", "R²", "RMSE", "held-out check"], rows,
                        escape(f"intervals: {fits.n_boot} bootstrap refits over {fits.n_problems} problems "
                               f"(seed {fits.seed}); logistic floor {floor}; R² and RMSE on the mean curve. "
                               f"{CHECK_CAPTION}"), numeric_from=3))
    rows = []
    for r in reach_rows(fits):
        value = f'<span class="refused">refused: {escape(r.refused)}</span>' if r.refused else escape(r.compute)
        if r.note:
            cls = "unreliable" if r.extrapolation == "unreliable" else "assumes"
            value += f'<br><span class="{cls}">{escape(r.note)}</span>'
        rows.append([escape(r.label) + _oracle_badge(r.oracle), escape(r.law), r.target, escape(r.basis), value])
    if rows:
        parts.append("<h4>Compute to reach a target</h4>")
        parts.append(_table(["strategy", "law", "target", "basis", "compute needed"], rows, escape(REACH_CAPTION)))
    figs = []
    for s in fits.strategies:
        for law in s.laws:
            if law.curve_fit is None:
                continue
            path = figures.next_path()
            from oomlab.report.fit_plots import plot_fit

            note = f" — {ORACLE_NOTE}" if s.oracle else ""
            xlabel = "samples k" if law.law == "coverage" else f"compute ({law.x_axis})"
            title = f"{s.strategy}: {law.law} fit" + (f"\n({ORACLE_NOTE})" if s.oracle else "")
            plot_fit(law.curve_fit, str(path), title=title, xlabel=xlabel)
            figs.append(_img(path, f"{s.label} {law.law} fit",
                             f"{s.label} · {law.law}: R² {fmt(law.fit['goodness_of_fit']['r2'])}{note}"))
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    parts.append("<h4>Compute-optimal strategy by difficulty</h4>")
    if fits.difficulty is None:
        parts.append(f'<p class="refused">refused: {escape(fits.difficulty_refused or "")}</p>')
    else:
        d = fits.difficulty
        header, rows = difficulty_table_rows(fits)
        excluded = f" Oracles left out: {', '.join(d['excluded_oracles'])}." if d["excluded_oracles"] else ""
        parts.append(_table([escape(h) for h in header], [[escape(c) for c in row] for row in rows],
                            escape(f"Bins by pass@1 ({fits.pass1_source}), hardest first; strategies: "
                                   f"{', '.join(d['strategies'])}.{excluded} {d['note']}.")))
    return "\n".join(parts)


def _two_panel(runs: dict[str, RunData], run_ids: Sequence[str], curves_by_run: dict[str, list[Curve]],
               train_flops: Sequence[float], strategy: str | None, figures: _Figures, unit: str | None = None) -> str:
    from oomlab.analysis.exchange_rate import UnitMismatchError, exchange_rate
    from oomlab.report.exchange_plots import plot_two_panel

    parts = ["<h2>Train-time vs test-time compute</h2>"]
    try:
        models, used = exchange_models(runs, run_ids, train_flops, strategy=strategy, unit=unit,
                                       curves_by_run=curves_by_run)
    except UnitMismatchError as e:  # the rest of the report stands; this section says why it has no numbers
        parts.append(f'<p class="refused">exchange rate refused: {escape(str(e))}</p>')
        return "\n".join(parts)
    path = figures.next_path()
    plot_two_panel(models, str(path), title="train-time vs test-time compute")
    parts.append(_img(path, "two-panel figure", "left: accuracy vs training FLOPs at fixed test compute; "
                                                f"right: accuracy vs test-time compute ({used} per problem) per model"))
    try:
        er = exchange_rate(models)
    except OomlabError as e:
        parts.append(f'<p class="refused">exchange rate refused: {escape(str(e))}</p>')
    else:
        lo, hi = er.slope_interval
        parts.append(f"<p>Iso-accuracy slope {fmt(er.slope, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}] "
                     f"({escape(er.interval_method)}): {escape(er.rate_text)} "
                     f"(test-time compute in {escape(used)} per problem).</p>")
        parts.append(f'<script type="application/json" id="exchange-rate">{_json_block(er.to_dict())}</script>')
    return "\n".join(parts)


def _json_block(obj) -> str:
    """JSON safe to place inside <script>: '</' cannot close the element."""
    return json.dumps(json_safe(obj), sort_keys=True).replace("</", "<\\/")


def render_report(
    store: Store,
    run_ids: Sequence[str],
    *,
    n_boot: int = 1000,
    logistic_floor: float | None = 0.0,
    train_flops: Sequence[float] = (),
    strategy: str | None = None,
    unit: str | None = None,
) -> tuple[str, dict]:
    """The report as one HTML string, and a summary (runs, figures) for scripting."""
    if not run_ids:
        raise ConfigError("give at least one run id")
    if train_flops and len(train_flops) != len(run_ids):
        raise ConfigError(f"--train-flops: give one value per run ({len(run_ids)} runs, {len(train_flops)} values)")
    from oomlab import __version__
    from oomlab.analysis.exchange_rate import check_unit
    from oomlab.report.plot import plot_curves

    if unit is not None:
        check_unit(unit)  # a typo is an error, not a refused section

    runs = [load_run(store, r) for r in run_ids]  # each run read once; everything below works on these
    body, curves_by_run = [], {}
    with tempfile.TemporaryDirectory(prefix="oomlab-report-") as tmp:
        figures = _Figures(Path(tmp))
        for run in runs:
            info = run.info
            curves = run_curves(run, n_boot=max(n_boot, 1))
            curves_by_run[info.id] = curves
            fits = fit_run(run, n_boot=n_boot, logistic_floor=logistic_floor, curves=curves)
            measured = all(c.energy_measured for c in curves)
            path = figures.next_path()
            plot_curves(oracle_labelled(curves), path, title=f"{info.task} · {info.model_id} · run {info.id}",
                        energy_note=f"energy {info.energy_method}")
            body.append(f'<section id="run-{escape(info.id)}"><h2>Run {escape(info.id)} · {escape(info.task)} · '
                        f"{escape(info.model_id)}</h2>")
            body.append(_summary(info))
            body.append(_img(path, f"scaling curves of run {info.id}",
                             f"accuracy vs inference {curve_compute(curves)[0]} per problem, 95% intervals (Wilson for 0/1 rungs, else "
                             "bootstrap); dashed: oracle "
                             f"({ORACLE_NOTE})" + ("" if measured else f"; energy {info.energy_method}")))
            body.append("<h3>The books</h3>" + _totals(run))
            body.append("<h3>Accuracy and cost per rung</h3>")
            body.extend(_curve_table(c, info.energy_method) for c in curves)
            body.append(_fits_section(fits, figures))
            body.append(f'<script type="application/json" id="fits-{escape(info.id)}">'
                        f"{_json_block(fits.to_dict())}</script>")
            body.append("<h3>Configuration</h3><pre>"
                        + escape(json.dumps(info.config, indent=2, sort_keys=True)) + "</pre></section>")
        if train_flops and len(run_ids) >= 2:
            body.append(_two_panel({r.id: r for r in runs}, run_ids, curves_by_run, train_flops, strategy, figures,
                                   unit))
        n_figures = figures.count
    title = "oomlab report · " + ", ".join(run_ids)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    html = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class='meta'>oomlab {escape(__version__)} · written {stamp} · "
            f"{len(run_ids)} run(s). Oracle strategies read the reference answer: they measure coverage (pass@k), "
            "not what a deployed system achieves. Energy is labelled <span class='est'>estimated</span> "
            "wherever it was not read from a counter.</p>"
            + "\n".join(body) + "</body></html>\n")
    return html, {"runs": list(run_ids), "figures": n_figures}
