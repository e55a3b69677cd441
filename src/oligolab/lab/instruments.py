"""Adapters for instrument exports and plain tables (CSV, TSV, TXT, XLSX) of amplification data.

Each adapter reads one documented export layout into a :class:`~.run.Run`:

* ``biorad-cfx``: Bio-Rad CFX Manager / CFX Maestro "Quantification Amplification Results" (one file, or one
  Excel sheet, per fluorophore): an unnamed index column, ``Cycle``, then one column per well (``A1`` .. ``P24``).
  Layout comes from the "Quantification Cq Results" export given as plate map (columns Well, Fluor, Target,
  Content, Sample) or from a plate-map CSV.
* ``quantstudio``: Applied Biosystems QuantStudio 3/5/6/7/12K Flex and ViiA 7 "Export" text or Excel file:
  ``* key = value`` header lines, then ``[Sample Setup]`` (Well, Well Position, Sample Name, Target Name,
  Task, Reporter, ...) and ``[Amplification Data]`` (Well, Well Position, Cycle, Target Name, Rn, Delta Rn).
* ``abi-7500``: Applied Biosystems 7500 / 7500 Fast software v2 export: the same sections, but wells are
  numbered 1-96 (no Well Position column).
* ``rdes``: the RDML consortium's RDES v1.0 table: Well, Sample, Sample Type, Target, Target Type, Dye, Cq,
  then one column per cycle.
* ``long``: one reading per row with columns well, cycle, fluorescence (aliases: rfu, fluor, rn), and optionally
  target, dye, sample, role.
* ``wide``: a ``Cycle`` column and one column per well (no index column), as many instruments export.

The raw (not baseline-subtracted) signal is read wherever the export has it (QuantStudio/7500 ``Rn``), because
LinRegPCR estimates its own baseline. :func:`detect_format` picks the adapter from the content; an unknown
layout raises :class:`InputError` that lists the supported ones.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .run import Run, make_run, normalize_well, well_from_position

FORMATS = ("rdml", "biorad-cfx", "quantstudio", "abi-7500", "rdes", "long", "wide")
_WELL_COL = re.compile(r"^[A-Pa-p]0?\d{1,2}$")
_FLUOR_NAMES = ("fluorescence", "fluor", "rfu", "rn", "signal", "value", "reading")
_TASK_ROLE = {"UNKNOWN": "sample", "NTC": "ntc", "STANDARD": "std", "POSITIVE": "pc", "POSITIVE CONTROL": "pc",
              "NEGATIVE": "ntc", "NEGATIVE CONTROL": "ntc", "": "empty"}
_CFX_CONTENT_ROLE = {"unkn": "sample", "ntc": "ntc", "neg ctrl": "ntc", "neg": "ntc", "pos ctrl": "pc",
                     "pos": "pc", "std": "std", "nrt": "ntc", "": "empty"}

SUPPORTED_HELP = ("export the run as RDML, or as Bio-Rad CFX 'Quantification Amplification Results', "
                  "QuantStudio/7500 'Amplification Data' (text or Excel), RDES, or a long/wide table "
                  "(see docs/lab.md, file formats)")


# ------------------------------------------------------------------------------------------ low-level I/O

def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16", "cp1252"):
        try:
            text = raw.decode(enc)
            if enc == "utf-16" and "\x00" in text:
                continue
            return text.replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    raise InputError(path, "the file is not text in a known encoding", SUPPORTED_HELP)


def _is_excel(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm", ".xls")


def _excel_sheets(path: Path) -> dict[str, list[list[object]]]:
    """Every sheet of an Excel workbook as rows of cell values (empty cells None)."""
    if path.suffix.lower() == ".xls":
        raise InputError(path, "legacy .xls workbooks are not read", "save the export as .xlsx or as text (.txt/.csv)")
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - dependency declared in pyproject
        raise InputError(path, "reading Excel needs the openpyxl package", "pip install openpyxl") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for damaged archives
        raise InputError(path, f"the Excel workbook cannot be opened ({type(exc).__name__})",
                         "export it again from the instrument software") from None
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    finally:
        wb.close()


def _rows_to_text(rows: list[list[object]]) -> str:
    """Excel rows as tab-separated text, so text and Excel exports share one parser."""
    out = []
    for r in rows:
        cells = ["" if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in r]
        while cells and cells[-1] == "":
            cells.pop()
        out.append("\t".join(c.replace("\t", " ") for c in cells))
    return "\n".join(out)


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _number(text: object, path: Path, well: str, cycle: object, decimal_comma: bool = False) -> float:
    """A reading as float; blank, 'NaN' and instrument placeholders become NaN, anything else is an error."""
    if text is None:
        return np.nan
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if s == "" or s.lower() in ("nan", "na", "n/a", "none", "undetermined", "-"):
        return np.nan
    if decimal_comma:
        s = s.replace(".", "").replace(",", ".") if s.count(",") == 1 else s
    try:
        return float(s)
    except ValueError:
        raise InputError(path, f"reading '{text}' at cycle {cycle} is not a number",
                         "re-export the amplification data with numeric readings", record=well) from None


def _frame_from_text(text: str, path: Path) -> pd.DataFrame:
    lines = [ln for ln in text.split("\n")]
    first = next((ln for ln in lines if ln.strip()), "")
    delim = _sniff_delimiter(first)
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)
    rows = [r for r in reader if any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, "the file is empty", SUPPORTED_HELP)
    width = max(len(r) for r in rows)
    header = [h.strip() for h in rows[0]] + [""] * (width - len(rows[0]))
    body = [r + [""] * (width - len(r)) for r in rows[1:]]
    frame = pd.DataFrame(body, columns=_dedupe(header), dtype=object)
    frame.attrs["decimal_comma"] = delim == ";"
    return frame


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return out


# ----------------------------------------------------------------------------------------------- detection

def detect_format(path: str | Path) -> str:
    """The adapter name for ``path`` (see :data:`FORMATS`), judged from its content."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found", "check the path")
    head = path.read_bytes()[:4096]
    if path.suffix.lower() == ".rdml" or head.lstrip()[:5] == b"<rdml" or (
            head[:2] == b"PK" and not _is_excel(path)):
        return "rdml"
    if head.lstrip().startswith(b"<?xml") and b"rdml" in head:
        return "rdml"
    if _is_excel(path):
        sheets = _excel_sheets(path)
        names = {n.strip().lower() for n in sheets}
        if "amplification data" in names:
            return _abi_flavour(_rows_to_text(sheets[_sheet(sheets, "amplification data")]))
        for rows in sheets.values():
            fmt = _detect_table(_rows_to_text(rows[:3]), path)
            if fmt:
                return fmt
        raise InputError(path, "no sheet of this workbook holds a known amplification layout", SUPPORTED_HELP)
    text = _read_text(path)
    if "[Amplification Data]" in text:
        section = text.split("[Amplification Data]", 1)[1]
        return _abi_flavour(section)
    fmt = _detect_table(text[:8192], path)
    if fmt:
        return fmt
    first = next((ln for ln in text.split("\n") if ln.strip()), "")[:120]
    cols = {c.strip().strip('"').lower() for c in first.split(_sniff_delimiter(first))}
    if "well" in cols and ({"cq", "ct", "cт"} & cols) and "cycle" not in cols:
        raise InputError(path, "this file holds Cq results but no amplification readings",
                         "export the amplification data (cycle by cycle) and give this file as --plate-map", line=1)
    raise InputError(path, f"unknown instrument export (header: '{first}')", SUPPORTED_HELP, line=1)


def _sheet(sheets: dict, name: str) -> str:
    return next(n for n in sheets if n.strip().lower() == name)


def _abi_flavour(section_text: str) -> str:
    for ln in section_text.split("\n"):
        if ln.strip() and not ln.startswith("*") and not ln.startswith("["):
            cols = [c.strip().lower() for c in re.split(r"[\t,;]", ln)]
            return "quantstudio" if "well position" in cols else "abi-7500"
    return "quantstudio"


def _detect_table(text: str, path: Path) -> str | None:
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    cols = [c.strip().strip('"').lower() for c in first.split(_sniff_delimiter(first))]
    if cols[:7] == ["well", "sample", "sample type", "target", "target type", "dye", "cq"]:
        return "rdes"
    if "cycle" in cols:
        after = cols[cols.index("cycle") + 1:]
        if after and all(_WELL_COL.match(c) for c in after if c):
            return "biorad-cfx" if cols.index("cycle") == 1 and cols[0] == "" else "wide"
    if "well" in cols and "cycle" in cols and any(c in cols for c in _FLUOR_NAMES):
        return "long"
    return None


# ------------------------------------------------------------------------------------------------ readers

def read_table_run(path: str | Path, fmt: str | None = None, *, dye: str | None = None) -> Run:
    """Read a CSV/TSV/TXT/XLSX amplification export with the adapter ``fmt`` (detected when None)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    readers = {"biorad-cfx": read_biorad_cfx, "quantstudio": read_quantstudio, "abi-7500": read_abi_7500,
               "rdes": read_rdes, "long": read_long, "wide": read_wide}
    if fmt not in readers:
        raise InputError(path, f"unknown format '{fmt}'", "use one of: " + ", ".join(FORMATS))
    if fmt in ("biorad-cfx", "wide"):
        return readers[fmt](path, dye=dye)
    return readers[fmt](path)


def _wide_to_run(frame: pd.DataFrame, path: Path, fmt: str, dye: str, instrument: str) -> Run:
    cols = list(frame.columns)
    cyc_col = next((c for c in cols if c.strip().lower() == "cycle"), None)
    if cyc_col is None:
        raise InputError(path, "no 'Cycle' column", SUPPORTED_HELP, line=1)
    well_cols = [c for c in cols[cols.index(cyc_col) + 1:] if c.strip()]
    bad = [c for c in well_cols if not _WELL_COL.match(c.strip())]
    if bad:
        raise InputError(path, f"column '{bad[0]}' is not a well name", "keep only Cycle and well columns", line=1)
    dec = frame.attrs.get("decimal_comma", False)
    cycles = []
    for k, c in enumerate(frame[cyc_col].tolist()):
        try:
            cycles.append(float(str(c).strip().replace(",", ".")))
        except ValueError:
            raise InputError(path, f"cycle number '{c}' is not a number", "keep one header row", line=k + 2) from None
    cycles_arr = np.asarray(cycles)
    fluor = np.empty((len(well_cols), len(cycles)))
    for i, col in enumerate(well_cols):
        well = normalize_well(col)
        fluor[i] = [_number(v, path, well, cy, dec) for v, cy in zip(frame[col].tolist(), cycles)]
    order = np.argsort(cycles_arr, kind="stable")
    if not np.array_equal(order, np.arange(len(cycles))):
        bad = int(np.flatnonzero(np.diff(cycles_arr) <= 0)[0])
        raise InputError(path, f"cycle numbers are not increasing ({cycles[bad]:g} then {cycles[bad + 1]:g})",
                         "export the run sorted by cycle, one row per cycle", line=bad + 3)
    layout = pd.DataFrame({"well": [normalize_well(c) for c in well_cols], "sample": "", "target": "",
                           "dye": dye, "role": "empty", "sample_type": "", "excluded": ""})
    layout.attrs["needs_plate_map"] = True
    return make_run(path.stem, path, fluor, cycles_arr, layout, instrument=instrument, fmt=fmt)


def _cfx_dye(path: Path, sheet: str | None) -> str:
    if sheet and sheet.strip().lower() not in ("sheet1", "run information", "0"):
        return sheet.strip()
    m = re.search(r"Amplification Results_([^./\\]+)\.", path.name)
    return m.group(1) if m else ""


def read_biorad_cfx(path: str | Path, *, dye: str | None = None) -> Run:
    """Bio-Rad CFX 'Quantification Amplification Results' (CSV, or XLSX with one sheet per fluorophore)."""
    path = Path(path)
    if _is_excel(path):
        sheets = _excel_sheets(path)
        runs = []
        for name, rows in sheets.items():
            text = _rows_to_text(rows)
            if _detect_table(text[:4096], path) not in ("biorad-cfx", "wide"):
                continue
            runs.append(_wide_to_run(_frame_from_text(text, path), path, "biorad-cfx",
                                     dye or _cfx_dye(path, name), "Bio-Rad CFX"))
        if not runs:
            raise InputError(path, "no sheet holds CFX amplification results (Cycle + well columns)", SUPPORTED_HELP)
        return _stack(runs, path, "biorad-cfx", "Bio-Rad CFX")
    frame = _frame_from_text(_read_text(path), path)
    return _wide_to_run(frame, path, "biorad-cfx", dye or _cfx_dye(path, None), "Bio-Rad CFX")


def read_wide(path: str | Path, *, dye: str | None = None) -> Run:
    """A table with a Cycle column and one column per well."""
    path = Path(path)
    text = _rows_to_text(next(iter(_excel_sheets(path).values()))) if _is_excel(path) else _read_text(path)
    return _wide_to_run(_frame_from_text(text, path), path, "wide", dye or "", "")


def _stack(runs: list[Run], path: Path, fmt: str, instrument: str) -> Run:
    """Join per-fluorophore runs of one plate into one run (one curve per well x dye)."""
    if len(runs) == 1:
        return runs[0]
    n = max(r.n_cycles for r in runs)
    fluor = np.vstack([np.pad(r.fluor, ((0, 0), (0, n - r.n_cycles)), constant_values=np.nan) for r in runs])
    layout = pd.concat([r.layout for r in runs], ignore_index=True)
    layout["target"] = layout["dye"]  # placeholder until the plate map names targets
    layout.attrs["needs_plate_map"] = True
    return make_run(path.stem, path, fluor, np.arange(1, n + 1), layout, instrument=instrument, fmt=fmt)


# ------------------------------------------------------------------------------------- Applied Biosystems

def _abi_sections(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Header ``* key = value`` pairs and the text of each ``[Section]`` of a QuantStudio/7500 export."""
    if _is_excel(path):
        sheets = _excel_sheets(path)
        header: dict[str, str] = {}
        sections: dict[str, str] = {}
        for name, rows in sheets.items():
            lines = _rows_to_text(rows).split("\n")
            body = []
            for ln in lines:
                if ln.startswith("*"):
                    k, _, v = ln[1:].partition("=")
                    header.setdefault(k.strip(), v.strip())
                elif ln.strip() or body:
                    body.append(ln)
            sections[name.strip()] = "\n".join(body).strip("\n")
        return header, sections
    text = _read_text(path)
    header = {}
    sections = {}
    current = None
    buf: list[str] = []
    for ln in text.split("\n"):
        if ln.startswith("*") and current is None:
            k, _, v = ln[1:].partition("=")
            header[k.strip()] = v.strip()
        elif ln.startswith("[") and ln.rstrip().endswith("]"):
            if current:
                sections[current] = "\n".join(buf).strip("\n")
            current, buf = ln.strip()[1:-1], []
        elif current:
            buf.append(ln)
    if current:
        sections[current] = "\n".join(buf).strip("\n")
    return header, sections


def _col(frame: pd.DataFrame, *names: str) -> str | None:
    low = {c.strip().lower(): c for c in frame.columns}
    for n in names:
        if n in low:
            return low[n]
    return None


def _read_abi(path: Path, fmt: str) -> Run:
    header, sections = _abi_sections(path)
    amp_key = next((k for k in sections if k.lower() == "amplification data"), None)
    if amp_key is None:
        raise InputError(path, "no [Amplification Data] section", "tick 'Amplification Data' when exporting")
    amp = _frame_from_text(sections[amp_key], path)
    well_c = _col(amp, "well")
    pos_c = _col(amp, "well position")
    cyc_c = _col(amp, "cycle", "cycle number")
    tar_c = _col(amp, "target name", "target")
    rn_c = _col(amp, "rn")
    if None in (well_c, cyc_c, tar_c) or rn_c is None:
        missing = [n for n, c in (("Well", well_c), ("Cycle", cyc_c), ("Target Name", tar_c), ("Rn", rn_c))
                   if c is None]
        raise InputError(path, f"[Amplification Data] lacks column(s) {', '.join(missing)}",
                         "export the Amplification Data with its standard columns", line=1)
    block = header.get("Block Type", "")
    rows, cols = (16, 24) if "384" in block else (8, 12)
    if fmt == "abi-7500":
        rows, cols = 8, 12

    def well_name(raw: object, pos: object) -> str:
        if pos_c is not None and str(pos).strip():
            return normalize_well(pos)
        text = str(raw).strip()
        try:
            return well_from_position(int(float(text)), cols)
        except ValueError:
            return normalize_well(text)

    wells = [well_name(w, p) for w, p in zip(amp[well_c], amp[pos_c] if pos_c else amp[well_c])]
    amp = amp.assign(_well=wells, _target=amp[tar_c].astype(str).str.strip())
    setup = _abi_setup(sections, path, cols)
    records, curves = [], []
    dec = amp.attrs.get("decimal_comma", False)
    for (well, target), grp in amp.groupby(["_well", "_target"], sort=False):
        cyc = np.array([_number(c, path, well, c, dec) for c in grp[cyc_c]])
        if np.isnan(cyc).any():
            raise InputError(path, "a row has no cycle number", "re-export the run", record=well)
        if (np.diff(cyc) <= 0).any():
            k = int(np.flatnonzero(np.diff(cyc) <= 0)[0])
            raise InputError(path, f"cycle numbers are not increasing ({cyc[k]:g} then {cyc[k + 1]:g}) for "
                             f"target '{target}'", "export the run sorted by cycle, one row per cycle", record=well)
        flu = np.array([_number(v, path, well, c, dec) for v, c in zip(grp[rn_c], cyc)])
        info = setup.get((well, target), {})
        records.append({"well": well, "sample": info.get("sample", ""), "target": target,
                        "dye": info.get("dye", ""), "role": info.get("role", "empty" if not info else "sample"),
                        "sample_type": info.get("task", ""), "excluded": ""})
        curves.append((cyc, flu))
    return _curves_to_run(path, records, curves, fmt, header.get("Instrument Type", "Applied Biosystems"),
                          rows, cols, header)


def _abi_setup(sections: dict[str, str], path: Path, cols: int) -> dict[tuple[str, str], dict]:
    key = next((k for k in sections if k.lower() == "sample setup"), None)
    if key is None:
        return {}
    setup = _frame_from_text(sections[key], path)
    well_c, pos_c = _col(setup, "well"), _col(setup, "well position")
    sample_c, tar_c = _col(setup, "sample name", "sample"), _col(setup, "target name", "target")
    task_c, rep_c = _col(setup, "task"), _col(setup, "reporter")
    out = {}
    for _, r in setup.iterrows():
        if tar_c is None or not str(r[tar_c]).strip():
            continue
        if pos_c is not None and str(r[pos_c]).strip():
            well = normalize_well(r[pos_c])
        else:
            text = str(r[well_c]).strip()
            well = well_from_position(int(float(text)), cols) if re.match(r"^\d+(\.0)?$", text) else normalize_well(text)
        task = str(r[task_c]).strip().upper() if task_c else "UNKNOWN"
        out[(well, str(r[tar_c]).strip())] = {
            "sample": str(r[sample_c]).strip() if sample_c else "", "task": task.lower(),
            "role": _TASK_ROLE.get(task, "sample"), "dye": str(r[rep_c]).strip() if rep_c else ""}
    return out


def read_quantstudio(path: str | Path) -> Run:
    """Applied Biosystems QuantStudio / ViiA 7 export (text or Excel): [Sample Setup] + [Amplification Data]."""
    return _read_abi(Path(path), "quantstudio")


def read_abi_7500(path: str | Path) -> Run:
    """Applied Biosystems 7500 / 7500 Fast (software v2) export: wells numbered 1-96."""
    return _read_abi(Path(path), "abi-7500")


def _curves_to_run(path: Path, records: list[dict], curves: list[tuple[np.ndarray, np.ndarray]], fmt: str,
                   instrument: str, rows: int, cols: int, meta: dict | None = None) -> Run:
    if not curves:
        raise InputError(path, "no amplification readings found", SUPPORTED_HELP)
    for rec, (cyc, _) in zip(records, curves):
        if cyc.size and (cyc < 1).any():
            raise InputError(path, f"cycle number {cyc.min():g} is below 1", "export cycles numbered from 1",
                             record=rec["well"])
        if cyc.size and not np.all(cyc == np.round(cyc)):
            raise InputError(path, "cycle numbers are not whole numbers", "export one reading per cycle",
                             record=rec["well"])
    n = int(max(c.max() for c, _ in curves if c.size))
    fluor = np.full((len(curves), n), np.nan)
    for i, (cyc, flu) in enumerate(curves):
        fluor[i, cyc.astype(np.int64) - 1] = flu
    layout = pd.DataFrame.from_records(records)
    if (layout["role"] == "empty").all():
        layout.attrs["needs_plate_map"] = True
    return make_run(path.stem, path, fluor, np.arange(1, n + 1), layout, instrument=instrument, fmt=fmt,
                    plate_rows=rows, plate_columns=cols, meta={k: v for k, v in (meta or {}).items()})


# ------------------------------------------------------------------------------------------- RDES and long

def read_rdes(path: str | Path) -> Run:
    """RDES v1.0 amplification table (RDML consortium): layout columns, Cq, then one column per cycle."""
    path = Path(path)
    text = _rows_to_text(next(iter(_excel_sheets(path).values()))) if _is_excel(path) else _read_text(path)
    frame = _frame_from_text(text, path)
    cols = list(frame.columns)
    cyc_cols = cols[7:]
    try:
        cycles = np.array([float(c) for c in cyc_cols])
    except ValueError:
        raise InputError(path, "RDES cycle headers (from column 8) must be cycle numbers", "see RDES v1.0 §4",
                         line=1) from None
    records, curves = [], []
    from .rdml import ROLE_OF_SAMPLE_TYPE

    for k, r in frame.iterrows():
        well = normalize_well(r["Well"])
        stype = str(r["Sample Type"]).strip().lower() or "unkn"
        if stype not in ROLE_OF_SAMPLE_TYPE:
            raise InputError(path, f"sample type '{r['Sample Type']}' is not an RDES code",
                             "use unkn, ntc, nac, std, ntp, nrt, pos or opt", line=k + 2, record=well)
        flu = np.array([_number(r[c], path, well, c) for c in cyc_cols])
        records.append({"well": well, "sample": str(r["Sample"]).strip(), "target": str(r["Target"]).strip(),
                        "dye": str(r["Dye"]).strip(), "role": ROLE_OF_SAMPLE_TYPE[stype], "sample_type": stype,
                        "excluded": ""})
        curves.append((cycles, flu))
    return _curves_to_run(path, records, curves, "rdes", "", 16, 24)


def read_long(path: str | Path) -> Run:
    """One reading per row: well, cycle, fluorescence (+ optional target, dye, sample, role)."""
    path = Path(path)
    text = _rows_to_text(next(iter(_excel_sheets(path).values()))) if _is_excel(path) else _read_text(path)
    frame = _frame_from_text(text, path)
    well_c, cyc_c = _col(frame, "well", "well position"), _col(frame, "cycle", "cycle number")
    flu_c = _col(frame, *_FLUOR_NAMES)
    tar_c, dye_c = _col(frame, "target", "target name"), _col(frame, "dye", "fluor", "reporter")
    sam_c, role_c = _col(frame, "sample", "sample name"), _col(frame, "role", "content", "task")
    if dye_c == flu_c:
        dye_c = None
    dec = frame.attrs.get("decimal_comma", False)
    keys = [well_c] + ([tar_c] if tar_c else []) + ([dye_c] if dye_c and not tar_c else [])
    records, curves = [], []
    for key, grp in frame.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        well = normalize_well(key[0])
        cyc = np.array([_number(c, path, well, c, dec) for c in grp[cyc_c]])
        if np.isnan(cyc).any():
            raise InputError(path, "a row has no cycle number", "fill the cycle column", record=well)
        if (np.diff(cyc) <= 0).any():
            k = int(np.flatnonzero(np.diff(cyc) <= 0)[0])
            raise InputError(path, f"cycle numbers are not increasing ({cyc[k]:g} then {cyc[k + 1]:g})",
                             "sort the rows by well and cycle, one reading per cycle", record=well)
        flu = np.array([_number(v, path, well, c, dec) for v, c in zip(grp[flu_c], cyc)])
        first = grp.iloc[0]
        records.append({"well": well, "target": str(first[tar_c]).strip() if tar_c else "",
                        "dye": str(first[dye_c]).strip() if dye_c else "",
                        "sample": str(first[sam_c]).strip() if sam_c else "",
                        "role": str(first[role_c]).strip() if role_c else ("sample" if sam_c else "empty"),
                        "sample_type": "", "excluded": ""})
        curves.append((cyc, flu))
    return _curves_to_run(path, records, curves, "long", "", 8, 12)


# ------------------------------------------------------------------------------------------------ writing

def rdes_frame(run: Run) -> pd.DataFrame:
    """A run as an RDES v1.0 amplification table (one row per curve, one column per cycle)."""
    from .run import RDML_TYPE_OF_ROLE

    lay = run.layout
    used = (lay["role"] != "empty").to_numpy()
    head = pd.DataFrame({
        "Well": lay["well"], "Sample": lay["sample"],
        "Sample Type": [st if st else RDML_TYPE_OF_ROLE[r] for st, r in zip(lay["sample_type"], lay["role"])],
        "Target": lay["target"], "Target Type": "toi", "Dye": lay["dye"],
        "Cq": lay["instrument_cq"] if "instrument_cq" in lay else np.nan})
    values = pd.DataFrame(run.fluor, columns=[str(int(c)) for c in run.cycles])
    return pd.concat([head, values], axis=1)[used].reset_index(drop=True)


def write_rdes(run: Run, path: str | Path) -> Path:
    """Write a run as an RDES v1.0 TSV file (atomically)."""
    from ..reports import write_table

    return write_table(rdes_frame(run), Path(path).with_suffix(".tsv"))
