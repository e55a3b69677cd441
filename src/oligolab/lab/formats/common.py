"""What every instrument reader shares: limits (with :data:`~oligolab.lab.run.MAX_CYCLES` and
:data:`~oligolab.lab.run.MAX_CURVES`), a cheap look at a file (:class:`Probe`), text and Excel
reading, tables, numbers, and the step that turns per-curve readings into a :class:`~oligolab.lab.run.Run`.

Every function here raises only :class:`~oligolab.errors.InputError` (file, line or well, problem, fix) for
bad input, and checks each limit before the memory it guards is allocated.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..run import MAX_CURVES, MAX_CYCLES, Run, make_run

#: largest run file read (bytes on disk)
MAX_FILE_BYTES = 512 << 20
#: largest member read out of a zip container (RDML, .eds, .xlsx), unpacked bytes
MAX_UNPACKED_BYTES = 256 << 20
#: most distinct targets in one run
MAX_TARGETS = 512
#: most cells read from one table (rows x columns)
MAX_CELLS = 40_000_000

SUPPORTED_HELP = (
    "export the run as RDML, or as the instrument's amplification export (QuantStudio/ViiA 7/7500 "
    "text or Excel, .eds, Bio-Rad CFX, LightCycler 480 text), RDES, or a long/wide table "
    "(see docs/lab.md, file formats)"
)


def check_size(path: Path) -> None:
    """Refuse a missing or oversized run file before reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(path, "file not found", "check the path") from None
    if size > MAX_FILE_BYTES:
        raise InputError(
            path,
            f"the file is {size >> 20} MiB, more than the {MAX_FILE_BYTES >> 20} MiB a run file may have",
            "export only the amplification data of one run",
        )


def read_member(path: Path, zf: zipfile.ZipFile, name: str) -> bytes:
    """One member of a zip container, refused before unpacking when it claims (or turns out) to be too large."""
    info = zf.getinfo(name)
    if info.file_size > MAX_UNPACKED_BYTES:
        raise InputError(
            path,
            f"{name} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MiB",
            "export only the amplification data of one run",
        )
    with zf.open(info) as fh:
        data = fh.read(MAX_UNPACKED_BYTES + 1)
    if len(data) > MAX_UNPACKED_BYTES:
        raise InputError(
            path,
            f"{name} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MiB",
            "export only the amplification data of one run",
        )
    return data


@dataclass
class Probe:
    """A cheap look at a file for format detection: its first bytes, and (lazily) its text, zip members or
    Excel sheets. Detection never reads more than a few MiB."""

    path: Path
    head: bytes = field(init=False)

    def __post_init__(self) -> None:
        check_size(self.path)
        with open(self.path, "rb") as fh:
            self.head = fh.read(1 << 16)

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    @property
    def is_zip(self) -> bool:
        return self.head[:2] == b"PK"

    @property
    def is_excel(self) -> bool:
        return self.suffix in (".xlsx", ".xlsm", ".xls")

    @cached_property
    def zip_names(self) -> list[str]:
        if not self.is_zip:
            return []
        try:
            with zipfile.ZipFile(self.path) as zf:
                return [n.replace("\\", "/") for n in zf.namelist()]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return []

    @cached_property
    def text(self) -> str:
        """The start of the file as text ('' for binary files)."""
        if self.is_zip or b"\x00" in self.head[:4096] and not self.head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return ""
        return decode(self.head, self.path, strict=False)

    @cached_property
    def sheets(self) -> dict[str, list[list[object]]]:
        return excel_sheets(self.path, max_rows=30) if self.is_excel and self.is_zip else {}


def decode(raw: bytes, path: Path, *, strict: bool = True) -> str:
    """Bytes as text (UTF-8 with or without BOM, UTF-16, cp1252), newlines unified."""
    for enc in ("utf-8-sig", "utf-16", "cp1252"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "utf-16" and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if not strict:
        return raw.decode("utf-8", errors="replace")
    raise InputError(path, "the file is not text in a known encoding", SUPPORTED_HELP)


def read_text(path: Path) -> str:
    """A whole text export (size-checked)."""
    check_size(path)
    return decode(path.read_bytes(), path)


def is_excel(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm", ".xls")


def excel_sheets(path: Path, *, max_rows: int | None = None) -> dict[str, list[list[object]]]:
    """Every sheet of an Excel workbook as rows of cell values (empty cells None)."""
    if path.suffix.lower() == ".xls":
        raise InputError(path, "legacy .xls workbooks are not read", "save the export as .xlsx or as text (.txt/.csv)")
    import openpyxl

    check_size(path)
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > MAX_UNPACKED_BYTES:
            raise InputError(
                path,
                f"the workbook unpacks to more than {MAX_UNPACKED_BYTES >> 20} MiB",
                "export only the amplification data of one run",
            )
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except InputError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many types for damaged workbooks
        raise InputError(
            path,
            f"the Excel workbook cannot be opened ({type(exc).__name__})",
            "export it again from the instrument software",
        ) from None
    try:
        out: dict[str, list[list[object]]] = {}
        cells = 0
        for ws in wb.worksheets:
            rows = []
            for r in ws.iter_rows(values_only=True):
                rows.append(list(r))
                cells += len(r)
                if cells > MAX_CELLS:
                    raise InputError(
                        path,
                        f"the workbook holds more than {MAX_CELLS:,} cells",
                        "export only the amplification data of one run",
                        record=ws.title,
                    )
                if max_rows is not None and len(rows) >= max_rows:
                    break
            out[str(ws.title)] = rows
        return out
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            path,
            f"the Excel workbook is damaged ({type(exc).__name__})",
            "export it again from the instrument software",
        ) from None
    finally:
        wb.close()


def rows_to_text(rows: list[list[object]]) -> str:
    """Excel rows as tab-separated text, so text and Excel exports share one parser."""
    out = []
    for r in rows:
        cells = ["" if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in r]
        while cells and cells[-1] == "":
            cells.pop()
        out.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
    return "\n".join(out)


def table_text(path: Path) -> str:
    """The text of a table file, or of the first sheet of a workbook."""
    return rows_to_text(next(iter(excel_sheets(path).values()), [])) if is_excel(path) else read_text(path)


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    return max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","


def frame_from_text(text: str, path: Path) -> pd.DataFrame:
    """A delimited table (header in its first non-empty line) as a DataFrame of strings."""
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    delim = sniff_delimiter(first)
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise InputError(path, f"the table cannot be parsed ({exc})", "export it again as plain CSV or TSV") from None
    if not rows:
        raise InputError(path, "the file is empty", SUPPORTED_HELP)
    width = max(len(r) for r in rows)
    if width * len(rows) > MAX_CELLS:
        raise InputError(
            path, f"the table holds more than {MAX_CELLS:,} cells", "export only the amplification data of one run"
        )
    header = [h.strip() for h in rows[0]] + [""] * (width - len(rows[0]))
    body = [r + [""] * (width - len(r)) for r in rows[1:]]
    frame = pd.DataFrame(body, columns=dedupe(header), dtype=object)
    frame.attrs["decimal_comma"] = delim == ";"
    return frame


def dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return out


def col(frame: pd.DataFrame, *names: str) -> str | None:
    """The first column of ``frame`` whose name (case-insensitive) is one of ``names``."""
    low = {str(c).strip().lower(): c for c in frame.columns}
    for n in names:
        if n in low:
            return low[n]
    return None


def need_columns(frame: pd.DataFrame, path: Path, what: str, **wanted: str | None) -> None:
    """Refuse a table that lacks required columns, naming them."""
    missing = [name for name, c in wanted.items() if c is None]
    if missing:
        raise InputError(
            path,
            f"{what} lacks the column(s) {', '.join(missing)}",
            "export the amplification data with its standard columns, or choose the right --format",
            line=1,
        )


def number(text: object, path: Path, well: str, cycle: object, decimal_comma: bool = False) -> float:
    """A reading as float; blank, 'NaN' and instrument placeholders become NaN, anything else is an error."""
    if text is None:
        return np.nan
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if s == "" or s.lower() in ("nan", "na", "n/a", "none", "undetermined", "-"):
        return np.nan
    if decimal_comma and s.count(",") == 1:
        s = s.replace(".", "").replace(",", ".")
    elif s.count(",") and s.replace(",", "").replace(".", "", 1).lstrip("-").isdigit():
        s = s.replace(",", "")  # thousands separators (QuantStudio multicomponent data)
    try:
        return float(s)
    except ValueError:
        raise InputError(
            path,
            f"reading '{text}' at cycle {cycle} is not a number",
            "re-export the amplification data with numeric readings",
            record=well,
        ) from None


def cycle_numbers(values: list[object], path: Path, well: str, *, line0: int | None = None) -> np.ndarray:
    """Cycle numbers as floats, each finite, whole, from 0 or 1 and at most :data:`MAX_CYCLES`."""
    out = np.empty(len(values))
    for k, v in enumerate(values):
        try:
            out[k] = float(str(v).strip().replace(",", ".")) if not isinstance(v, (int, float)) else float(v)
        except ValueError:
            raise InputError(
                path,
                f"cycle number '{v}' is not a number",
                "keep one header row and numeric cycles",
                line=None if line0 is None else line0 + k,
                record=well,
            ) from None
        if not math.isfinite(out[k]) or out[k] != round(out[k]) or not 0 <= out[k] <= MAX_CYCLES:
            raise InputError(
                path,
                f"cycle number '{v}' is not a whole number from 1 to {MAX_CYCLES}",
                "export the amplification data with cycle numbers 1, 2, 3, ...",
                line=None if line0 is None else line0 + k,
                record=well,
            )
    return out


def check_counts(path: Path, curves: int, targets: int = 1) -> None:
    """Refuse more curves or targets than a run may have, before any per-curve work."""
    if curves > MAX_CURVES:
        raise InputError(
            path,
            f"{curves:,} curves, more than the {MAX_CURVES:,} a run may have",
            "export one run (one plate) per file",
        )
    if targets > MAX_TARGETS:
        raise InputError(path, f"{targets} targets, more than {MAX_TARGETS}", "export one run per file")


def curves_to_run(
    path: Path,
    records: list[dict],
    curves: list[tuple[np.ndarray, np.ndarray]],
    *,
    fmt: str,
    instrument: str,
    rows: int | None,
    cols: int | None,
    meta: dict | None = None,
    name: str | None = None,
) -> Run:
    """Per-curve (cycles, readings) into one run; cycles absent from a curve become missing readings, and a
    file that numbers cycles from 0 is shifted to start at 1 (noted in the run)."""
    if not curves:
        raise InputError(path, "no amplification readings found", SUPPORTED_HELP)
    check_counts(path, len(curves))
    for rec, (cyc, _) in zip(records, curves):
        if cyc.size and (cyc.max() > MAX_CYCLES or not np.isfinite(cyc).all()):
            raise InputError(
                path,
                f"cycle number {cyc.max():g} is above {MAX_CYCLES}",
                "export cycles numbered from 1",
                record=rec["well"],
            )
        if cyc.size and np.unique(cyc).size != cyc.size:
            raise InputError(
                path, "a cycle appears twice", "one reading per cycle and curve; re-export the run", record=rec["well"]
            )
    meta = dict(meta or {})
    if min((c.min() for c, _ in curves if c.size), default=1) == 0:
        curves = [(c + 1, f) for c, f in curves]
        meta["cycle_zero"] = "the file numbers cycles from 0; they are read as 1, 2, 3, ..."
    n = int(max((c.max() for c, _ in curves if c.size), default=0))
    if n == 0:
        raise InputError(path, "no amplification readings found", SUPPORTED_HELP)
    fluor = np.full((len(curves), n), np.nan)
    for i, (cyc, flu) in enumerate(curves):
        if cyc.size:
            fluor[i, cyc.astype(np.int64) - 1] = flu
    layout = pd.DataFrame.from_records(records)
    check_counts(path, len(curves), layout["target"].nunique())
    return make_run(
        name or path.stem,
        path,
        fluor,
        np.arange(1, n + 1),
        layout,
        instrument=instrument,
        fmt=fmt,
        plate_rows=rows,
        plate_columns=cols,
        meta=meta,
    )


def empty_layout(wells: list[str], dye: str) -> pd.DataFrame:
    """Layout of curves whose samples and targets a plate map must give."""
    layout = pd.DataFrame(
        {"well": wells, "sample": "", "target": "", "dye": dye, "role": "empty", "sample_type": "", "excluded": ""}
    )
    return layout
