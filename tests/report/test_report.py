"""`oomlab fit`, `compare`, `exchange` and `report` on a real run of the embedded model.

The HTML report is opened in headless Chromium through the DevTools protocol (over
``--remote-debugging-pipe``: NUL-delimited JSON on file descriptors 3 and 4, so no websocket
package is needed): no console errors, every image decodes, and a screenshot is taken.
"""

from __future__ import annotations

import base64
import fcntl
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
from html import escape, unescape
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from oomlab.analysis.run_fitting import ORACLE_NOTE, fit_run
from oomlab.report.fit_tables import fmt
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig

pytestmark = pytest.mark.slow

N_BOOT = "200"


def oomlab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("oomlab")
    cmd = [exe] if exe else [sys.executable, "-c", "from oomlab.cli import main; main()"]
    out = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity: --json must be plain JSON."""
    def bad(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, embedded_backend):
    """Run A: greedy, majority, best-of-n (oracle) on 6 problems, N=8. Run B: greedy and majority on the
    same problems and seeds; every sample comes from the cache, so it costs nothing."""
    folder = tmp_path_factory.mktemp("report")
    db = folder / "r.db"
    store = Store(db)
    a = Sweep(SweepConfig(problems=6, n=8, strategies=["greedy", "majority", "best-of-n"]), store,
              backend=embedded_backend).run()
    b = Sweep(SweepConfig(problems=6, n=8, strategies=["greedy", "majority"]), store, backend=embedded_backend).run()
    assert b.drawn == 0
    store.close()
    return folder, db, a.run_id, b.run_id


@pytest.fixture(scope="module")
def fit_json(runs):
    folder, db, run, _ = runs
    return strict_json(oomlab("fit", run, "--db", str(db), "--json", "--n-boot", N_BOOT).stdout)


@pytest.fixture(scope="module")
def report_html(runs):
    folder, db, run, _ = runs
    path = folder / "report.html"
    out = strict_json(oomlab("report", run, "-o", str(path), "--db", str(db), "--n-boot", N_BOOT, "--json").stdout)
    assert out["output"] == str(path) and out["figures"] >= 2
    return path


def embedded_json(html: str, element_id: str):
    m = re.search(rf'<script type="application/json" id="{re.escape(element_id)}">(.*?)</script>', html, re.S)
    assert m, f"no JSON block #{element_id} in the report"
    return strict_json(m.group(1))


# ----------------------------------------------------------------------------- fit
def test_fit_json_covers_every_strategy(runs, fit_json) -> None:
    _, _, run, _ = runs
    assert fit_json["run_id"] == run and fit_json["compute_unit"] == "FLOPs"
    by_key = {s["strategy"]: s for s in fit_json["strategies"]}
    assert list(by_key) == ["greedy", "majority", "best-of-n"]
    laws = {k: [f["law"] for f in s["fits"]] for k, s in by_key.items()}
    assert laws["best-of-n"] == ["logistic", "coverage", "error-power-law"]  # coverage law for the oracle only
    assert laws["majority"] == ["logistic", "error-power-law"]
    assert by_key["best-of-n"]["oracle"] and by_key["best-of-n"]["oracle_note"] == ORACLE_NOTE
    # one rung: every fit is refused, with the reason instead of numbers
    for f in by_key["greedy"]["fits"]:
        assert f["fit"] is None and "too few rungs" in f["refused"]
    for s in fit_json["strategies"]:
        for f in s["fits"]:
            assert (f["fit"] is None) != (f["refused"] is None)
            if f["fit"] is not None:  # every fit carries its extrapolation check, even when it cannot run
                assert f["fit"]["holdout_check"]["status"] in ("passed", "failed", "not possible")
                assert f["fit"]["extrapolation"] in ("checked", "unreliable", "unchecked")
            for r in f["reach"]:
                assert (r["compute"] is None) == (r["refused"] is not None)
                if r["compute"] is not None and r["extrapolated_ooms"] > 0:
                    assert "assumes" in r["note"]
    d = fit_json["difficulty"]
    assert d is not None or fit_json["difficulty_refused"]
    if d is not None:
        assert sum(d["bins"]["counts"]) == 6 and "best-of-n" in d["excluded_oracles"]


def test_fit_json_is_fit_run_in_process(runs, fit_json) -> None:
    """The CLI prints exactly what the library computes (seeded bootstrap: deterministic)."""
    _, db, run, _ = runs
    store = Store(db)
    try:
        mine = fit_run(store, run, n_boot=int(N_BOOT)).to_dict()
    finally:
        store.close()
    assert json.loads(json.dumps(mine)) == fit_json


def test_fit_table_shows_refusals(runs) -> None:
    _, db, run, _ = runs
    out = oomlab("fit", run, "--db", str(db), "--n-boot", "50").stdout
    assert "refused" in out and "compute-optimal by difficulty" in out and "R²" in out


# ----------------------------------------------------------------------------- report
def test_report_fits_equal_fit_json(runs, fit_json, report_html) -> None:
    _, _, run, _ = runs
    html = report_html.read_text()
    assert embedded_json(html, f"fits-{run}") == fit_json
    text = unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)))
    shown = 0
    for s in fit_json["strategies"]:
        for f in s["fits"]:
            if f["fit"] is None:
                assert f["refused"] in text
                continue
            for name, value in f["fit"]["params"].items():
                assert f"{name} = {fmt(value)}" in text  # the same number, formatted as `oomlab fit` prints it
                shown += 1
            assert fmt(f["fit"]["goodness_of_fit"]["r2"]) in text
            assert f["fit"]["holdout_check"]["summary"] in text  # the extrapolation check, as the CLI prints it
    assert shown >= 3
    assert "held-out check" in text and "Wilson score" in text  # the greedy rung's interval says what it is


def test_report_is_self_contained_and_labelled(runs, report_html) -> None:
    _, db, run, _ = runs
    html = report_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(http" not in html and "<link" not in html
    assert html.count("data:image/png;base64,") >= 2
    # every row of the oracle's table carries the oracle note (4 rungs), plus its fits and plot caption
    assert html.count(ORACLE_NOTE) >= 4 + 3
    store = Store(db)
    try:
        info, totals = store.run(run), store.run_totals(run)
    finally:
        store.close()
    if not totals.energy_measured:
        assert html.count('<span class="est">estimated</span>') >= 4  # totals (J, kWh) and every curve table
    assert f"{totals.samples:,}" in html
    assert escape(json.dumps(info.config, indent=2, sort_keys=True)) in html  # the run's full configuration


def test_report_of_two_runs_with_training_compute(runs) -> None:
    folder, db, a, b = runs
    path = folder / "two.html"
    out = strict_json(oomlab("report", a, b, "-o", str(path), "--db", str(db), "--n-boot", "50",
                             "--train-flops", "1e20", "--train-flops", "1e21", "--json").stdout)
    html = path.read_text()
    assert out["runs"] == [a, b]
    assert "Train-time vs test-time compute" in html and f'id="fits-{b}"' in html
    er = embedded_json(html, "exchange-rate")
    assert er["models"][0].endswith(f"({a}, majority)")
    # the same curve at two training budgets: training compute buys nothing, the slope is 0
    assert er["slope"] == pytest.approx(0.0, abs=1e-9)
    assert er["test_compute_unit"] == "FLOPs" and "test-time FLOPs" in html


def test_report_refuses_mismatched_train_flops(runs) -> None:
    folder, db, a, b = runs
    out = oomlab("report", a, b, "-o", str(folder / "x.html"), "--db", str(db), "--train-flops", "1e20", check=False)
    assert out.returncode == 1 and "one value per run" in out.stderr and "Traceback" not in out.stderr


# ----------------------------------------------------------------------------- compare / exchange
def test_compare_json(runs) -> None:
    _, db, a, b = runs
    out = strict_json(oomlab("compare", a, b, "--db", str(db), "--train-tokens-a", "6e12", "--train-tokens-b", "6e12",
                             "--ratio", "1", "--n-boot", "100", "--json").stdout)
    assert out["paired"] is True  # same problems: paired bootstrap
    assert out["small"]["run_id"] == a and out["large"]["strategy"] == "greedy"
    assert out["small"]["train_flops"] == pytest.approx(6 * out["small"]["params"] * 6e12)
    rows = out["comparisons"]
    assert [r["strategy"] for r in rows] == ["greedy", "majority"]  # the oracle is left out by default
    for r in rows:
        assert r["refused"] is None and r["ratio"] == 1.0
        assert r["winner"] in ("small", "large", "tie", "no clear winner")
        assert r["paired"] and r["interval_method"].startswith("paired bootstrap")
    # same model on both sides: the small model can afford exactly the large one's greedy tokens
    assert rows[0]["test_time_multiplier"] == pytest.approx(1.0)


def test_compare_needs_training_tokens(runs) -> None:
    _, db, a, b = runs
    out = oomlab("compare", a, b, "--db", str(db), check=False)
    assert out.returncode == 1 and "--train-tokens-a" in out.stderr and "Traceback" not in out.stderr


def test_exchange_json(runs) -> None:
    _, db, a, b = runs
    out = strict_json(oomlab("exchange", a, b, "--train-flops", "1e20", "--train-flops", "1e21", "--db", str(db),
                             "--n-boot", "50", "--json").stdout)
    assert out["slope"] == pytest.approx(0.0, abs=1e-9) and len(out["models"]) == 2
    assert out["test_compute_unit"] == "FLOPs"


# ----------------------------------------------------------------------------- browser
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


class PipeDevTools:
    """The Chrome DevTools protocol over --remote-debugging-pipe: JSON messages ending in NUL,
    written to the browser's fd 3 and read from its fd 4."""

    def __init__(self, exe: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # runs in the child before exec: the pipes become fds 3 and 4
            # move both out of the way first (either may already be 3 or 4), then dup2, which
            # leaves 3 and 4 inheritable across exec
            r, w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=wire_fds,  # the dup2'ed fds 3, 4 are inheritable; Python's own fds are not
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium over the DevTools pipe")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe: {self.proc.stderr.read().decode()[-2000:]}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read_message(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def console_errors(events: list[dict]) -> list[str]:
    errors = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            errors.append(json.dumps(p.get("exceptionDetails", {}))[:500])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(json.dumps(p.get("args", []))[:500])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
    return errors


def test_report_in_headless_chromium(report_html, tmp_path) -> None:
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (CI installs it: apt-get install chromium)")
    browser = PipeDevTools(exe, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1200, "height": 3000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": report_html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        images = browser.send("Runtime.evaluate", {
            "expression": "JSON.stringify([...document.images].map(i => "
                          "({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})))",
            "returnByValue": True}, session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=120)["data"]
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)  # flush late console events
    finally:
        browser.close()

    assert console_errors(browser.events) == []
    images = json.loads(images)
    assert len(images) >= 2
    missing = [i["alt"] for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert missing == [], f"images that did not decode: {missing}"

    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot))
    keep = os.environ.get("OOMLAB_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (3000, 1200)
    assert float(np.std(pixels[..., :3])) > 0.05  # not a blank page
    assert not math.isnan(float(pixels.mean()))


def test_a_report_of_several_runs_reads_each_run_once(runs) -> None:
    """render_report loads each run once (load_run) and hands RunData to every analysis and table."""
    from collections import Counter

    from oomlab.report.html import render_report

    folder, db, a, b = runs
    reads: Counter = Counter()

    class Counting(Store):
        def attempts(self, run_id):
            reads[run_id] += 1
            return super().attempts(run_id)

    store = Counting(db)
    try:
        html, summary = render_report(store, [a, b, a], n_boot=20, train_flops=[1e20, 1e21, 1e22])
    finally:
        store.close()
    assert summary["runs"] == [a, b, a] and "Train-time vs test-time compute" in html
    assert reads == Counter({a: 2, b: 1})  # once per listed run: nothing looked up again
