"""`oomlab ooms --lab`: the lab's measured gains beside the reference unhobbling multipliers."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from oomlab.cli import app


def summary(tmp_path):
    gain = {"what": "x", "train_flops": 1e11, "accuracy": 0.42, "baseline_accuracy": 0.2, "factor": 31.6, "lo": 8.0,
            "hi": 90.0, "status": "within", "test_cost": 1.7, "text": "31.6× [8, 90]"}
    past = gain | {"train_flops": 1e12, "factor": 10.0, "status": "beyond", "text": "> 10× (past the ladder's largest budget)"}
    data = {"ladder": {"n": 16, "formats": ["direct", "cot"]}, "label": "measured on the lab task (lab-chain, ladder 'cpu')",
            "gains": {"cot training vs direct training (greedy)": [gain, past],
                      "cot: majority@16": [gain | {"factor": 2.5, "text": "2.5× [1.2, 5]"}],
                      "cot: majority@4": [gain], "direct: majority@16": [gain],
                      "cot: best-of-n[oracle] (oracle)@16": [gain]}}
    lab = tmp_path / "oomlab_lab"
    lab.mkdir()
    (lab / "summary.json").write_text(json.dumps(data))
    return tmp_path / "oomlab.db"


def test_lab_gains_beside_the_reference_multipliers(tmp_path):
    db = summary(tmp_path)
    out = CliRunner().invoke(app, ["ooms", "--lab", str(db)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "measured on the lab task" in out.output
    assert "cot training vs direct training" in out.output and "31.6× [8, 90]" in out.output
    assert "past the ladder" in out.output and "2.5× [1.2, 5]" in out.output
    assert "chain_of_thought" in out.output and "not measured by the lab" in out.output  # scaffolding: reference only
    assert "majority@4" not in out.output and "direct: majority" not in out.output and "oracle" not in out.output
    data = json.loads(CliRunner().invoke(app, ["ooms", "--lab", str(tmp_path / "oomlab_lab"), "--json"]).output)
    rows = {(r["enhancement"], r["train_flops"]): r for r in data["measured"]}
    assert rows[("cot training vs direct training (greedy)", 1e11)]["reference"] == "chain_of_thought"
    assert rows[("cot training vs direct training (greedy)", 1e12)]["status"] == "beyond"
    assert {r["id"] for r in data["reference"]} >= {"chain_of_thought"}


def test_a_missing_lab_says_what_to_run(tmp_path):
    out = CliRunner().invoke(app, ["ooms", "--lab", str(tmp_path / "nothing.db")])
    assert out.exit_code != 0 and "oomlab lab run" in str(out.exception) + out.output
