"""RDES v1.0 (the RDML consortium's "RDML Data Exchange Sheet"): columns Well, Sample, Sample Type, Target,
Target Type, Dye, Cq, then one column per cycle; read and written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..run import RDML_TYPE_OF_ROLE, ROLE_OF_SAMPLE_TYPE, Run, normalize_well
from . import common

NAMES = ("rdes",)
HEADER = ["well", "sample", "sample type", "target", "target type", "dye", "cq"]


def detect(probe: common.Probe) -> str | None:
    text = common.rows_to_text(next(iter(probe.sheets.values()), [])[:1]) if probe.is_excel else probe.text
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    cols = [c.strip().strip('"').lower() for c in first.split(common.sniff_delimiter(first))]
    return "rdes" if cols[:7] == HEADER else None


def read(path: Path, fmt: str = "rdes", **_: object) -> list[Run]:
    frame = common.frame_from_text(common.table_text(path), path)
    cols = list(frame.columns)
    if [str(c).strip().lower() for c in cols[:7]] != HEADER:
        raise InputError(
            path,
            "not an RDES table (its first columns must be Well, Sample, Sample Type, Target, Target Type, Dye, Cq)",
            "see RDES v1.0, or choose the right --format",
            line=1,
        )
    frame.columns = [c.strip().title() if k < 7 else c for k, c in enumerate(cols)]
    cycles = common.cycle_numbers(cols[7:], path, "", line0=None)
    records, curves = [], []
    for k, r in frame.iterrows():
        well = normalize_well(r["Well"])
        stype = str(r["Sample Type"]).strip().lower() or "unkn"
        if stype not in ROLE_OF_SAMPLE_TYPE:
            raise InputError(
                path,
                f"sample type '{r['Sample Type']}' is not an RDES code",
                "use unkn, ntc, nac, std, ntp, nrt, pos or opt",
                line=int(k) + 2,
                record=well,
            )
        flu = np.array([common.number(r[c], path, well, c) for c in cols[7:]])
        records.append(
            {
                "well": well,
                "sample": str(r["Sample"]).strip(),
                "target": str(r["Target"]).strip(),
                "dye": str(r["Dye"]).strip(),
                "role": ROLE_OF_SAMPLE_TYPE[stype],
                "sample_type": stype,
                "excluded": "",
                "instrument_cq": common.number(r["Cq"], path, well, "Cq"),
            }
        )
        curves.append((cycles, flu))
    return [common.curves_to_run(path, records, curves, fmt="rdes", instrument="", rows=None, cols=None)]


def rdes_frame(run: Run) -> pd.DataFrame:
    """A run as an RDES v1.0 amplification table (one row per curve, one column per cycle)."""
    lay = run.layout
    used = (lay["role"] != "empty").to_numpy()
    head = pd.DataFrame(
        {
            "Well": lay["well"],
            "Sample": lay["sample"],
            "Sample Type": [st if st else RDML_TYPE_OF_ROLE[r] for st, r in zip(lay["sample_type"], lay["role"])],
            "Target": lay["target"],
            "Target Type": "toi",
            "Dye": lay["dye"],
            "Cq": lay.get("instrument_cq", np.nan),
        }
    )
    values = pd.DataFrame(run.fluor, columns=[str(int(c)) for c in run.cycles])
    return pd.concat([head, values], axis=1)[used].reset_index(drop=True)


def write_rdes(run: Run, path: str | Path) -> Path:
    """Write a run as an RDES v1.0 TSV file (atomically)."""
    from ...reports import write_table

    return write_table(rdes_frame(run), Path(path).with_suffix(".tsv"))
