"""The lab's HTML report: one self-contained file (figures inline) beside the figure PNGs.

What was trained and how (the ladder, its rule, the loss curves), what each model scores at each
test-time budget, and the answers with their intervals: the exchange rate, the compute-equivalent
gains and the lifts over greedy. Oracle rows are marked; a gain past the ladder says so.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from oomlab import __version__
from oomlab.lab.exchange import BASELINE
from oomlab.lab.figure import plot_losses, plot_two_panel
from oomlab.lab.run import CHECK_LABEL, LabResult, strategy_key, summary
from oomlab.lab.summary import budget_text

CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:0 auto;padding:1.5em;color:#1b1b1b;line-height:1.4}
h2{border-bottom:2px solid #ccd;margin-top:1.8em}table{border-collapse:collapse;font-size:.86em;margin:.5em 0 1em}
th,td{border:1px solid #d0d4dc;padding:.22em .55em}th{background:#eef1f6;text-align:left}td.n{text-align:right;
font-variant-numeric:tabular-nums}.oracle{background:#fff1c2}.beyond{color:#7a5200}img{max-width:100%;
border:1px solid #e2e4e8}.note{color:#555;font-size:.9em}"""


def _pct(a: float, lo: float | None = None, hi: float | None = None) -> str:
    s = f"{100 * a:.1f}%"
    return s if lo is None else f"{s} [{100 * lo:.0f}, {100 * hi:.0f}]"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{escape(alt)}</figcaption></figure>'


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f'<td class="n">{escape(c)}</td>' if j else f"<td>{escape(c)}</td>"
                                           for j, c in enumerate(r)) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def figure_strategies(result: LabResult, figure: bool = False) -> list[tuple[str, str]]:
    """(stored key, label) of the sampled strategies shown, the exchange rate's first (the figure's right panel).

    Where the task's checker reads only the problem, best-of-n[check] leads; the oracle's curve is then
    the same curve (the checker is exact), so the figure leaves it out and the tables keep it.
    """
    pts = result.points
    out = [(strategy_key(pts, "majority"), "majority"), (strategy_key(pts, "best-of-n"), "best-of-n[logprob]")]
    check = [k for k in pts[0].curves if k.startswith("best-of-n:") and "scorer=check" in k]
    if check:
        out.insert(0, (check[0], "best-of-n[check]" if figure else CHECK_LABEL))
    if not (check and figure):
        out.append((strategy_key(pts, "best-of-n", "oracle"), "pass"))
    return out


def write_report(result: LabResult, out_dir: str | Path) -> dict[str, Path]:
    """Write figure.png, losses.png, iso-accuracy PNGs, report.html and summary.json (what `oomlab ooms
    --lab` reads) into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ladder = result.ladder
    from oomlab.tasks.base import create_task

    chance = getattr(create_task(ladder.task, **ladder.task_options), "chance", 0.0)
    paths = {"figure": plot_two_panel(result.points, out / "figure.png", figure_strategies(result, figure=True),
                                      title=f"oomlab lab · {ladder.task} · ladder '{ladder.name}' · "
                                            f"{ladder.problems} held-out problems, n={ladder.n}, T={ladder.temperature}"
                                            + ("\ncheck = the task's checker: reads the problem, not the answer "
                                               "(deployable, no oracle)" if ladder.reference_free else ""),
                                      chance=chance, primary=result.primary),
             "losses": plot_losses(result.entries, out / "losses.png")}
    from oomlab.report.exchange_plots import plot_iso_accuracy

    for fmt, er in result.exchange.items():
        if not isinstance(er, str):
            paths[f"iso-{fmt}"] = Path(plot_iso_accuracy(er, str(out / f"iso-accuracy-{fmt}.png")))
    parts = [f"<h1>oomlab lab · {escape(ladder.task)} · ladder '{escape(ladder.name)}'</h1>",
             f"<p class='note'>oomlab {escape(__version__)} · written "
             f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} · {len(result.points)} models · "
             f"{ladder.problems} held-out problems each (never in any training stream) · {ladder.n} samples per "
             f"problem at temperature {ladder.temperature}. Oracle rows read the reference answer: coverage, not a "
             "deployable system.</p>"]
    parts.append("<h2>The ladder</h2>")
    parts.append(f"<p>Rule: target size N* = sqrt(C / (6·{ladder.tokens_per_param:g})) (tokens ≈ "
                 f"{ladder.tokens_per_param:g} × parameters), nearest shape of the table, steps filling the budget; "
                 "training FLOPs counted from the tokens processed, 6N per token plus the attention term.</p>")
    rows = [[e["name"], budget_text(e['budget']), f"{e['train_flops']:.3e}", f"{e['n_params']:,}",
             f"{e['d_model']}×{e['n_layer']}", f"{e['steps']:,}", f"{e['train_tokens']:,}",
             f"{e['train_tokens'] / e['n_params']:.1f}", f"{e['train_seconds']:.0f} s", f"{e['final_loss']:.4f}",
             e["run_id"]] for e in result.entries]
    parts.append(_table(["model", "budget", "train FLOPs", "N (non-emb.)", "d×L", "steps", "tokens", "tokens/N",
                         "train time", "final loss", "sweep run"], rows))
    parts.append(_img(paths["losses"], "training loss on answer tokens vs training FLOPs"))
    parts.append("<h2>Accuracy vs training and test-time compute</h2>")
    parts.append(_img(paths["figure"], "left: accuracy vs training FLOPs at several test-time budgets; right: "
                                       "accuracy vs test-time FLOPs per problem for each model"))
    header = ["model", "greedy"]
    strategies = figure_strategies(result)
    for _, label in strategies:
        header += [f"{label}@1", f"{label}@{ladder.n}"]
    rows, classes = [], []
    for p in result.points:
        g = p.curve(BASELINE)
        row = [p.name, _pct(g.accuracy[0], g.lo[0], g.hi[0])]
        for key, _ in strategies:
            c = p.curve(key)
            row += [_pct(c.accuracy[0], c.lo[0], c.hi[0]), _pct(c.accuracy[-1], c.lo[-1], c.hi[-1])]
        rows.append(row)
        classes.append("")
    parts.append(_table(header, rows, classes))
    guess = (f" With {1 / result.chance:.0f} possible answers a pure guesser has pass@{ladder.n} = "
             f"{100 * (1 - (1 - result.chance) ** ladder.n):.1f}%." if result.chance else "")
    parts.append("<p class='note'>95% intervals: Wilson for a 0/1 column (greedy), percentile bootstrap over "
                 f"problems otherwise. pass = best-of-n with the oracle scorer (coverage).{escape(guess)}"
                 + (" best-of-n[check] selects by the task's own checker, which reads the problem (its numbers "
                    "and target) and never the reference answer: a deployable verifier; being exact, it picks "
                    "a correct sample whenever the draw has one, so its curve is the oracle's, bought without "
                    "one." if ladder.reference_free else "") + "</p>")
    parts.append("<h2>Exchange rate</h2>")
    parts.append(f"<p class='note'>Along iso-accuracy lines of {escape(result.exchange_label or 'majority')} "
                 "(the deployable strategy the ladder leads with; never an oracle).</p>")
    for fmt, er in result.exchange.items():
        if isinstance(er, str):
            parts.append(f"<p class='beyond'>{escape(fmt)}: {escape(er)}</p>")
            rows = [[b.smaller, b.larger, f"{b.train_ooms:.2f}", f"{b.test_ooms:.2f}", f"> {b.bound:.2f}"]
                    for b in result.bounds.get(fmt, [])]
            if rows:
                parts.append("<p class='note'>Neighbouring models whose curves never meet (95% intervals apart) bound "
                             "the rate from below: the cheaper one, given all its test-time compute, stays under the "
                             "dearer one's cheapest rung.</p>" + _table(
                                 ["cheaper model", "dearer model", "training OOMs apart", "test OOMs given",
                                  "test OOMs per training OOM"], rows))
            continue
        lo, hi = er.slope_interval
        parts.append(f"<p><b>{escape(fmt)}</b>: slope {er.slope:.3f} [{lo:.3f}, {hi:.3f}] ({escape(er.interval_method)}, "
                     f"{er.n_points} iso-accuracy points): {escape(er.rate_text)}; "
                     f"{er.test_ooms_per_train_oom:.2f} OOMs of test-time compute per OOM of training compute.</p>")
        if f"iso-{fmt}" in paths:
            parts.append(_img(paths[f"iso-{fmt}"], f"iso-accuracy lines, {fmt}"))
    parts.append("<h2>Compute-equivalent gains</h2><p class='note'>The factor of extra training compute the "
                 "greedy baseline (its compute-optimal frontier over the ladder) would need to match; test cost = "
                 "test-time FLOPs per problem over the baseline's. Paired bootstrap over problems.</p>")
    for what, gains in result.gains.items():
        rows = [[g.what, _pct(g.accuracy), _pct(g.baseline_accuracy), g.text, f"{g.test_cost:.3g}×"] for g in gains]
        parts.append(f"<h3>{escape(what)}</h3>" + _table(["model", "accuracy", "greedy", "CEG", "test cost"], rows,
                                                          ["beyond" if g.status != "within" else "" for g in gains]))
    parts.append("<h2>Lifts over greedy</h2>")
    rows = [[lf.model, lf.strategy, str(lf.k), f"{100 * lf.difference:+.1f} pts [{100 * lf.lo:+.1f}, {100 * lf.hi:+.1f}]",
             "yes" if lf.excludes_zero else "no"] for lf in result.lifts]
    parts.append(_table(["model", "strategy", "k", "minus greedy", "interval excludes 0"], rows,
                        ["oracle" if lf.oracle else "" for lf in result.lifts]))
    data = json.dumps(summary(result), sort_keys=True, default=str).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="lab-summary">{data}</script>')
    html = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>oomlab lab</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
    paths["report"] = out / "report.html"
    paths["report"].write_text(html)
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(summary(result), indent=1, default=str))
    return paths
