"""Reference data: every shipped row is sourced and dated; user rows load, override, and fail clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from oomlab.errors import DatasetError, UnknownNameError
from oomlab.forecast.reference import TREND_KINDS, decimal_year, load_reference, table_names


def test_every_shipped_row_has_a_source_and_a_date():
    ref = load_reference()
    rows = ref.all_rows()
    tables = {name for name, _ in rows}
    assert tables == set(table_names())  # each table ships at least one row
    for table, row in rows:
        assert row.source.strip(), f"{table} row {row} has no source"
        assert row.date.strip(), f"{table} row {row} has no date"
        assert 1900 < row.year < 2100


def test_shipped_tables_hold_the_figures_the_acceptance_tests_use():
    ref = load_reference()
    assert ref.training_run("gpt-2").flop == pytest.approx(4e21)
    gpt4 = ref.training_run("GPT-4")
    assert gpt4.flop_low <= 2e25 <= gpt4.flop_high
    a16z = ref.price_series("gpt3-a16z")
    assert [p.usd_per_million_tokens for p in a16z] == [60, 0.06]
    h100 = ref.accelerator("H100 SXM")
    assert (h100.peak_flops, h100.memory_tbps, h100.tdp_watts) == (989e12, 3.35, 700)
    assert {t.kind for t in ref.trends} == set(TREND_KINDS)


def test_user_rows_are_added_and_replace_shipped_rows_with_the_same_key(tmp_path: Path):
    extra = tmp_path / "mine.csv"
    extra.write_text(
        "model,date,flop,source\n"
        "My model,2025-06,1e26,my notes\n"
        "GPT-2,2019-02,1.5e21,a corrected estimate\n"
    )
    ref = load_reference([extra])
    assert ref.training_run("my model").flop == 1e26
    assert ref.training_run("GPT-2").flop == 1.5e21
    assert ref.training_run("GPT-2").source == "a corrected estimate"
    assert len(ref.training) == len(load_reference().training) + 1


def test_a_malformed_row_names_the_file_and_the_line(tmp_path: Path):
    bad = tmp_path / "prices.csv"
    bad.write_text(
        "capability,model,date,usd_per_million_tokens,source\n"
        "mine,A,2024-01,1.0,notes\n"
        "mine,B,2024-06,cheap,notes\n"
    )
    with pytest.raises(DatasetError) as err:
        load_reference([bad])
    message = str(err.value)
    assert str(bad) in message and "line 3" in message and "usd_per_million_tokens" in message


def test_a_row_without_a_source_is_refused(tmp_path: Path):
    bad = tmp_path / "m.csv"
    bad.write_text("id,low,best,high,date,source\ncot,2,3,4,2024,\n")
    with pytest.raises(DatasetError, match=r"m\.csv, line 2: column 'source' is empty"):
        load_reference([bad])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("model,flavour\nx,y\n", "line 1: header 'model,flavour' matches no reference table"),
        ("id,kind,low,best,high,date,source\nx,weather,1,2,3,2024,s\n", "line 2: kind must be one of"),
        ("id,low,best,high,date,source\nx,3,2,1,2024,s\n", "line 2: need low <= best <= high"),
        ("model,date,flop,source\nx,March 2024,1e20,s\n", "line 2: date must be YYYY"),
        ("model,date,flop,source\nx,2024,1e20,s,extra\n", "line 2: more cells than the header"),
        ("", "line 1: empty file"),
    ],
)
def test_bad_user_files_are_explained(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError) as err:
        load_reference([path])
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_a_missing_data_file_is_a_dataset_error(tmp_path: Path):
    with pytest.raises(DatasetError, match="no such data file"):
        load_reference([tmp_path / "nope.csv"])


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="GPT-3"):
        load_reference().training_run("GPT-7")


def test_decimal_years():
    assert decimal_year("2023") == 2023.0
    assert decimal_year("2023-07") == pytest.approx(2023.5)
    assert decimal_year("2024-12-31") == pytest.approx(2024 + 365 / 366)


def test_rows_are_frozen():
    row = load_reference().training[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.flop = 1.0  # type: ignore[misc]
