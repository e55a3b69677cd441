"""The diagnostic amplification call on real runs: no clearly amplified curve is called "not amplified".

"Clearly amplified" is defined here independently of the caller: the median of the last five readings stands
at least 20 noise SDs above the median of cycles 3-15 (noise: robust SD of their step-to-step changes), and
every one of the last five readings at least 10 SDs above it.
"""

from pathlib import Path

import numpy as np

from oligolab.lab.analysis import analyze_file, load_runs
from oligolab.lab.curves import analyze_curves, prepare
from oligolab.lab.run import make_run

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"


def clearly_amplified(fluor: np.ndarray) -> np.ndarray:
    w = slice(2, min(15, fluor.shape[1] // 2))
    base = np.median(fluor[:, w], axis=1)
    d = np.diff(fluor[:, w], axis=1)
    noise = 1.4826 * np.median(np.abs(d - np.median(d, axis=1)[:, None]), axis=1) / np.sqrt(2)
    over = fluor - base[:, None]
    return (np.median(over[:, -5:], axis=1) >= 20 * noise) & (over[:, -5:] >= 10 * noise[:, None]).all(axis=1)


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
