"""`oomlab ooms` through Typer's test runner: JSON parses, tables print, errors name file and line."""

from __future__ import annotations

import json
import struct
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oomlab.cli.ooms import app
from oomlab.errors import DatasetError, RunNotFoundError
from oomlab.ledger import LedgerTotals

runner = CliRunner()


def run_json(*args: str):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "count" in result.output and "project" in result.output and "convert" in result.output


def test_count_gpt2_to_gpt4():
    out = run_json("count", "GPT-2", "GPT-4")
    assert 3.5 <= out["physical_ooms"]["best"] <= 4.0
    assert out["years"] == pytest.approx(4.08, abs=0.01)
    table = runner.invoke(app, ["count", "GPT-2", "GPT-4"])
    assert table.exit_code == 0 and "3.72" in table.output


def test_count_effective_adds_algorithms_and_unhobbling():
    out = run_json("count", "GPT-2", "GPT-4", "--effective", "--unhobbling", "chain_of_thought")
    assert out["effective_ooms"]["best"] == pytest.approx(out["physical_ooms"]["best"] + 0.5 * out["years"] + 1.0)


def test_count_lists_models_and_accepts_numbers():
    models = run_json("count")
    assert models[0]["model"] == "GPT-2" and all(m["source"] for m in models)
    assert run_json("count", "4e21", "4e25")["physical_ooms"]["best"] == pytest.approx(4.0)


def test_json_flag_on_the_group_applies_to_commands():
    result = runner.invoke(app, ["--json", "convert", "fleet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["watts_per_human_equivalent"] == pytest.approx(0.8)


def test_project_with_reach():
    out = run_json("project", "--years", "4", "--reach-ooms", "4")
    assert out["points"][-1]["effective_ooms"]["best"] == pytest.approx(4.0)
    assert out["reached"]["best"] == pytest.approx(out["start_year"] + 4)
    flop = run_json("project", "--start-year", "2023", "--base-flop", "2e25", "--reach", "2e29")
    assert flop["reached"]["best"] == pytest.approx(2027)


def test_fit_prices_and_compute():
    prices = {f["name"]: f for f in run_json("fit", "prices")["fits"]}
    assert prices["gpt3-a16z"]["fold_per_year"] == pytest.approx(10.0)
    assert prices["gpt3-mmlu"]["direction"] == "decline"
    compute = run_json("fit", "compute")["fits"][0]
    assert 3 <= compute["fold_per_year"] <= 6  # Epoch AI: 4–5× per year
    assert runner.invoke(app, ["fit", "prices"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        # the seed's 2.5 W is at the seed's own pace, 750 h per million tokens (was the command's default)
        (["convert", "price-energy", "--pace", "month-per-million"], "human_equivalent_watts", 2.5),
        (["convert", "price-energy"], "human_equivalent_watts", 6.75 * 100 / 60),  # the default, 100 tokens/minute
        (["convert", "watts", "--j-per-token", "0.12", "--pace", "one-per-second"], "human_equivalent_watts", 0.12),
        (["convert", "watts", "--j-per-token", "0.12"], "human_equivalent_watts", 0.2),
        (["convert", "cost", "--tokens-per-second", "1000"], "usd_per_million_tokens", 4 / 3.6),
        (["convert", "cluster", "--gpus", "100000"], "megawatts", 140.0),
        (["convert", "tokens", "1000000"], "hours", 1e6 / 6000),
    ],
)
def test_convert_commands(args, key, value):
    assert run_json(*args)[key] == pytest.approx(value)


def test_convert_tokens_table_prints():
    result = runner.invoke(app, ["convert", "tokens"])
    assert result.exit_code == 0 and "half a workday" in result.output


def test_bad_data_file_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "extra.csv"
    bad.write_text("model,date,flop,source\nok,2024,1e24,notes\nbroken,2024,lots,notes\n")
    result = runner.invoke(app, ["count", "--data", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, DatasetError)
    assert f"{bad}, line 3" in str(result.exception)


def test_user_data_reaches_the_commands(tmp_path: Path):
    extra = tmp_path / "mine.csv"
    extra.write_text("model,date,flop,source\nNext,2027-01,2e27,my guess\n")
    out = run_json("count", "GPT-4", "Next", "--data", str(extra))
    assert out["physical_ooms"]["best"] == pytest.approx(2.0, abs=0.03)
    out = json.loads(runner.invoke(app, ["--data", str(extra), "count", "GPT-4", "Next", "--json"]).stdout)
    assert out["end"] == "Next"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_a_real_png(tmp_path: Path):
    out = tmp_path / "prices.png"
    result = runner.invoke(app, ["plot", "prices", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == str(out)
    assert out.stat().st_size > 20_000  # axes, three series, bands and a legend: not an empty canvas
    width, height = png_size(out)
    assert width >= 800 and height >= 500
    compute = tmp_path / "compute.png"
    assert runner.invoke(app, ["plot", "compute", "--out", str(compute)]).exit_code == 0
    assert compute.stat().st_size > 20_000


@pytest.fixture
def fake_store(monkeypatch, tmp_path: Path) -> Path:
    """A Store with one run of round totals, so the derived figures (J/token, $/M tokens) are exact.

    test_an_unknown_run_in_a_real_store below runs the real Store."""

    class Store:
        def __init__(self, path):
            self.path = Path(path)

        def run_totals(self, run_id: str) -> LedgerTotals:
            if run_id != "run-1":
                raise RunNotFoundError(f"no run '{run_id}' in {self.path}")
            return LedgerTotals(samples=8, prompt_tokens=400, completion_tokens=4_000, flops=2e12, seconds=20.0,
                                joules=800.0, energy_measured=False, dollars=0.004, human_minutes=40.0,
                                model_id="gemma-3-270m")

        def close(self) -> None:
            pass

    module = types.ModuleType("oomlab.store")
    module.Store = Store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "oomlab.store", module)
    db = tmp_path / "oomlab.db"
    db.write_bytes(b"")
    return db


def test_run_figures_beside_the_reference(fake_store: Path):
    result = runner.invoke(app, ["--run", "run-1", "--db", str(fake_store), "--pace", "one-per-second", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["run"]["joules_per_token"] == pytest.approx(0.2)
    assert out["run"]["usd_per_million_tokens"] == pytest.approx(1.0)
    assert out["run"]["tokens_per_second"] == pytest.approx(200)
    assert out["run"]["human_equivalent_watts"] == pytest.approx(0.2)
    assert out["run"]["energy"] == "estimated"
    figures = {r["figure"]: r for r in out["reference"]}
    assert any(r["energy"] == "measured" for r in out["reference"])  # ML.ENERGY's metered figure
    seed = next(r for name, r in figures.items() if name.startswith("seed: 16 GPUs"))
    assert seed["human_equivalent_watts"] == pytest.approx(0.8)
    table = runner.invoke(app, ["--run", "run-1", "--db", str(fake_store)])
    assert table.exit_code == 0 and "this run" in table.output and "estimated" in table.output


def test_unknown_run_and_missing_db(fake_store: Path, tmp_path: Path):
    result = runner.invoke(app, ["--run", "nope", "--db", str(fake_store)])
    assert isinstance(result.exception, RunNotFoundError)
    result = runner.invoke(app, ["--run", "run-1", "--db", str(tmp_path / "absent.db")])
    assert "no database" in str(result.exception)


def test_plot_with_a_measured_point(fake_store: Path, tmp_path: Path):
    out = tmp_path / "with-run.png"
    result = runner.invoke(app, ["plot", "prices", "--out", str(out), "--run", "run-1", "--db", str(fake_store), "--json"])
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["measured"]
    assert measured[0]["value"] == pytest.approx(1.0)
    assert out.stat().st_size > 20_000


def test_an_unknown_run_in_a_real_store(tmp_path: Path):
    from oomlab.store import Store

    db = tmp_path / "real.db"
    Store(db).close()  # an empty database with the current schema
    result = runner.invoke(app, ["--run", "no-such-run", "--db", str(db)])
    assert isinstance(result.exception, RunNotFoundError)


def test_a_fit_the_data_cannot_support_names_the_series():
    result = runner.invoke(app, ["fit", "prices", "--capability", "gpt4-mmlu", "--since", "2025"])
    assert "gpt4-mmlu: a trend needs at least two dated points" in str(result.exception)
