"""Cq (TD0) and PCR efficiency agree with the peer, rdmlpython's LinRegPCR, on the same real runs.

Stated tolerance (docs/lab.md): TD0 within 0.1 cycle for at least 95% of the wells the peer calls amplified,
and the same amplification call for every well. The peer's TD0 is printed with 2 decimals and its
efficiencies with 4, so exact agreement shows as differences up to 0.005 cycle and 0.00005.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oligolab.errors import InputError
from oligolab.lab.analysis import analyze_file
from oligolab.lab.curves import analyze_curves, prepare
from oligolab.lab.formats.rdml import load_rdml

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
CQ_TOLERANCE = 0.1          # cycles
MIN_FRACTION_WITHIN = 0.95  # of amplified wells


def _peer(name: str) -> pd.DataFrame:
    peer = pd.read_csv(DATA / name, sep="\t")
    for col in ("amplification", "plateau"):
        peer[col] = peer[col].map(lambda v: str(v).strip().lower() in ("true", "yes"))
    return peer


def _ours(rdml: str, gaps: str = "refuse") -> pd.DataFrame:
    return analyze_curves(prepare(load_rdml(DATA / rdml), gaps)).table


CASES = [("eva_green_a.rdml", "eva_green_a_results.tsv", "refuse"),
         ("own_mix_a.rdml", "own_mix_a_results.tsv", "refuse"),
         ("technical_matrix_gaps.rdml", "technical_matrix_gaps_results.tsv", "repair")]


@pytest.mark.parametrize("rdml,results,gaps", CASES)
def test_td0_and_amplification_match_linregpcr(rdml, results, gaps):
    ours, peer = _ours(rdml, gaps), _peer(results)
    m = ours.merge(peer, on=["well", "target"], suffixes=("", "_peer"))
    assert len(m) == len(peer) == len(ours)
    amplified = m["amplification"]
    assert amplified.sum() >= 0.8 * len(m)  # these runs are mostly amplifying reactions
    diff = (m["td0"] - m["TD0"]).abs()[amplified]
    within = float((diff <= CQ_TOLERANCE).mean())
    assert within >= MIN_FRACTION_WITHIN, f"{rdml}: only {within:.1%} of amplified wells within {CQ_TOLERANCE}"
    # LinRegPCR's own call (a quantification column) agrees with the peer, well for well; the diagnostic call
    # never says "not amplified" where the peer sees amplification
    assert (m["amplified_linregpcr"] == m["amplification"]).all()
    assert not (m["amplification"] & (m["call"] == "not amplified")).any()


@pytest.mark.parametrize("rdml,results,gaps", CASES)
def test_efficiencies_match_linregpcr(rdml, results, gaps):
    ours, peer = _ours(rdml, gaps), _peer(results)
    m = ours.merge(peer, on=["well", "target"], suffixes=("", "_peer"))
    ok = m["baseline error"] == 0
    assert (m["baseline_error"] == m["baseline error"]).all()
    assert np.allclose(m.loc[ok, "efficiency"], m.loc[ok, "indiv PCR eff"], atol=2e-4)
    has_mean = m["PCR eff"] > 0
    assert np.allclose(m.loc[has_mean, "mean_efficiency"], m.loc[has_mean, "PCR eff"], atol=2e-4)
    assert (m["plateau"] == m["plateau_peer"]).all()


def test_parity_through_the_public_api():
    """The per-well table of analyze_file (what the web service sees) carries the same TD0."""
    plate = analyze_file(DATA / "own_mix_a.rdml")[0]
    peer = _peer("own_mix_a_results.tsv")
    m = plate.table.merge(peer, on=["well", "target"])
    assert (m["cq_td0"] - m["TD0"]).abs().max() <= CQ_TOLERANCE


def test_shifted_baseline_does_not_change_results():
    """technical_shifted_baseline: a constant added to each curve of the ' X' copies must change nothing."""
    m = _pair_shifted(_ours("technical_shifted_baseline.rdml"))
    assert len(m) >= 60
    assert np.allclose(m["td0"], m["td0_x"], atol=1e-9, equal_nan=True)
    assert (m["amplified"] == m["amplified_x"]).all()
    assert np.allclose(m["efficiency"], m["efficiency_x"], atol=2e-3, equal_nan=True)


def _pair_shifted(t: pd.DataFrame) -> pd.DataFrame:
    """Pair each shifted curve with its original: same sample, target without ' X', same replicate order."""
    orig = t[~t["target"].str.endswith(" X")].copy()
    shif = t[t["target"].str.endswith(" X")].copy()
    shif["target"] = shif["target"].str[:-2]
    for df in (orig, shif):
        df["rep"] = df.groupby(["sample", "target"]).cumcount()
    return orig.merge(shif, on=["sample", "target", "rep"], suffixes=("", "_x"))


def test_damaged_gap_run_is_refused_with_well_and_cycles():
    with pytest.raises(InputError) as err:
        prepare(load_rdml(DATA / "technical_matrix_gaps.rdml"))
    msg = str(err.value)
    assert "technical_matrix_gaps.rdml" in msg and "'K3'" in msg and "cycle(s) 2" in msg
    assert "--repair-gaps" in msg


def test_repaired_gap_curves_are_flagged_never_silent():
    t = _ours("technical_matrix_gaps.rdml", "repair")
    damaged = {"K3", "K5", "K7", "K9", "K11", "L2", "L5", "L7", "L9", "L11", "M3", "M5", "M7", "M9", "N3", "N5",
               "N7", "N9", "N11", "O1", "O3", "O7"}  # technical_README.md
    flagged = t[t["flags"].str.contains("gap_repaired|excluded")]
    assert set(flagged["well"]) == damaged
    assert t.loc[t["well"].isin(damaged), "review"].all()
    # wells with (almost) no readings get no Cq at all
    for well in ("O3", "O7"):
        row = t[t["well"] == well].iloc[0]
        assert row["excluded"] and np.isnan(row["cq_td0"])
