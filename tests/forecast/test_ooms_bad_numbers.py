"""inf, nan and overflow: one clear line and a non-zero exit, never a traceback or "inf working years"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from oomlab.errors import ConfigError
from oomlab.forecast.counting import Band, ooms_between
from oomlab.forecast.pace import tokens_to_human_time


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["project", "--years", "1000"], "past the largest representable number"),
        (["project", "--years", "inf"], "years must be a finite number"),
        (["project", "--years", "nan"], "years must be a finite number"),
        (["project", "--step", "1e-9"], "rows"),
        (["project", "--reach", "inf"], "--reach must be a finite number"),
        (["project", "--reach-ooms", "nan"], "target OOMs must be a finite number"),
        (["project", "--base-flop", "1e400", "--start-year", "2023"], "--base-flop must be a finite number"),
        (["project", "--to", "inf"], "--to must be a year"),
        (["count", "inf", "gpt-4"], "finite, positive number of FLOP, got 'inf'"),
        (["count", "nan", "gpt-4"], "got 'nan'"),
        (["count", "gpt-2", "1e400"], "got '1e400'"),
        (["count", "4e21", "gpt-4", "--years", "nan", "--algo-rate", "0.5"], "--years must be a finite number"),
        (["count", "1", "--years", "1e300", "--compute-rate", "1"], "past the largest representable number"),
        (["convert", "tokens", "1e400"], "tokens must be a finite number"),
        (["convert", "tokens", "nan"], "tokens must be a finite number"),
        (["convert", "tokens", "--hours", "inf"], "hours must be a finite number"),
        (["convert", "watts", "--j-per-token", "inf"], "joules per token must be a finite number"),
        (["convert", "watts", "--watts", "nan"], "watts must be a finite number"),
        (["convert", "fleet", "--gpus", "1e308", "--watts", "1e308"], "too large to represent"),
        (["convert", "cluster", "--gpus", "1e305"], "too large to represent"),
        (["convert", "cost", "--tokens-per-second", "nan"], "must be a finite number"),
        (["convert", "price-energy", "--usd-per-million", "inf"], "must be a finite number"),
        (["convert", "tokens", "5", "--human-tokens-per-second", "inf"], "tokens per second must be a finite number"),
        (["rate", "price", "2021", "inf", "2024", "1"], "the first value must be a finite number"),
        (["rate", "compute", "2021", "1e20", "2024", "1e25", "--to", "1e9"], "--to must be a year"),
        (["plot", "--years", "1e9", "--out", "never-written.png"], "outside the representable numbers"),
    ],
)
def test_non_finite_input_is_one_clear_line(oomlab, args, fragment):
    oomlab("ooms", *args).assert_one_clear_line(fragment)


def test_the_three_reported_cases_through_the_installed_command(tmp_path):
    # the issue's own reproductions, in a fresh process exactly as a user types them
    for args in (["project", "--years", "1000"], ["count", "inf", "gpt-4"], ["convert", "tokens", "1e400"]):
        done = subprocess.run([sys.executable, "-m", "oomlab", "ooms", *args], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
        assert "working years" not in done.stderr


def test_the_library_refuses_non_finite_numbers_too():
    with pytest.raises(ConfigError):
        tokens_to_human_time(float("inf"))
    with pytest.raises(ConfigError):
        Band(0.0, float("nan"), 1.0)
    with pytest.raises(ConfigError):
        ooms_between(float("inf"), 1.0)
    assert ooms_between(1e-300, 1e300) == pytest.approx(600)  # no overflow dividing the two
