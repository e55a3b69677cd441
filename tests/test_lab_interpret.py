"""Interpretation on real curves: demo plate maps relabel real LightCycler 480 wells (negatives: no instrument
Cp) as CDC and WHO plates; the eva_green_b demo plate, whose NTC wells amplify, is invalid."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oligolab.lab.analysis import analyze_file, analyze_run, load_runs
from oligolab.lab.rules import load_ruleset

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
RUN = DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"  # a valid plate (flat NTCs)
CDC_MAP = DATA / "exports" / "lc480_cdc_platemap.csv"
WHO_MAP = DATA / "exports" / "lc480_who_platemap.csv"


@pytest.fixture(scope="module")
def run():
    return load_runs(RUN)[0]


@pytest.fixture(scope="module")
def cdc_plate():
    """Through the file-level API once; the variants below reuse the parsed run."""
    return analyze_file(RUN, plate_map=CDC_MAP, rules="cdc-2019-ncov")[0]


def _expected_outcome(curves: pd.DataFrame, cutoff: float) -> str:
    kinds = {("positive" if a and cq < cutoff else "negative") for a, cq in zip(curves["amplified"], curves["cq_threshold"])}
    return kinds.pop() if len(kinds) == 1 else "indeterminate"


def test_cdc_plate_is_valid_and_every_call_follows_the_guide(cdc_plate):
    rs = load_ruleset("cdc-2019-ncov")
    assert cdc_plate.valid is True and not [p for p in cdc_plate.problems if "failed" in p]
    t = cdc_plate.table
    samples = cdc_plate.samples.set_index("sample")
    assert len(samples) == 25
    for sample, curves in t[t["role"] == "sample"].groupby("sample"):
        outcomes = {tgt: _expected_outcome(curves[curves["target"] == tgt], 40.0) for tgt in ("N1", "N2", "RP")}
        row = samples.loc[sample]
        assert row["call"] == rs.interpret(outcomes).call, sample
        for tgt, kind in outcomes.items():
            assert row[f"{tgt}_outcome"] == kind
    # the plate holds real negatives and positives: both calls appear
    assert {"positive", "negative"} <= set(samples["call"])
    assert samples.loc["S-001", "call"] == "negative"


def test_cdc_controls_pass_and_odd_control_curves_hold_results(cdc_plate):
    c = cdc_plate.controls.set_index("role")
    assert c["passed"].all()
    assert c.loc["ntc", "N1_outcome"] == "negative" and c.loc["pc", "N1_outcome"] == "positive"
    assert c.loc["ec", "RP_outcome"] == "positive" and c.loc["ec", "N2_outcome"] == "negative"
    # a late rise in an extraction-control well is doubtful: it is named, and while a control is flagged no
    # sample result is released
    assert "needs a person's eyes" in c.loc["ec", "review"]
    assert (cdc_plate.samples["status"] == "review").all()
    # the run-level reason is given once (holds), each sample says the whole run is held
    assert any("control HSC flagged" in h for h in cdc_plate.holds)
    assert cdc_plate.samples["review_reasons"].str.contains("whole run is held").all()
    assert not cdc_plate.samples["review_reasons"].str.contains("control HSC flagged").any()


def _variant(tmp_path, edit) -> Path:
    pm = pd.read_csv(CDC_MAP, keep_default_na=False)
    pm = edit(pm)
    path = tmp_path / "variant.csv"
    pm.to_csv(path, index=False)
    return path


def test_amplifying_ntc_invalidates_the_run(tmp_path, run, cdc_plate):
    amplified_well = cdc_plate.table.loc[cdc_plate.table["amplified"] & (cdc_plate.table["role"] == "sample"), "well"].iat[0]
    ntc_n1 = pd.read_csv(CDC_MAP).query("sample == 'NTC' and target == 'N1'")["well"].iat[0]

    def swap(pm):
        a, b = pm["well"] == ntc_n1, pm["well"] == amplified_well
        pm.loc[a, "well"], pm.loc[b, "well"] = amplified_well, ntc_n1
        return pm

    plate = analyze_run(run, "cdc-2019-ncov", plate_map=_variant(tmp_path, swap))
    assert plate.valid is False
    # the problem names the NTC well, its target and what it showed
    cq = plate.table.set_index("well").loc[amplified_well, "cq_threshold"]
    cq = float(cq.iloc[0]) if hasattr(cq, "iloc") else float(cq)
    assert any(f"{amplified_well} (N1) amplified at Cq {cq:.1f}, expected negative" in p and "contamination" in p
               for p in plate.problems), plate.problems
    assert (plate.samples["call"] == "run_invalid").all() and (plate.samples["status"] == "rerun").all()

    # a lab whose rule set holds instead of invalidating: the run stays valid, nothing is released, the reason
    # is given once, naming the well
    lab = tmp_path / "hold.yaml"
    lab.write_text("extends: cdc-2019-ncov\ncontrols:\n  ntc:\n    on_failure: hold\n")
    held = analyze_run(run, lab, plate_map=_variant(tmp_path, swap))
    assert held.valid is True and not held.problems
    assert any(f"{amplified_well} (N1) amplified at Cq" in h for h in held.holds)
    assert (held.samples["status"] == "review").all() and (held.samples["call"] != "run_invalid").all()


def test_unknown_control_action_is_refused(tmp_path):
    lab = tmp_path / "bad.yaml"
    lab.write_text("extends: cdc-2019-ncov\ncontrols:\n  ntc:\n    on_failure: ignore\n")
    with pytest.raises(Exception) as err:
        load_ruleset(lab)
    assert "on_failure" in str(err.value) and "invalidate or hold" in str(err.value)


def test_missing_extraction_control_invalidates_the_run(tmp_path, run):
    def drop_hsc(pm):
        pm.loc[pm["sample"] == "HSC", ["sample", "role", "target"]] = ["", "empty", ""]
        return pm

    plate = analyze_run(run, "cdc-2019-ncov", plate_map=_variant(tmp_path, drop_hsc))
    assert plate.valid is False and any("no HSC" in p for p in plate.problems)
    assert (plate.samples["status"] == "rerun").all() and (plate.samples["call"] == "run_invalid").all()


def test_positive_control_outside_lab_range_fails(tmp_path, run, cdc_plate):
    pc_cq = cdc_plate.controls.set_index("role").loc["pc", "N1_cq"]
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"extends: cdc-2019-ncov\ncontrols:\n  pc:\n    cq_range: {{N1: [{pc_cq + 1:.2f}, 40]}}\n")
    plate = analyze_run(run, lab, plate_map=CDC_MAP)
    assert plate.valid is False and any("outside" in p and "N1" in p for p in plate.problems)
    assert (plate.samples["status"] == "rerun").all() and (plate.samples["call"] == "run_invalid").all()


def test_who_plate_calls_follow_the_scheme(run):
    plate = analyze_run(run, "who-charite-e-rdrp", plate_map=WHO_MAP)
    rs = load_ruleset("who-charite-e-rdrp")
    assert plate.valid is True
    t, samples = plate.table, plate.samples.set_index("sample")
    for sample, curves in t[t["role"] == "sample"].groupby("sample"):
        outcomes = {tgt: (_expected_outcome(curves[curves["target"] == tgt], 40.0)
                          if (curves["target"] == tgt).any() else "missing") for tgt in ("E", "RdRp")}
        assert samples.loc[sample, "call"] == rs.interpret(outcomes).call
    assert set(samples["call"]) == {"positive", "inconclusive", "negative", "screen_positive"}


def test_targets_unknown_to_the_rule_set_are_refused():
    with pytest.raises(Exception) as err:
        analyze_file(DATA / "own_mix_a.rdml", rules="cdc-2019-ncov")
    assert "none of the run's targets" in str(err.value) and "aliases" in str(err.value)


def test_weak_positive_is_held_for_review(tmp_path, run, cdc_plate):
    """A positive within the review band (lab default 37-40) is called but held for a specialist."""
    s = cdc_plate.samples.set_index("sample")
    pos = s[s["call"] == "positive"].index[0]
    n1 = float(s.loc[pos, "N1_cq"])
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"extends: cdc-2019-ncov\ntargets:\n  N1: {{review_above: {np.floor(n1) - 1:.0f}}}\n")
    plate = analyze_run(run, lab, plate_map=CDC_MAP)
    row = plate.samples.set_index("sample").loc[pos]
    assert row["call"] == "positive" and row["status"] == "review" and "weak positive" in row["review_reasons"]
