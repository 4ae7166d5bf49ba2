"""The shipped rows: ranges where sources disagree, primary sources, price blends, one meaning per date."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from oomlab.forecast.reference import load_reference


def _header_comment(table: str) -> str:
    text = (resources.files("oomlab.forecast") / "data" / f"{table}.csv").read_text(encoding="utf-8")
    return " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))


def test_gpt2_carries_its_range_and_both_sources():
    gpt2 = load_reference().training_run("GPT-2")
    assert (gpt2.flop_low, gpt2.flop, gpt2.flop_high) == (1.92e21, 4e21, 4e21)
    assert "Aschenbrenner" in gpt2.source and "situational-awareness.ai" in gpt2.source
    assert "Epoch AI" in gpt2.source and "1.92e21" in gpt2.source and "speculative" in gpt2.source


def test_the_range_reaches_the_count(oomlab):
    # low pairs GPT-2's high (4e21) with GPT-4's low (8e24); high pairs 1.92e21 with 4e25
    out = oomlab("ooms", "count", "GPT-2", "GPT-4", "--json").json()["physical_ooms"]
    assert out["low"] == pytest.approx(3.301, abs=1e-3)
    assert out["high"] == pytest.approx(4.319, abs=1e-3)


def test_rows_cite_the_primary_source():
    ref = load_reference()
    for row_id in ("essay-compute", "essay-algorithms"):
        source = ref.trend(row_id).source
        assert "situational-awareness.ai" in source and "secondary" not in source
    energy = {e.id: e for e in ref.energy}["mlenergy-llama31-8b-h100"]
    assert energy.joules_per_token == 0.12
    assert "ml.energy/blog" in energy.source and "v3" in energy.source


def test_every_price_row_says_its_blend():
    ref = load_reference()
    for p in ref.prices:
        assert p.blend, f"{p.model} {p.date} has no blend"
    epoch = [p for p in ref.prices if p.source.startswith("Epoch AI")]
    assert epoch and all(p.blend == "3:1 input:output" for p in epoch)
    # a hand check of Epoch's 3:1: GPT-4-0314 at $30 input / $60 output → (3·30 + 60) / 4 = $37.5
    gpt4 = next(p for p in epoch if p.model == "GPT-4-0314")
    assert gpt4.usd_per_million_tokens == (3 * 30 + 60) / 4
    a16z = [p for p in ref.prices if "a16z" in p.source]
    assert a16z and all(p.blend.startswith("1:1") for p in a16z)


def test_hardware_dates_mean_one_thing():
    assert "date: the date the vendor announced the accelerator" in _header_comment("hardware")
    ref = load_reference()
    assert [ref.accelerator(n).date for n in ("A100 SXM 80GB", "H100 SXM", "H200 SXM")] == ["2020-05", "2022-03", "2023-11"]
    for hw in ref.hardware:
        assert "announced" in hw.source


@pytest.mark.parametrize("table", ["training_compute", "token_prices", "hardware", "trends", "energy"])
def test_each_table_says_what_its_date_is(table):
    assert "date:" in _header_comment(table)


def test_comment_lines_in_a_user_file_keep_line_numbers(tmp_path: Path):
    from oomlab.errors import DatasetError

    path = tmp_path / "mine.csv"
    path.write_text("# my rows\nmodel,date,flop,source\nok,2024,1e24,notes\nbad,2024,lots,notes\n")
    with pytest.raises(DatasetError, match=r"mine\.csv, line 4: column 'flop'"):
        load_reference([path])


def test_a_user_price_file_without_a_blend_column_still_loads(tmp_path: Path):
    path = tmp_path / "prices.csv"
    path.write_text("capability,model,date,usd_per_million_tokens,source\nmine,A,2024-01,1.0,notes\n")
    row = load_reference([path]).price_series("mine")[0]
    assert row.blend == "" and row.usd_per_million_tokens == 1.0
