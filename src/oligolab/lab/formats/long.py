"""Long tables: one reading per row with columns well, cycle, fluorescence (aliases: rfu, fluor, rn, signal),
and optionally target, dye, sample, role; text or the first sheet of a workbook."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ..run import Run, normalize_well
from . import common

NAMES = ("long",)
FLUOR_NAMES = ("fluorescence", "fluor", "rfu", "rn", "signal", "value", "reading")
CYCLE_NAMES = ("cycle", "cycle number", "cycle#", "cyc", "cycles")


def detect(probe: common.Probe) -> str | None:
    text = common.rows_to_text(next(iter(probe.sheets.values()), [])[:1]) if probe.is_excel else probe.text
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    cols = {c.strip().strip('"').lower() for c in first.split(common.sniff_delimiter(first))}
    if "well" in cols and cols & set(CYCLE_NAMES) and cols & set(FLUOR_NAMES):
        return "long"
    return None


def read(path: Path, fmt: str = "long", **_: object) -> list[Run]:
    frame = common.frame_from_text(common.table_text(path), path)
    well_c, cyc_c = common.col(frame, "well", "well position"), common.col(frame, *CYCLE_NAMES)
    flu_c = common.col(frame, *FLUOR_NAMES)
    common.need_columns(frame, path, "a long table", well=well_c, cycle=cyc_c, fluorescence=flu_c)
    tar_c, dye_c = common.col(frame, "target", "target name"), common.col(frame, "dye", "fluor", "reporter")
    sam_c, role_c = common.col(frame, "sample", "sample name"), common.col(frame, "role", "content", "task")
    if dye_c == flu_c:
        dye_c = None
    dec = frame.attrs.get("decimal_comma", False)
    keys = [well_c] + ([tar_c] if tar_c else []) + ([dye_c] if dye_c and not tar_c else [])
    groups = frame.groupby(keys, sort=False)
    common.check_counts(path, groups.ngroups, frame[tar_c].nunique() if tar_c else 1)
    records, curves = [], []
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        well = normalize_well(key[0])
        cyc = common.cycle_numbers(grp[cyc_c].tolist(), path, well)
        if (np.diff(cyc) <= 0).any():
            k = int(np.flatnonzero(np.diff(cyc) <= 0)[0])
            raise InputError(
                path,
                f"cycle numbers are not increasing ({cyc[k]:g} then {cyc[k + 1]:g})",
                "sort the rows by well and cycle, one reading per cycle",
                record=well,
            )
        flu = np.array([common.number(v, path, well, c, dec) for v, c in zip(grp[flu_c], cyc)])
        first = grp.iloc[0]
        records.append(
            {
                "well": well,
                "target": str(first[tar_c]).strip() if tar_c else "",
                "dye": str(first[dye_c]).strip() if dye_c else "",
                "sample": str(first[sam_c]).strip() if sam_c else "",
                "role": str(first[role_c]).strip() if role_c else ("sample" if sam_c else "empty"),
                "sample_type": "",
                "excluded": "",
            }
        )
        curves.append((cyc, flu))
    run = common.curves_to_run(path, records, curves, fmt="long", instrument="", rows=None, cols=None)
    return [run]
