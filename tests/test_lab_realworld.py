"""Every real run in data/qpcr and data/qpcr/realworld: no clearly amplified curve is called "not amplified";
at least 95% of them are called amplified outright; files without readings are refused in one line.

"Clearly amplified" and "undetermined" are defined in tests/lab_truth.py, independently of the caller;
benchmarks/lab_calls.py prints the same figures per file (benchmarks/RESULTS.md, "lab: calls on real runs").
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from lab_truth import NEEDS_REPAIR, NO_READINGS, QPCR, REAL, RUN_FILES, analysed_curves, clearly_amplified, figures
from oligolab.errors import InputError
from oligolab.lab.analysis import analyze_file, load_runs


@pytest.mark.parametrize("name", sorted(RUN_FILES))
def test_no_clearly_amplified_curve_is_called_not_amplified(name):
    f = figures(name)
    assert f.silent == 0, f"{name}: {f.silent} clearly amplified curve(s) called 'not amplified'"
    assert f.clear > 0 or name == "realworld/sce.eds"
    # review is for the doubtful curve: >= 95% of the clear ones are amplified outright (the LightCycler 96 run:
    # 92%, its held clear curves are NTC creeps and drifts, see the next test and benchmarks/RESULTS.md)
    floor = 0.9 if name == "realworld/lc96_bACTXY.rdml" else 0.95
    assert f.clear == 0 or f.outright_rate >= floor, f"{name}: {f.outright}/{f.clear} amplified outright"


def test_clear_curves_held_on_the_lightcycler_96_run_are_genuinely_doubtful():
    """The one exception to ">= 95% outright": every clear curve the LightCycler 96 run holds is an NTC well of
    a faint channel whose slow creep holds the run for a look (a released NTC would hide contamination), or a
    drift that ends less than 5% above its first cycles' level (a real amplification multiplies the signal of
    these channels many times: the amplified curves of the same targets rise about 100x more)."""
    (run, table), = analysed_curves("realworld/lc96_bACTXY.rdml")
    clear = clearly_amplified(np.nan_to_num(run.fluor))
    held = clear & (table["call"] == "review").to_numpy()
    assert 0 < held.sum() <= 0.08 * clear.sum()
    level = np.median(run.fluor[:, 2:10], axis=1)
    rise = np.median(run.fluor[:, -5:], axis=1) - level
    ntc = (table["role"] == "ntc").to_numpy()
    for i in np.flatnonzero(held):
        assert ntc[i] or rise[i] < 0.05 * level[i], (table["well"].iat[i], rise[i] / level[i])
        if not ntc[i]:
            same = (table["target"] == table["target"].iat[i]).to_numpy() & (table["call"] == "amplified").to_numpy()
            assert np.median(rise[same]) > 10 * rise[i]


@pytest.mark.parametrize("name", ["realworld/analysis_result_ejemplo.txt",
                                  "realworld/quantstudio-export_amplification.txt",
                                  "realworld/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1_amplification.txt"])
def test_wells_the_instrument_calls_undetermined_are_rarely_called_amplified(name):
    """False positives on undetermined wells: drifts (7500 RNase P in water wells) are held, never amplified;
    what is called amplified is a late real rise the instrument's threshold missed (recorded per file)."""
    f = figures(name)
    assert f.undetermined > 0
    expected = {"realworld/analysis_result_ejemplo.txt": 0,        # 13 drifting RNase P curves: review
                "realworld/quantstudio-export_amplification.txt": 6,  # late exponential rises in a 30-cycle run
                "realworld/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1_amplification.txt": 4}  # LC480 no Cp
    assert f.undetermined_amplified <= expected[name]


@pytest.mark.parametrize("name", sorted(RUN_FILES))
def test_every_run_file_is_analysed_or_refused_with_the_fix(name, tmp_path):
    plate_map = RUN_FILES[name]
    kwargs = {"plate_map": QPCR / plate_map} if plate_map else {}
    if name in NEEDS_REPAIR:
        with pytest.raises(InputError) as err:
            analyze_file(QPCR / name, **kwargs)
        assert "\n" not in str(err.value) and "--repair-gaps" in str(err.value) and name.split("/")[-1] in str(err.value)
        kwargs["gaps"] = "repair"
    plates = analyze_file(QPCR / name, **kwargs)
    assert plates and all(len(p.samples) for p in plates)


@pytest.mark.parametrize("name", NO_READINGS)
def test_files_without_readings_are_refused_in_one_line(name):
    with pytest.raises(InputError) as err:
        analyze_file(QPCR / name)
    msg = str(err.value)
    assert "\n" not in msg and name.split("/")[-1] in msg and "fix:" in msg
    assert "no amplification readings" in msg


def test_quantstudio_384_well_export_gets_the_files_own_well_names():
    """The run's well names are the export's own: [Amplification Data] numbers its wells, [Sample Setup] and
    [Results] give each number its Well Position (a 384-well plate: rows A-P, 24 columns); all 354 curves, 30
    wells of the plate without readings left empty, and the instrument's CT stays with its well."""
    path = REAL / "quantstudio-export_amplification.txt"
    text = path.read_text(encoding="utf-8")

    def section(name: str) -> list[list[str]]:
        rows = text.split(f"[{name}]")[1].split("\n[")[0].strip().split("\n")
        return [r.split("\t") for r in rows]

    setup, amp, results = section("Sample Setup"), section("Amplification Data"), section("Results")
    position = {int(r[0]): r[setup[0].index("Well Position")] for r in setup[1:]}
    assert all(position[int(r[0])] == r[results[0].index("Well Position")] for r in results[1:])
    rn = amp[0].index("Rn")
    with_readings = {position[int(r[0])] for r in amp[1:] if len(r) > rn and r[rn].strip()}
    run = load_runs(path)[0]
    lay = run.layout[run.layout["role"] != "empty"]
    assert len(with_readings) == len(lay) == 354 and set(lay["well"]) == with_readings
    assert (run.plate_rows, run.plate_columns) == (16, 24)
    assert {re.sub(r"\d", "", w) for w in lay["well"]} == set("ABCDEFGHIJKLMNOP")
    ct = {r[results[0].index("Well Position")]: r[results[0].index("CT")] for r in results[1:]}
    mine = dict(zip(lay["well"], lay["instrument_cq"]))
    checked = 0
    for well, value in ct.items():
        if well in mine and value not in ("", "Undetermined"):
            assert np.isclose(mine[well], float(value)), well
            checked += 1
    assert checked == 344


def _shared_data() -> Path | None:
    """The project's shared data folder (../shared/data beside the checkout, or OLIGOLAB_SHARED_DATA)."""
    root = Path(__file__).resolve().parents[1]
    for candidate in (os.environ.get("OLIGOLAB_SHARED_DATA"), root.parent / "shared" / "data",
                      root.parent.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "qpcr-realworld").is_dir():
            return Path(candidate)
    return None


#: the files of ../shared/data/qpcr-realworld and ../shared/data/qpcr that hold amplification readings (the
#: instruments' complete exports, of which data/qpcr keeps the amplification parts)
SHARED_RUNS = {
    "qpcr-realworld/covid19/DEMO_COVID2020_THERMO.eds", "qpcr-realworld/covid19/analysis_result_ejemplo.txt",
    "qpcr-realworld/mcmodel/quantstudio-export.txt", "qpcr-realworld/pcruniversum/BioRad.xlsx",
    "qpcr-realworld/pcruniversum/fdata.csv", "qpcr-realworld/pcruniversum/lc96_bACTXY.rdml",
    "qpcr-realworld/pcruniversum/sce.eds", "qpcr-realworld/pcruniversum/stepone_std.rdml",
    "qpcr-realworld/pcruniversum/table.xlsx", "qpcr-realworld/tidyqpcr/Edward_qPCR_Nrd1_calibration_2019-02-02.txt",
    "qpcr-realworld/tidyqpcr/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1.txt",
    "qpcr-realworld/tidyqpcr/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate2.txt",
    "qpcr/eva_green_a.rdml", "qpcr/eva_green_b.rdml", "qpcr/own_mix_a.rdml", "qpcr/technical_matrix_gaps.rdml",
    "qpcr/technical_shifted_baseline.rdml", "qpcr/technical_shifted_baseline.tsv",
    "qpcr/vermeulen_data_vermeulen_std_150000_15000.rdml", "qpcr/schema/RDES_v1_0_example_amplification.tsv",
}


def test_every_file_of_the_shared_folders_is_analysed_or_refused_in_one_line():
    """What a user gets from `oligolab lab analyze FILE` (missing readings repaired and held, its default) on
    every file of ../shared/data/qpcr-realworld and ../shared/data/qpcr, the complete instrument exports
    included (melt programs, raw and multicomponent data): every file with readings analysed, every other file
    (licences, READMEs, schemas, Cq tables, plate maps) refused in one line naming it and the fix."""
    shared = _shared_data()
    if shared is None:
        pytest.skip("../shared/data is not here (set OLIGOLAB_SHARED_DATA to run this test)")
    analysed, refused = set(), {}
    for path in sorted(p for d in ("qpcr-realworld", "qpcr") for p in (shared / d).rglob("*") if p.is_file()):
        name = path.relative_to(shared).as_posix()
        try:
            plates = analyze_file(path, gaps="repair")
        except InputError as exc:
            refused[name] = str(exc)
            continue
        assert plates and all(p.table["role"].ne("empty").any() for p in plates), name
        analysed.add(name)
    assert analysed == SHARED_RUNS, sorted(analysed ^ SHARED_RUNS)
    for name, msg in refused.items():
        assert "\n" not in msg and str(shared / name) in msg and "fix:" in msg, (name, msg)
