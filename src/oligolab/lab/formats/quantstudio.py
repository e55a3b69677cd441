"""Applied Biosystems QuantStudio 3/5/6/7/12K Flex, ViiA 7 and 7500 (software v2) exports, text or Excel.

The export is ``* key = value`` header lines, then sections: ``[Sample Setup]`` (Well, Well Position, Sample
Name, Target Name, Task, Reporter), ``[Amplification Data]`` (Well, [Well Position,] Cycle, Target Name, Rn,
Delta Rn), ``[Results]`` (the instrument's CT, "Undetermined" where it saw no amplification) and others that
are not read (raw, multicomponent and melt data). An Excel export has one sheet per section.

* ``quantstudio``: wells carry a Well Position (A1 .. P24); the plate is 384 wells when the header's Block Type
  says so or a well number exceeds 96, numbered row by row.
* ``abi-7500``: wells numbered 1-96 without Well Position.

Wells of the plate without readings (empty wells) are left out. The raw ``Rn`` is read (LinRegPCR and the
diagnostic call fit their own baselines); the instrument's CT and call are kept beside ours
(``instrument_cq``, ``instrument_call``), as are the run's date, instrument, serial number, operator and
reagent lots.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..run import Run, normalize_well, well_from_position
from . import common

NAMES = ("quantstudio", "abi-7500")
TASK_ROLE = {
    "UNKNOWN": "sample",
    "NTC": "ntc",
    "STANDARD": "std",
    "POSITIVE": "pc",
    "POSITIVE CONTROL": "pc",
    "NEGATIVE": "ntc",
    "NEGATIVE CONTROL": "ntc",
    "": "empty",
}
META_KEYS = {
    "Instrument Type": "instrument",
    "Instrument Serial Number": "serial",
    "Instrument Name": "instrument_name",
    "Experiment Run Start Time": "run_date",
    "Experiment Run End Time": "run_end",
    "User Name": "operator",
    "Experiment Name": "experiment",
    "Block Type": "block",
    "Chemistry": "chemistry",
    "Experiment Barcode": "barcode",
}


_AMPLIFICATION_SECTION = re.compile(r"^[ \t\ufeff]*\[Amplification Data\]", re.M)


def detect(probe: common.Probe) -> str | None:
    if probe.is_excel:
        names = {n.strip().lower() for n in probe.sheets}
        if "amplification data" not in names:
            return None
        sheet = next(n for n in probe.sheets if n.strip().lower() == "amplification data")
        return flavour(common.rows_to_text(probe.sheets[sheet]))
    # the section header starts a line (a README that names the section in its prose is no export)
    if _AMPLIFICATION_SECTION.search(probe.text) or ("[Sample Setup]" in probe.text and probe.text.startswith("*")):
        if re.search(r"^\* Block Type = 384", probe.text, re.M):
            return "quantstudio"  # the 7500 is a 96-well instrument
        return flavour(probe.text.split("[Amplification Data]", 1)[-1])
    return None


def flavour(section_text: str) -> str:
    """'quantstudio' when the amplification rows carry a Well Position, else 'abi-7500'."""
    for ln in section_text.split("\n"):
        if ln.strip() and not ln.startswith(("*", "[")):
            cols = [c.strip().lower() for c in re.split(r"[\t,;]", ln)]
            return "quantstudio" if "well position" in cols else "abi-7500"
    return "quantstudio"


def sections(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Header ``* key = value`` pairs and the text of each ``[Section]`` (or sheet) of an export."""
    header: dict[str, str] = {}
    out: dict[str, str] = {}
    if common.is_excel(path):
        for name, rows in common.excel_sheets(path).items():
            body: list[str] = []
            for ln in common.rows_to_text(rows).split("\n"):
                if ln.startswith("*"):
                    k, _, v = ln[1:].partition("=")
                    header.setdefault(k.strip(), v.strip())
                elif ln.strip() or body:
                    body.append(ln)
            out[name.strip().lower()] = "\n".join(body).strip("\n")
        return header, out
    current: str | None = None
    buf: list[str] = []
    for ln in common.read_text(path).split("\n"):
        if ln.startswith("*") and current is None:
            k, _, v = ln[1:].partition("=")
            header[k.strip()] = v.strip()
        elif ln.startswith("[") and ln.rstrip().endswith("]"):
            if current:
                out[current] = "\n".join(buf).strip("\n")
            current, buf = ln.strip()[1:-1].strip().lower(), []
        elif current:
            buf.append(ln)
    if current:
        out[current] = "\n".join(buf).strip("\n")
    return header, out


def read(path: Path, fmt: str = "quantstudio", **_: object) -> list[Run]:
    header, secs = sections(path)
    if "amplification data" not in secs:
        raise InputError(path, "no [Amplification Data] section", "tick 'Amplification Data' when exporting")
    amp = common.frame_from_text(secs["amplification data"], path)
    well_c, pos_c = common.col(amp, "well"), common.col(amp, "well position")
    cyc_c, tar_c = common.col(amp, "cycle", "cycle number"), common.col(amp, "target name", "target", "detector")
    rn_c = common.col(amp, "rn")
    common.need_columns(amp, path, "[Amplification Data]", Well=well_c, Cycle=cyc_c, **{"Target Name": tar_c}, Rn=rn_c)
    assert well_c is not None  # need_columns refused a missing one
    cols = _plate_columns(header, amp, well_c, pos_c, fmt)
    wells = [_well(w, p, cols, path) for w, p in zip(amp[well_c], amp[pos_c] if pos_c else amp[well_c])]
    amp = amp.assign(_well=wells, _target=amp[tar_c].astype(str).str.strip())
    setup = _setup(secs, path, cols)
    results = _results(secs, path, cols)
    dec = amp.attrs.get("decimal_comma", False)
    records, curves = [], []
    for (well, target), grp in amp.groupby(["_well", "_target"], sort=False):
        cyc = common.cycle_numbers(grp[cyc_c].tolist(), path, well)
        flu = np.array([common.number(v, path, well, c, dec) for v, c in zip(grp[rn_c], cyc)])
        if np.isnan(flu).all():
            continue  # an empty well of the plate
        info = setup.get((well, target), {})
        cq, call = results.get((well, target), (np.nan, ""))
        records.append(
            {
                "well": well,
                "sample": info.get("sample", ""),
                "target": target,
                "dye": info.get("dye", ""),
                "role": info.get("role", "empty" if not info else "sample"),
                "sample_type": info.get("task", ""),
                "excluded": "",
                "instrument_cq": cq,
                "instrument_call": call,
            }
        )
        curves.append((cyc, flu))
    meta = {v: header[k] for k, v in META_KEYS.items() if header.get(k) and header[k] not in ("NA", "N/A")}
    meta.update(_reagents(secs, path))
    run = common.curves_to_run(
        path,
        records,
        curves,
        fmt=fmt,
        instrument=header.get("Instrument Type", "Applied Biosystems"),
        rows=16 if cols == 24 else 8,
        cols=cols,
        meta=meta,
        name=header.get("Experiment Name"),
    )
    if (run.layout["role"] == "empty").all():
        run.layout.attrs["needs_plate_map"] = True
    return [run]


def _plate_columns(header: dict[str, str], amp: pd.DataFrame, well_c: str, pos_c: str | None, fmt: str) -> int:
    """12 (96-well block) or 24 (384-well block): from the header, else from the highest well number."""
    block = header.get("Block Type", "")
    if "384" in block:
        return 24
    if fmt == "abi-7500" or "96" in block:
        numbers = pd.to_numeric(amp[well_c], errors="coerce")
        return 24 if (numbers > 96).any() and fmt != "abi-7500" else 12
    numbers = pd.to_numeric(amp[well_c], errors="coerce")
    return 24 if (numbers > 96).any() else 12


def _well(raw: object, pos: object, cols: int, path: Path) -> str:
    text = str(pos).strip()
    if text and not text.isdigit():
        return normalize_well(text)
    text = str(raw).strip()
    try:
        number = int(float(text))
    except (ValueError, OverflowError):
        return normalize_well(text)
    if not 1 <= number <= cols * (16 if cols == 24 else 8):
        raise InputError(
            path,
            f"well number {text} is outside the {cols * (16 if cols == 24 else 8)}-well plate",
            "export the run with its Well Position column",
            record=text,
        )
    return well_from_position(number, cols)


def _setup(secs: dict[str, str], path: Path, cols: int) -> dict[tuple[str, str], dict]:
    if not secs.get("sample setup"):
        return {}
    setup = common.frame_from_text(secs["sample setup"], path)
    well_c, pos_c = common.col(setup, "well"), common.col(setup, "well position")
    sample_c, tar_c = common.col(setup, "sample name", "sample"), common.col(setup, "target name", "target")
    task_c, rep_c = common.col(setup, "task"), common.col(setup, "reporter")
    if well_c is None and pos_c is None:
        return {}
    out = {}
    for _, r in setup.iterrows():
        if tar_c is None or not str(r[tar_c]).strip():
            continue
        well = _well(r[well_c] if well_c else "", r[pos_c] if pos_c else "", cols, path)
        task = str(r[task_c]).strip().upper() if task_c else "UNKNOWN"
        out[(well, str(r[tar_c]).strip())] = {
            "sample": str(r[sample_c]).strip() if sample_c else "",
            "task": task.lower(),
            "role": TASK_ROLE.get(task, "sample"),
            "dye": str(r[rep_c]).strip() if rep_c else "",
        }
    return out


def _results(secs: dict[str, str], path: Path, cols: int) -> dict[tuple[str, str], tuple[float, str]]:
    """(well, target) -> (instrument CT, instrument call) from the [Results] section."""
    if not secs.get("results"):
        return {}
    res = common.frame_from_text(secs["results"], path)
    well_c, pos_c = common.col(res, "well"), common.col(res, "well position")
    tar_c, ct_c = common.col(res, "target name", "target", "detector"), common.col(res, "ct", "cт", "cq", "crt")
    if tar_c is None or ct_c is None or (well_c is None and pos_c is None):
        return {}
    out = {}
    for _, r in res.iterrows():
        well = _well(r[well_c] if well_c else "", r[pos_c] if pos_c else "", cols, path)
        text = str(r[ct_c]).strip()
        try:
            cq = float(text.replace(",", "."))
        except ValueError:
            cq = np.nan
        call = "undetermined" if text.lower() == "undetermined" else ("amplified" if np.isfinite(cq) else "")
        out[(well, str(r[tar_c]).strip())] = (cq, call)
    return out


def _reagents(secs: dict[str, str], path: Path) -> dict[str, str]:
    if not secs.get("reagent information"):
        return {}
    frame = common.frame_from_text(secs["reagent information"], path)
    name_c, lot_c = common.col(frame, "reagent name"), common.col(frame, "reagent lot number")
    if name_c is None or lot_c is None:
        return {}
    lots = [f"{r[name_c]} lot {r[lot_c]}" for _, r in frame.iterrows() if str(r[lot_c]).strip()]
    return {"reagent_lots": "; ".join(lots)} if lots else {}
