"""Curve analysis: no amplification call on flat or drifting curves, QC flags on damaged curves, Cq methods."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oligolab.lab.analysis import load_runs
from oligolab.lab.curves import analyze_curves, analyze_runs, prepare
from oligolab.lab.formats.rdml import load_rdml
from oligolab.lab.linregpcr import linregpcr
from oligolab.lab.run import make_run

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"


@pytest.fixture(scope="module")
def eva_a():
    return prepare(load_rdml(DATA / "eva_green_a.rdml"))


def _run_from(fluor: np.ndarray, name: str = "derived", target: str = "T") -> object:
    n = fluor.shape[0]
    layout = pd.DataFrame({"well": [f"{chr(65 + (i % 384) // 24)}{i % 24 + 1}" for i in range(n)],
                           "sample": [f"s{i}" for i in range(n)], "target": [f"{target}{i // 384}" for i in range(n)],
                           "role": "sample"})
    return make_run(name, name, fluor, np.arange(1, fluor.shape[1] + 1), layout, plate_rows=16, plate_columns=24)


def _real_baselines(run, n_cycles: int) -> np.ndarray:
    """Flat real curves: each amplified curve's pre-rise readings, mirrored end to end to n_cycles."""
    lrp = linregpcr(run.fluor)
    out = []
    for i in np.flatnonzero(lrp.amplified):
        seg = run.fluor[i, : max(int(lrp.rise_start[i]) - 2, 8)]
        if seg.size < 12:
            continue
        tiled = np.concatenate([seg, seg[::-1]] * (n_cycles // (2 * seg.size) + 1))[:n_cycles]
        out.append(tiled)
    return np.asarray(out)


def test_flat_and_drifting_real_baselines_are_not_called_amplified(eva_a):
    flat = _real_baselines(eva_a, 40)
    assert len(flat) > 50
    x = np.arange(40)
    level = np.median(flat[:, :5], axis=1, keepdims=True)
    variants = [flat]
    for pct in (0.1, 0.3, 1.0):                         # linear drift, % of the level per cycle, both ways
        variants += [flat + level * pct / 100 * x, flat - level * pct / 100 * x]
    for pct in (2.0, 10.0):                             # slow upward creep (evaporation, probe degradation)
        variants.append(flat + level * pct / 100 * (x / 39.0) ** 2)
    fluor = np.vstack(variants)
    table = analyze_curves(_run_from(fluor)).table
    block = np.repeat(np.arange(len(variants)), len(flat))
    # real baselines and falling drifts: at most 1% called amplified (mirrored baselines turn around, which a
    # shape test cannot tell from a small late rise; a false positive, never a missed one)
    assert table.loc[np.isin(block, [0, 2, 4, 6]), "amplified"].mean() <= 0.01
    # KNOWN LIMIT: a mirrored (V-shaped) baseline plus a rising drift of 0.1-1% of the level per cycle, or a
    # 2-10% creep, has an amplification's shape; some are called amplified (never a missed positive, but a false
    # one). They are counted here so a change is seen.
    assert table.loc[np.isin(block, [1, 3, 5, 7, 8]), "amplified"].mean() < 0.5


def test_noise_rises_that_fool_the_linregpcr_criteria_are_rejected():
    """White noise around a flat level can show four rising cycles and a steep log slope after baseline
    subtraction: LinRegPCR's call says 'amplified' for some; the rise-over-noise guard rejects them all."""
    rng = np.random.default_rng(20260123)
    x = np.arange(45)
    fluor = 1000 + rng.normal(0, 10, (6000, 45)) + rng.choice([0, 0.1, 0.3, -0.3], (6000, 1)) * x
    table = analyze_curves(_run_from(fluor)).table
    assert table["amplified_linregpcr"].sum() > 0
    assert not table["amplified"].any()
    fooled = table[table["amplified_linregpcr"]]
    assert (fooled["call"] != "amplified").all()


def test_real_amplification_rises_far_above_noise(eva_a):
    t = analyze_curves(eva_a).table
    assert t.loc[t["amplified"], "rise_snr"].min() > 3 * 20


def test_saturated_curve_is_flagged(eva_a):
    fluor = eva_a.fluor.copy()
    i = int(np.argmax(fluor.max(axis=1)))
    ceiling = 0.8 * fluor[i].max()
    fluor[i] = np.minimum(fluor[i], ceiling)           # a detector clipping this well's plateau
    fluor = np.minimum(fluor, ceiling)
    run = make_run("clipped", "clipped", fluor, eva_a.cycles, eva_a.layout)
    t = analyze_curves(run).table
    clipped = np.isclose(fluor, ceiling).sum(axis=1) >= 2
    assert t.loc[clipped, "flags"].str.contains("saturation").all()
    assert not t.loc[~clipped, "flags"].str.contains("saturation").any()


def test_step_in_the_baseline_is_flagged_as_jump(eva_a):
    base = analyze_curves(eva_a).table
    clean = int(np.flatnonzero((base["flags"] == "") & base["amplified"])[0])
    fluor = eva_a.fluor.copy()
    sigma = np.std(np.diff(fluor[clean, 2:15], 2)) / np.sqrt(6)
    fluor[clean, 11] += 60 * sigma                     # one bad reading at cycle 12 (bubble, flash)
    t = analyze_curves(make_run("jump", "jump", fluor, eva_a.cycles, eva_a.layout)).table
    assert "jump:cycle 12" in t.loc[clean, "flags"] and t.loc[clean, "review"]


def test_unchanged_real_curves_raise_no_jump_or_saturation():
    t = analyze_curves(prepare(load_rdml(DATA / "own_mix_a.rdml"))).table
    assert not t["flags"].str.contains("jump|saturation|weak_rise|gap_repaired").any()


def test_replicate_disagreement_is_flagged(eva_a):
    t = analyze_curves(eva_a).table
    # Genomic DNA 7ng / FSTL_1_F_109 M I: one of seven replicates (H9) dips at cycles 13-16 before it amplifies
    # (LinRegPCR finds no window and calls it not amplified); it amplifies, its Cq disagrees with the others
    # and the dip is flagged, so the group is held
    grp = t[(t["sample"] == "Genomic DNA 7ng") & (t["target"] == "FSTL_1_F_109 M I")].set_index("well")
    assert grp["amplified"].all() and not grp.loc["H9", "amplified_linregpcr"]
    assert "jump" in grp.loc["H9", "flags"] and grp.loc["H9", "review"]


def test_cq_methods_are_ordered_and_consistent(eva_a):
    t = analyze_curves(eva_a).table
    amp = t[t["amplified"] & ~t["review"]]
    assert (amp["cq_threshold"] < amp["cq_td0"]).all()          # threshold sits low in the exponential phase
    assert (amp["cq_sdm"] - amp["cq_td0"]).abs().max() < 1.0      # both mark the end of the exponential phase
    # a higher fixed threshold gives a later threshold Cq, for every curve
    target = amp["target"].iat[0]
    auto = float(amp["threshold"].iat[0])
    higher = analyze_curves(eva_a, thresholds={target: 4 * auto}).table
    sel = (t["target"] == target) & t["amplified"]
    assert (higher.loc[sel, "cq_threshold"] > t.loc[sel, "cq_threshold"]).all()


def test_linregpcr_needs_gap_free_input(eva_a):
    fluor = eva_a.fluor.copy()
    fluor[0, 5] = np.nan
    with pytest.raises(ValueError, match="gap-free"):
        linregpcr(fluor)


def test_runs_analysed_together_get_their_own_results_bit_for_bit():
    """analyze_runs (the runs of a file at once, as analyze_file does) equals analyze_curves run by run: the
    Vermeulen file's 64 runs of 6 curves share target names across runs (per-target noise, thresholds and mean
    efficiencies stay per run), its runs have 45 or 50 cycles (analysed in two arrays), the logistic fit stops
    per run (17 of the 64 runs differ when it stops for all at once), and a baseline-subtracted copy of a run
    (readings <= 0: LinRegPCR's shift uses its own run's highest reading) is analysed beside the others."""
    runs = [prepare(r) for r in load_runs(DATA / "vermeulen_data_vermeulen_std_150000_15000.rdml")]
    shifted = runs[5]
    shifted = make_run("shifted", "shifted", shifted.fluor - np.median(shifted.fluor[:, :10]), shifted.cycles,
                       shifted.layout)
    runs = runs + [shifted, prepare(load_rdml(DATA / "own_mix_a.rdml"))]
    assert len({r.n_cycles for r in runs}) > 1
    for thresholds in (None, {runs[0].layout["target"].iat[0]: 5000.0}):
        together = analyze_runs(runs, thresholds=thresholds)
        assert "values <= 0" in " ".join(together[-2].notes) and not any("<= 0" in n for n in together[0].notes)
        for run, res in zip(runs, together):
            alone = analyze_curves(run, thresholds=thresholds)
            pd.testing.assert_frame_equal(res.table, alone.table, check_exact=True)
            assert np.array_equal(res.corrected, alone.corrected)
            assert (res.thresholds, res.notes) == (alone.thresholds, alone.notes)
