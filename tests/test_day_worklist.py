"""Worklists (oligolab.lab.worklist): controls and waiting specimens placed on 96/384-well plates, the plate map
written as CSV and read back by the lab core, and a run laid out by it analysed with the specimen ids."""

from __future__ import annotations

import io

import pytest

from day_support import day_run
from oligolab.errors import InputError
from oligolab.lab.analysis import analyze_run, load_runs
from oligolab.lab.platemap import read_plate_map
from oligolab.lab.rules import load_ruleset
from oligolab.lab.worklist import build_worklist, fill_order

CDC = load_ruleset("cdc-2019-ncov")
SPECIMENS = [f"SYK-{i:04d}" for i in range(1, 97)]


def _read_back(tmp_path, wl):
    path = tmp_path / "map.csv"
    path.write_text(wl.plate_map_csv())
    return read_plate_map(path)


def test_96_well_singleplex_places_controls_then_29_specimens(tmp_path):
    wl = build_worklist(SPECIMENS, CDC, plate=96)
    assert wl.controls == ("NTC", "nCoVPC", "HSC")
    assert len(wl.placed) == 29 and wl.waiting == tuple(SPECIMENS[29:])        # 32 sets of 3 wells
    assert wl.wells_of("NTC") == ["A1", "B1", "C1"] and wl.wells_of("SYK-0001") == ["B2", "C2", "D2"]
    back = _read_back(tmp_path, wl)
    assert len(back) == 96 and (back["role"] != "empty").sum() == 96
    ntc = back[back["sample"] == "NTC"]
    assert list(ntc["role"]) == ["ntc"] * 3 and list(ntc["target"]) == ["N1", "N2", "RP"]
    assert set(back.loc[back["role"] == "sample", "sample"]) == set(SPECIMENS[:29])


def test_384_well_plate_takes_a_day_of_96_and_leaves_the_rest_empty(tmp_path):
    wl = build_worklist(SPECIMENS, CDC, plate=384)
    assert wl.placed == tuple(SPECIMENS) and wl.waiting == ()
    back = _read_back(tmp_path, wl)
    assert len(back) == 384 and (back["role"] != "empty").sum() == 3 * 99
    assert back["well"].iloc[0] == "A1" and back["well"].iloc[16] == "A2"      # column by column
    assert fill_order(384)[-1] == "P24"


def test_multiplex_puts_every_target_in_one_well_by_dye(tmp_path):
    wl = build_worklist(SPECIMENS, CDC, plate=96, multiplex=True, dyes={"N1": "FAM", "N2": "HEX", "RP": "Cy5"})
    assert len(wl.placed) == 93 and wl.waiting == tuple(SPECIMENS[93:])
    back = _read_back(tmp_path, wl)
    a1 = back[back["well"] == "A1"]
    assert list(a1["dye"]) == ["FAM", "HEX", "Cy5"] and set(a1["sample"]) == {"NTC"}


@pytest.mark.parametrize("kwargs, message", [
    (dict(specimens=["NTC"]), "name of a control"),
    (dict(specimens=["A", "A"]), "listed twice"),
    (dict(specimens=["A"], plate=48), "48-well plate is not supported"),
    (dict(specimens=["A"], multiplex=True, dyes={"N1": "FAM"}), "needs a dye for N2, RP"),
    (dict(specimens=["A"], targets=["ORF1ab"]), "not in rule set"),
])
def test_worklist_refusals(kwargs, message):
    specimens = kwargs.pop("specimens")
    with pytest.raises(InputError, match=message):
        build_worklist(specimens, CDC, **kwargs)


def test_a_run_laid_out_by_the_worklist_is_analysed_per_specimen(tmp_path):
    wl = build_worklist(SPECIMENS, CDC, plate=384)
    plate_map = wl.plate_map()
    positives = {"SYK-0003", "SYK-0050"}
    run_file = tmp_path / "day.rdml"
    run_file.write_bytes(day_run(plate_map, positives))
    map_file = tmp_path / "map.csv"
    map_file.write_text(wl.plate_map_csv())
    result = analyze_run(load_runs(run_file)[0], CDC, plate_map=map_file)
    samples = result.samples.set_index("sample")
    assert set(samples.index) == set(SPECIMENS)
    assert result.valid, result.problems
    assert set(samples.index[samples["call"] == "positive"]) == positives
    assert (samples.drop(index=list(positives))["call"] == "negative").all()
