"""Instrument adapters: each export layout, built from the real RDML runs, reads back the same curves; bad
tables are refused with one line naming the file and the well."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oligolab.errors import InputError
from oligolab.lab.analysis import analyze_file, analyze_run, load_runs
from oligolab.lab.formats import detect_format, read_runs
from oligolab.lab.formats.rdes import write_rdes
from oligolab.lab.platemap import apply_plate_map, read_plate_map
from oligolab.lab.formats.rdml import load_rdml
from oligolab.lab.run import well_from_position, well_sort_key

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
EXPORTS = DATA / "exports"
CFX_AMP = EXPORTS / "eva_green_a - Quantification Amplification Results_SYBR.csv"
CFX_XLSX = EXPORTS / "eva_green_a - Quantification Amplification Results.xlsx"
CFX_CQ = EXPORTS / "eva_green_a - Quantification Cq Results.csv"


def _same_curves(run, ref, key=("well", "target")):
    m = ref.layout.reset_index().merge(run.layout.reset_index(), on=list(key), suffixes=("_ref", ""))
    assert len(m) == len(ref.layout) == len(run.layout)
    assert np.array_equal(ref.fluor[m["index_ref"]], run.fluor[m["index"]])
    return m


@pytest.mark.parametrize("path,fmt", [
    (EXPORTS / "own_mix_a_quantstudio.txt", "quantstudio"),
    (EXPORTS / "own_mix_a_quantstudio.xlsx", "quantstudio"),
])
def test_quantstudio_export_reads_the_real_curves(path, fmt):
    assert detect_format(path) == fmt
    run = read_runs(path)[0]
    ref = load_rdml(DATA / "own_mix_a.rdml")
    m = _same_curves(run, ref)
    assert (m["sample_ref"] == m["sample"]).all() and (run.layout["role"] == "sample").all()
    assert (run.plate_rows, run.plate_columns) == (16, 24)


def test_abi_7500_export_reads_the_real_curves():
    path = EXPORTS / "own_mix_a_7500.txt"
    assert detect_format(path) == "abi-7500"
    run = read_runs(path)[0]
    ref = load_rdml(DATA / "own_mix_a.rdml")
    # the file renumbers the 384-plate wells in plate order into a 96-well block (see SOURCE.md)
    order = sorted(ref.layout["well"], key=well_sort_key)
    to96 = {w: well_from_position(k + 1, 12) for k, w in enumerate(order)}
    ref.layout["well"] = ref.layout["well"].map(to96)
    _same_curves(run, ref)
    assert (run.plate_rows, run.plate_columns) == (8, 12)


@pytest.mark.parametrize("path", [CFX_AMP, CFX_XLSX])
def test_biorad_cfx_export_with_cq_results_as_plate_map(path):
    assert detect_format(path) == "biorad-cfx"
    run = read_runs(path)[0]
    assert (run.layout["role"] == "empty").all() and set(run.layout["dye"]) == {"SYBR"}
    with pytest.raises(InputError, match="no plate layout"):
        analyze_run(run, "cdc-2019-ncov")
    alone = analyze_run(run)          # without rules: curve by curve, each well a sample, with a note
    assert (alone.samples["sample"].isin(run.layout["well"])).all() and "no plate layout" in " ".join(alone.curves.notes)
    mapped = apply_plate_map(run, read_plate_map(CFX_CQ), CFX_CQ)
    m = _same_curves(mapped, load_rdml(DATA / "eva_green_a.rdml"))
    assert (m["sample_ref"] == m["sample"]).all()


def test_cfx_run_gives_the_same_results_as_the_rdml():
    """Same readings, same LinRegPCR results, whichever file the lab exported."""
    via_csv = analyze_file(CFX_AMP, plate_map=CFX_CQ)[0].table
    via_rdml = analyze_file(DATA / "eva_green_a.rdml")[0].table
    m = via_rdml.merge(via_csv, on=["well", "target"], suffixes=("", "_csv"))
    assert len(m) == 98
    assert np.allclose(m["td0"], m["td0_csv"], equal_nan=True)
    assert (m["amplified"] == m["amplified_csv"]).all()


def test_rdes_example_and_round_trip(tmp_path):
    example = DATA / "schema" / "RDES_v1_0_example_amplification.tsv"
    assert detect_format(example) == "rdes"
    run = read_runs(example)[0]
    assert run.n_curves > 10 and run.meta.get("unrecorded_start") is None
    plate = analyze_file(example)[0]  # the example starts at cycle 3: cycles 1-2 are padded, noted
    assert any("cycles 1-2 were not recorded" in n for n in plate.provenance["notes"])
    ref = load_rdml(DATA / "eva_green_b.rdml")
    path = write_rdes(ref, tmp_path / "eva_green_b_rdes.tsv")
    back = read_runs(path)[0]
    _same_curves(back, ref)


def test_long_and_wide_tables_from_real_data(tmp_path):
    ref = load_rdml(DATA / "own_mix_a.rdml")
    rows = [{"Well": w, "Target": t, "Sample": s, "Role": "sample", "Cycle": int(c), "RFU": v}
            for (w, t, s), f in zip(ref.layout[["well", "target", "sample"]].itertuples(index=False), ref.fluor)
            for c, v in zip(ref.cycles, f)]
    long_path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(long_path, index=False)
    assert detect_format(long_path) == "long"
    _same_curves(read_runs(long_path)[0], ref)
    wide = pd.DataFrame({"Cycle": ref.cycles, **{w: f for w, f in zip(ref.layout["well"], ref.fluor)}})
    wide_path = tmp_path / "wide.tsv"
    wide.to_csv(wide_path, sep="\t", index=False)
    assert detect_format(wide_path) == "wide"
    assert np.array_equal(read_runs(wide_path)[0].fluor, ref.fluor)


# ----------------------------------------------------------------------------------------------- bad input

def test_unknown_instrument_csv_is_refused(tmp_path):
    bad = tmp_path / "mystery.csv"
    bad.write_text("Position;Channel;Value\nA1;FAM;123\n")
    with pytest.raises(InputError) as err:
        read_runs(bad)[0]
    msg = str(err.value)
    assert "mystery.csv" in msg and "unknown instrument export" in msg and "RDML" in msg


def test_a_readme_naming_an_export_section_is_no_export():
    """data/qpcr/SOURCE.md names QuantStudio's [Amplification Data] section in its prose: refused as an unknown
    export (with the formats that are read), not as a QuantStudio export missing its section."""
    with pytest.raises(InputError) as err:
        read_runs(DATA / "SOURCE.md")
    assert "[Amplification Data]" in (DATA / "SOURCE.md").read_text()
    assert "unknown instrument export" in str(err.value) and "SOURCE.md" in str(err.value)


def test_cq_results_file_given_as_run_explains_itself():
    with pytest.raises(InputError, match="Cq results but no amplification readings"):
        read_runs(CFX_CQ)[0]


def test_rows_out_of_cycle_order_read_the_same_curves(tmp_path):
    lines = CFX_AMP.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]   # swap the rows of cycles 5 and 6
    bad = tmp_path / "swapped - Quantification Amplification Results_SYBR.csv"
    bad.write_text("\n".join(lines) + "\n")
    # each reading keeps its cycle number: rows out of order are read into the same curves
    assert np.array_equal(read_runs(bad)[0].fluor, read_runs(CFX_AMP)[0].fluor, equal_nan=True)


def test_abi_rows_out_of_cycle_order_read_the_same_curves(tmp_path):
    text = (EXPORTS / "own_mix_a_7500.txt").read_text().splitlines()
    start = text.index("[Amplification Data]") + 2
    text[start + 3], text[start + 4] = text[start + 4], text[start + 3]
    bad = tmp_path / "bad_7500.txt"
    bad.write_text("\n".join(text) + "\n")
    assert np.array_equal(read_runs(bad)[0].fluor, read_runs(EXPORTS / "own_mix_a_7500.txt")[0].fluor, equal_nan=True)


def test_nan_reading_is_refused_naming_file_well_and_cycle(tmp_path):
    frame = pd.read_csv(CFX_AMP)
    frame.loc[frame["Cycle"] == 22, "C9"] = np.nan
    bad = tmp_path / "gap - Quantification Amplification Results_SYBR.csv"
    frame.to_csv(bad, index=False, na_rep="NaN")
    with pytest.raises(InputError) as err:
        analyze_file(bad, plate_map=CFX_CQ)
    msg = str(err.value)
    assert "gap - Quantification" in msg and "record 'C9'" in msg and "cycle(s) 22" in msg
    # on request the reading is interpolated and the curve held for review, never released silently
    plate = analyze_file(bad, plate_map=CFX_CQ, gaps="repair")[0]
    row = plate.table[plate.table["well"] == "C9"].iloc[0]
    assert "gap_repaired:cycles 22" in row["flags"] and row["review"]


def test_text_reading_is_refused(tmp_path):
    frame = pd.read_csv(CFX_AMP, dtype=str)
    frame.loc[3, "B8"] = "OVER"
    bad = tmp_path / "text - Quantification Amplification Results_SYBR.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(InputError) as err:
        read_runs(bad)[0]
    assert "record 'B8'" in str(err.value) and "'OVER'" in str(err.value)


def test_well_missing_from_plate_map_is_named(tmp_path):
    pm = pd.read_csv(CFX_CQ)
    pm = pm[pm["Well"] != "K10"]
    path = tmp_path / "map.csv"
    pm.to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        analyze_file(CFX_AMP, plate_map=path)
    assert "map.csv" in str(err.value) and "record 'K10'" in str(err.value) and "plate map" in str(err.value)


def test_plate_map_well_without_data_is_named(tmp_path):
    pm = pd.read_csv(CFX_CQ)
    extra = pm.iloc[[0]].assign(Well="P24")
    path = tmp_path / "map.csv"
    pd.concat([pm, extra]).to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        analyze_file(CFX_AMP, plate_map=path)
    assert "record 'P24'" in str(err.value) and "no curve there" in str(err.value)


def test_used_well_without_sample_is_named(tmp_path):
    pm = pd.read_csv(CFX_CQ)
    pm.loc[pm["Well"] == "B09", "Sample"] = ""
    path = tmp_path / "map.csv"
    pm.to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        read_plate_map(path)
    assert "record 'B9'" in str(err.value) and "no sample name" in str(err.value)


def test_multirun_rdml_selects_runs():
    runs = load_runs(DATA / "vermeulen_data_vermeulen_std_150000_15000.rdml", run="AHCY_20080229")
    assert len(runs) == 1 and runs[0].n_curves == 6
