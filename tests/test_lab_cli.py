"""`oligolab lab`: analyse, override, sign, audit and rules from the command line; bad input exits 2 with one line."""

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oligolab.cli import _register, app

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def registered():
    _register()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_analyze_review_override_sign_audit(tmp_path):
    out = tmp_path / "plate"
    res = _run("lab", "analyze", DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt", "--plate-map",
               DATA / "exports" / "lc480_cdc_platemap.csv", "--rules", "cdc-2019-ncov", "--out", out)
    assert res.exit_code == 0, res.output
    assert "valid" in res.output and "report:" in res.output
    for name in ("samples.csv", "wells.csv", "controls.csv", "result.json", "report.html"):
        assert (out / name).exists()
    rows = list(csv.DictReader((out / "samples.csv").open()))
    assert len(rows) == 25 and {r["status"] for r in rows} == {"review"}

    # signing is refused while samples are held
    res = _run("lab", "sign", out, "--user", "dr.lee")
    assert res.exit_code == 2 and "still held" in res.output

    # a reviewer accepts every held result (same call), with a reason; then signs
    args = [a for r in rows for a in ("--sample", r["sample"])]
    res = _run("lab", "override", out, *args, "--accept", "--user", "dr.lee",
               "--reason", "NTC curves reviewed: rising baseline, no amplification")
    assert res.exit_code == 0, res.output
    assert res.output.count("recorded #") == 25
    # a changed call: one sample goes to inconclusive
    res = _run("lab", "override", out, "--sample", rows[3]["sample"], "--call", "inconclusive", "--user", "dr.lee",
               "--reason", "N2 curve shape atypical")
    assert res.exit_code == 0, res.output
    after = {r["sample"]: r for r in csv.DictReader((out / "samples.csv").open())}
    assert after[rows[3]["sample"]]["final_call"] == "inconclusive"
    assert after[rows[3]["sample"]]["call"] == rows[3]["call"]
    res = _run("lab", "sign", out, "--user", "dr.lee")
    assert res.exit_code == 0, res.output
    assert "SIGNED" in (out / "report.html").read_text()
    res = _run("lab", "audit", out)
    assert res.exit_code == 0 and "27 entries, hash chain intact" in res.output


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "mystery.csv"
    bad.write_text("Position;Channel;Value\nA1;FAM;123\n")
    res = _run("lab", "analyze", bad, "--out", tmp_path / "o")
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "mystery.csv" in lines[0] and "unknown instrument export" in lines[0]


def test_missing_readings_are_filled_and_held_or_refused_on_request(tmp_path):
    """A run with readings is analysed (only a file without readings is refused): the damaged curves are
    filled in, flagged and held, and the summary names them; --refuse-gaps refuses the run naming the fix."""
    res = _run("lab", "analyze", DATA / "technical_matrix_gaps.rdml", "--out", tmp_path / "o", "--no-html")
    assert res.exit_code == 0, res.output
    assert "22 curve(s) with missing readings filled in and held for review (wells K3, K5" in " ".join(res.output.split())
    wells = list(csv.DictReader((tmp_path / "o" / "wells.csv").open()))
    repaired = {w["well"] for w in wells if "gap_repaired" in w["flags"]}
    assert "K3" in repaired and all(w["review"] == "True" for w in wells if w["well"] in repaired)
    res = _run("lab", "analyze", DATA / "technical_matrix_gaps.rdml", "--out", tmp_path / "r", "--refuse-gaps")
    assert res.exit_code == 2 and "record 'K3'" in res.output and "--repair-gaps" in res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["realworld/fdata.csv", "realworld/table.xlsx"])
def test_ragged_tables_are_analysed_with_the_short_curves_held(tmp_path, name):
    res = _run("lab", "analyze", DATA / name, "--out", tmp_path / "o", "--no-html")
    assert res.exit_code == 0, res.output
    assert "2 curve(s) with missing readings filled in and held for review (wells D1, D2)" in " ".join(res.output.split())
    status = {s["wells"]: s["status"] for s in csv.DictReader((tmp_path / "o" / "samples.csv").open())}
    assert status["D1"] == status["D2"] == "review" and "release" in status.values()


def test_multi_run_file_writes_one_folder_per_run(tmp_path):
    res = _run("lab", "analyze", DATA / "vermeulen_data_vermeulen_std_150000_15000.rdml", "--out", tmp_path / "v",
               "--no-html")
    assert res.exit_code == 0, res.output
    assert len([p for p in (tmp_path / "v").iterdir() if (p / "wells.csv").exists()]) == 64


def test_rules_listing_and_table():
    res = _run("lab", "rules")
    assert res.exit_code == 0 and "cdc-2019-ncov" in res.output and "who-charite-e-rdrp" in res.output
    res = _run("lab", "rules", "cdc-2019-ncov")
    assert res.exit_code == 0 and "inconclusive" in res.output and "N1" in res.output


def test_sign_refusal_names_the_real_reason(tmp_path):
    """An invalid run: the refusal names the failed control's wells, not "samples held"; a held run names why."""
    out = tmp_path / "demo"
    res = _run("lab", "analyze", DATA / "eva_green_b.rdml", "--plate-map", DATA / "exports" / "eva_green_b_cdc_platemap.csv",
               "--rules", "cdc-2019-ncov", "--out", out, "--no-html")
    assert res.exit_code == 0, res.output
    res = _run("lab", "sign", out, "--user", "dr.lee")
    assert res.exit_code == 2
    assert "the run is invalid: NTC" in res.output and "(N1) amplified at Cq" in res.output, res.output
    held = tmp_path / "held"
    _run("lab", "analyze", DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt", "--plate-map",
         DATA / "exports" / "lc480_cdc_platemap.csv", "--rules", "cdc-2019-ncov", "--out", held, "--no-html")
    res = _run("lab", "sign", held, "--user", "dr.lee")
    assert res.exit_code == 2 and "still held" in res.output and "control HSC flagged" in res.output, res.output
