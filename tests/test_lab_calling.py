"""The diagnostic amplification call on the shipped demo plates: the eva_green_b demo is invalid (its NTC
amplifies) and a run cut at cycle 28 has no silent negative. "Clearly amplified" is tests/lab_truth.py's
definition (independent of the caller); the per-file figures on every real run are in test_lab_realworld.py.
"""

from pathlib import Path

from lab_truth import clearly_amplified
from oligolab.lab.analysis import analyze_file, load_runs
from oligolab.lab.curves import analyze_curves, prepare
from oligolab.lab.run import make_run

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"


def test_shipped_demo_plate_is_invalid_because_its_ntc_amplifies():
    plate = analyze_file(DATA / "eva_green_b.rdml", plate_map=DATA / "exports" / "eva_green_b_cdc_platemap.csv",
                         rules="cdc-2019-ncov")[0]
    assert plate.valid is False and any("NTC" in p for p in plate.problems)
    assert (plate.samples["status"] != "release").all()
    s001 = plate.samples.set_index("sample").loc["S-001"]
    assert s001["call"] != "negative"


def test_run_cut_at_cycle_28_has_no_silent_negative():
    run = load_runs(DATA / "eva_green_b.rdml")[0]
    cut = make_run("cut", run.source, run.fluor[:, :28], run.cycles[:28], run.layout)
    t = analyze_curves(prepare(cut)).table
    clear = clearly_amplified(cut.fluor)
    assert clear.sum() > 50
    assert not (clear & (t["call"] == "not amplified").to_numpy()).any()
    # curves rising only in the last cycles of the cut run are held ("too late to confirm"), not released
    assert (t.loc[clear, "call"] == "amplified").mean() >= 0.85
