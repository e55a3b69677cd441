"""Ground truth for the real qPCR runs in data/qpcr and data/qpcr/realworld, defined independently of the caller.

Used by tests/test_lab_realworld.py (assertions) and benchmarks/lab_calls.py (the per-file table written down
in benchmarks/RESULTS.md).

* **Clearly amplified** (:func:`clearly_amplified`): the median of the last five readings stands at least 20
  noise SDs above both the level of cycles 3-10 and that level's trend extended to the end (a baseline drift
  continues its trend; an amplification leaves it), and every one of the last five readings at least 10 SDs
  above the level. Noise: robust SD (1.4826 x MAD / sqrt 2) of the step-to-step changes of cycles 3-15, never
  below the smallest step between readings (instruments that print two decimals). **Or** the instrument's own
  Cq is at most 35, for instruments that give no Cq to noise (the LightCycler 96 does: its Cq is not used).
* **Undetermined**: the instrument saw no amplification: QuantStudio "Undetermined", a 7500/StepOne Ct at or
  after the last cycle, a LightCycler 480 well without a Cp in its "Abs Quant" table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oligolab.lab.analysis import load_runs
from oligolab.lab.curves import analyze_curves, prepare
from oligolab.lab.platemap import default_layout
from oligolab.lab.run import Run, normalize_well

ROOT = Path(__file__).resolve().parents[1]
QPCR = ROOT / "data" / "qpcr"
REAL = QPCR / "realworld"

#: every run file with amplification readings, and the plate map each is analysed with (None: the file's own)
RUN_FILES: dict[str, str | None] = {
    "eva_green_a.rdml": None, "eva_green_b.rdml": None, "own_mix_a.rdml": None,
    "technical_matrix_gaps.rdml": None, "technical_shifted_baseline.rdml": None,
    "vermeulen_data_vermeulen_std_150000_15000.rdml": None,
    "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt": None,
    "realworld/DEMO_COVID2020_THERMO.eds": None, "realworld/analysis_result_ejemplo.txt": None,
    "realworld/quantstudio-export_amplification.txt": None,
    "realworld/lc96_bACTXY.rdml": None, "realworld/stepone_std.rdml": None, "realworld/sce.eds": None,
    "realworld/BioRad.xlsx": "realworld/BioRad_platemap_derived.csv", "realworld/table.xlsx": None,
    "realworld/fdata.csv": None,
    "realworld/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1_amplification.txt": None,
    "realworld/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate2_amplification.txt": None,
}
#: files with missing readings: damaged on purpose (RDML consortium) or ragged tables (curves of
#: different lengths): the library's default refuses them naming the fix --repair-gaps, `oligolab lab analyze`
#: repairs them and holds the repaired curves (tests/test_lab_cli.py)
NEEDS_REPAIR = {"technical_matrix_gaps.rdml", "realworld/table.xlsx", "realworld/fdata.csv"}
#: files without amplification readings: refused in one line
NO_READINGS = ["realworld/Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1_Cq.txt",
               "realworld/Stuart_dAgr_glyS_spoVG_5S_individualWells_Cq.txt",
               "realworld/Stuart_dAgr_glyS_spoVG_5S_individualWells_Cq_select.txt",
               "realworld/quantstudio-platemap_derived.csv", "realworld/BioRad_platemap_derived.csv",
               "Edward_qPCR_Nrd1_calibration_2019-02-02_Cq.txt"]
#: instruments whose Cq is no evidence of amplification (they give a Cq to noise)
CQ_NOT_EVIDENCE = {"realworld/lc96_bACTXY.rdml"}


def clearly_amplified(fluor: np.ndarray) -> np.ndarray:
    """Per curve: rises clearly and for good (see the module docstring)."""
    c = fluor.shape[1]
    x = np.arange(c, dtype=np.float64)
    early = fluor[:, 2:10]
    d = np.diff(fluor[:, 2:15], axis=1)
    noise = 1.4826 * np.median(np.abs(d - np.median(d, axis=1)[:, None]), axis=1) / np.sqrt(2)
    steps = np.abs(np.diff(fluor, axis=1))
    steps = np.where(steps > 0, steps, np.inf)
    smallest = steps.min(axis=1)
    noise = np.maximum(noise, np.where(np.isfinite(smallest), smallest, 0.0))
    level = np.median(early, axis=1)
    slope = np.polyfit(x[2:10], early.T, 1)[0]
    trend_end = level + slope * (x[-3] - np.median(x[2:10]))
    last = fluor[:, -5:]
    end = np.median(last, axis=1)
    return ((end - level >= 20 * noise) & (end - trend_end >= 20 * noise)
            & ((last - level[:, None]) >= 10 * noise[:, None]).all(axis=1))


def instrument_truth(run: Run, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(instrument Cq per curve, NaN where none; the instrument called the curve undetermined)."""
    lay = run.layout
    n = len(lay)
    cq = lay["instrument_cq"].to_numpy(dtype=np.float64) if "instrument_cq" in lay else np.full(n, np.nan)
    cp_table = path.with_name(path.name.replace("_amplification.txt", "_Cq.txt"))
    if run.fmt == "lightcycler480" and cp_table.exists():
        t = pd.read_csv(cp_table, sep="\t", skiprows=1)
        cp = {normalize_well(p): float(v) for p, v in zip(t["Pos"], t["Cp"])}
        cq = np.array([cp.get(w, np.nan) for w in lay["well"]])
        return cq, ~np.isfinite(cq)
    if "instrument_call" in lay:
        return cq, (lay["instrument_call"] == "undetermined").to_numpy()
    undetermined = np.isfinite(cq) & (cq >= run.n_cycles)
    return np.where(undetermined, np.nan, cq), undetermined


@dataclass
class FileFigures:
    """The figures of one run file (all runs of the file together)."""

    name: str
    instrument: str
    curves: int
    clear: int
    silent: int            # clearly amplified, called "not amplified" (must be 0)
    outright: int          # clearly amplified, called "amplified"
    review: int            # every curve held for review
    undetermined: int
    undetermined_amplified: int
    undetermined_review: int
    cq_diff: np.ndarray    # our threshold Cq minus the instrument's Cq, curves amplified by both

    @property
    def outright_rate(self) -> float:
        return self.outright / self.clear if self.clear else float("nan")


def analysed_curves(name: str) -> list[tuple[Run, pd.DataFrame]]:
    """Every run of a file, each curve with readings analysed (a run without layout curve by curve)."""
    path = QPCR / name
    out = []
    for run in load_runs(path):
        if (run.layout["role"] == "empty").all():
            run = default_layout(run)
        run = prepare(run, "repair" if name in NEEDS_REPAIR else "refuse")
        out.append((run, analyze_curves(run).table))
    return out


def figures(name: str) -> FileFigures:
    """Calls against the truth for one file (see the module docstring)."""
    path = QPCR / name
    counts = np.zeros(8, dtype=np.int64)
    diffs, instrument = [], ""
    for run, table in analysed_curves(name):
        used = (table["role"] != "empty").to_numpy()
        cq, undetermined = instrument_truth(run, path)
        clear = clearly_amplified(np.nan_to_num(run.fluor)) & used
        if name not in CQ_NOT_EVIDENCE:
            clear |= (cq <= 35) & used
        call = table["call"].to_numpy()
        undetermined = undetermined & used
        counts += [used.sum(), clear.sum(), (clear & (call == "not amplified")).sum(),
                   (clear & (call == "amplified")).sum(), (call == "review").sum(), undetermined.sum(),
                   (undetermined & (call == "amplified")).sum(), (undetermined & (call == "review")).sum()]
        both = (call == "amplified") & np.isfinite(cq) & np.isfinite(table["cq_threshold"].to_numpy())
        diffs.append(table["cq_threshold"].to_numpy()[both] - cq[both])
        instrument = run.instrument or run.fmt
    return FileFigures(name, instrument, *[int(v) for v in counts],
                       cq_diff=np.concatenate(diffs) if diffs else np.array([]))
