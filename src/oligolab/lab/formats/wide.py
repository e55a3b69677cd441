"""Wide tables: a cycle column and one column per well (or per curve), as Bio-Rad CFX and many tools export.

* ``biorad-cfx``: Bio-Rad CFX Manager / CFX Maestro "Quantification Amplification Results": an unnamed index
  column, ``Cycle``, then one column per well (``A1`` .. ``P24``); one file per fluorophore (the dye is in the
  file name, ``..._SYBR.csv``) or one workbook with one sheet per fluorophore. Raw and baseline-subtracted
  RFU (the CFX default) are both read: the analysis fits its own baseline, so an offset near zero is fine.
* ``wide``: any table (text or any sheet of a workbook) with a cycle column (``Cycle``, ``Cycles``, ``cyc``,
  ``Cycle#``, ``Cycle Number``) and one column per well or curve, cycles numbered from 0 or 1.

A workbook sheet that describes the curves (a ``Well`` or ``fdata.name`` column with sample, target, dye,
content, as the CFX "Quantification Cq Results" sheet or the R package RDML's "description" sheet) is used
as the plate layout; otherwise the layout comes from ``--plate-map``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..run import Run, normalize_role, normalize_well
from . import common

NAMES = ("biorad-cfx", "wide")
CYCLE_NAMES = ("cycle", "cycles", "cyc", "cycle#", "cycle number", "cycle no", "cycle no.", "cycle_number")
WELL_COLUMN = re.compile(r"^[A-Pa-p]0?\d{1,2}$")
_CONTENT_ROLE = {
    "unkn": "sample",
    "neg ctrl": "ntc",
    "pos ctrl": "pc",
    "std": "std",
    "ntc": "ntc",
    "nrt": "ntc",
    "unknown": "sample",
    "standard": "std",
    "": "sample",
}


def header_kind(first_line: str) -> str | None:
    """'biorad-cfx' or 'wide' when a header line is a cycle column followed by curve columns, else None."""
    cols = [c.strip().strip('"').lower() for c in first_line.split(common.sniff_delimiter(first_line))]
    cyc = next((k for k, c in enumerate(cols) if c in CYCLE_NAMES), None)
    if cyc is None or cyc > 1:
        return None
    after = [c for c in cols[cyc + 1 :] if c]
    if not after:
        return None
    if cyc == 1 and (cols[0] == "" or cols[0].startswith("unnamed")) and all(WELL_COLUMN.match(c) for c in after):
        return "biorad-cfx"
    return "wide" if cyc == 0 else None


def detect(probe: common.Probe) -> str | None:
    if probe.is_excel:
        kinds = [header_kind(common.rows_to_text(rows[:1])) for rows in probe.sheets.values() if rows]
        return next((k for k in kinds if k), None)
    first = next((ln for ln in probe.text.split("\n") if ln.strip()), "")
    return header_kind(first)


def read(path: Path, fmt: str = "wide", *, dye: str | None = None, **_: object) -> list[Run]:
    """The run of a wide table (every amplification sheet of a workbook: one dye each)."""
    instrument = "Bio-Rad CFX" if fmt == "biorad-cfx" else ""
    if not common.is_excel(path):
        frame = common.frame_from_text(common.read_text(path), path)
        return [_run(path, [(frame, dye or _file_dye(path))], fmt, instrument, None)]
    sheets = common.excel_sheets(path)
    parts, layout = [], None
    for name, rows in sheets.items():
        text = common.rows_to_text(rows)
        first = next((ln for ln in text.split("\n") if ln.strip()), "")
        if header_kind(first):
            parts.append((common.frame_from_text(text, path), dye or _sheet_dye(path, name)))
        elif rows and layout is None:
            layout = _layout_sheet(common.frame_from_text(text, path) if text.strip() else None, path)
    if not parts:
        raise InputError(
            path, "no sheet holds amplification data (a cycle column and one column per well)", common.SUPPORTED_HELP
        )
    return [_run(path, parts, fmt, instrument, layout)]


def _file_dye(path: Path) -> str:
    m = re.search(r"Amplification Results_([^./\\]+)\.", path.name)
    return m.group(1) if m else ""


def _sheet_dye(path: Path, sheet: str) -> str:
    if sheet.strip().lower() in ("sheet1", "run information", "0", "adp", "amplification", "data"):
        return _file_dye(path)
    return sheet.strip()


def _columns(frame: pd.DataFrame, path: Path) -> tuple[str, list[str]]:
    cols = list(frame.columns)
    cyc = next((c for c in cols if str(c).strip().lower() in CYCLE_NAMES), None)
    if cyc is None:
        raise InputError(
            path,
            "not a wide table: no cycle column (Cycle, Cycles, cyc, Cycle#)",
            "export one column of cycle numbers and one column per well, or choose the right --format",
            line=1,
        )
    curves = [c for c in cols[cols.index(cyc) + 1 :] if str(c).strip()]
    return cyc, curves


def _run(
    path: Path, parts: list[tuple[pd.DataFrame, str]], fmt: str, instrument: str, layout: pd.DataFrame | None
) -> Run:
    records, curves = [], []
    common.check_counts(path, sum(len(_columns(frame, path)[1]) for frame, _ in parts))
    for frame, dye in parts:
        cyc_col, curve_cols = _columns(frame, path)
        cycles = common.cycle_numbers(frame[cyc_col].tolist(), path, "", line0=2)
        dec = frame.attrs.get("decimal_comma", False)
        for c in curve_cols:
            label = str(c).strip()
            well = normalize_well(label)
            values = np.array([common.number(v, path, well, cy, dec) for v, cy in zip(frame[c].tolist(), cycles)])
            records.append(_record(label, well, dye, layout, path))
            curves.append((cycles, values))
    run = common.curves_to_run(path, records, curves, fmt=fmt, instrument=instrument, rows=None, cols=None)
    if layout is None:
        run.layout.attrs["needs_plate_map"] = True
    return run


def _record(label: str, well: str, dye: str, layout: pd.DataFrame | None, path: Path) -> dict:
    rec = {"well": well, "sample": "", "target": "", "dye": dye, "role": "empty", "sample_type": "", "excluded": ""}
    if layout is None:
        return rec
    hit = layout[(layout["key"] == label.lower()) | (layout["key"] == well.lower())]
    if dye and len(hit) > 1:
        hit = hit[hit["dye"].str.lower() == dye.lower()] if (hit["dye"] != "").any() else hit
    if hit.empty:
        return rec
    r = hit.iloc[0]
    rec.update(
        sample=r["sample"] or label,
        target=r["target"] or dye or "target",
        dye=r["dye"] or dye,
        role=r["role"],
        sample_type=r["sample_type"],
    )
    return rec


def _layout_sheet(frame: pd.DataFrame | None, path: Path) -> pd.DataFrame | None:
    """A describing sheet as (key, sample, target, dye, role, sample_type), or None if the sheet is not one."""
    if frame is None:
        return None
    key_c = common.col(frame, "well", "fdata.name", "well position", "position")
    target_c = common.col(frame, "target", "target name")
    if key_c is None or target_c is None:
        return None
    sample_c = common.col(frame, "sample", "sample name")
    dye_c = common.col(frame, "fluor", "dye", "target.dyeid", "reporter")
    role_c = common.col(frame, "content", "sample.type", "sample type", "role", "task")
    out = pd.DataFrame({"key": [str(k).strip().lower() for k in frame[key_c]]})
    out["key"] = [normalize_well(k).lower() if WELL_COLUMN.match(k) else k for k in out["key"]]
    for name, c in (("sample", sample_c), ("target", target_c), ("dye", dye_c), ("sample_type", role_c)):
        out[name] = frame[c].fillna("").astype(str).str.strip().to_numpy() if c else ""
    roles = []
    for value in out["sample_type"]:
        word = re.sub(r"[-\s]*\d+$", "", value.strip().lower())
        word = _CONTENT_ROLE.get(word, word)
        try:
            roles.append(normalize_role(word, path=path))
        except InputError:
            roles.append("sample")
    out["role"] = roles
    return out
