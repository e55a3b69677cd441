"""One instrument run as the analysis sees it: a (curves x cycles) fluorescence array plus its plate layout.

Every importer (RDML, instrument CSV/Excel, RDES) builds a :class:`Run` through :func:`make_run`, which checks
what all formats share: cycle numbers that start at 1 and increase, one row of layout per curve, known roles,
and readings that are numbers. Missing readings are refused by default (naming the well and cycles) or, on
request, repaired by interpolation and flagged on the curve so that no repaired Cq passes unreviewed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

#: well roles the interpretation understands
ROLES = ("sample", "ntc", "pc", "ec", "std", "empty")

#: words labs and instruments use for each role (lower case) -> role
ROLE_SYNONYMS = {
    "sample": "sample",
    "unkn": "sample",
    "unknown": "sample",
    "patient": "sample",
    "specimen": "sample",
    "ntc": "ntc",
    "nac": "ntc",
    "ntp": "ntc",
    "nrt": "ntc",
    "negative control": "ntc",
    "negative": "ntc",
    "nc": "ntc",
    "neg": "ntc",
    "no template control": "ntc",
    "blank": "ntc",
    "pc": "pc",
    "pos": "pc",
    "positive control": "pc",
    "positive": "pc",
    "ncovpc": "pc",
    "ptc": "pc",
    "ec": "ec",
    "extraction control": "ec",
    "hsc": "ec",
    "human specimen control": "ec",
    "xc": "ec",
    "extraction": "ec",
    "nec": "ec",
    "iec": "ec",
    "std": "std",
    "standard": "std",
    "empty": "empty",
    "none": "empty",
    "skip": "empty",
    "opt": "empty",
}

#: RDML (and RDES) sample type -> well role
ROLE_OF_SAMPLE_TYPE = {
    "unkn": "sample",
    "ntc": "ntc",
    "nac": "ntc",
    "ntp": "ntc",
    "nrt": "ntc",
    "pos": "pc",
    "std": "std",
    "opt": "empty",
}

#: RDML sample types per role, for export
RDML_TYPE_OF_ROLE = {"sample": "unkn", "ntc": "ntc", "pc": "pos", "ec": "unkn", "std": "std", "empty": "opt"}

#: highest cycle number a run may have (qPCR protocols run 40-60 cycles; stops typos such as 2.3e16)
MAX_CYCLES = 1000
#: largest fluorescence reading accepted (instruments report up to ~1e7; 1e308 or inf is a damaged file)
MAX_READING = 1e12
#: most curves in one run (a 1536-well plate read in 6 channels)
MAX_CURVES = 9216

LAYOUT_COLUMNS = ["well", "sample", "target", "dye", "role", "sample_type", "excluded"]

_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")


def normalize_well(label: object) -> str:
    """'a01', 'A 1', 'A1' -> 'A1'; other labels (rotor positions '17') are kept as stripped text."""
    text = str(label).strip()
    m = _WELL_RE.match(text)
    if m:
        return f"{m.group(1).upper()}{int(m.group(2))}"
    return text


def well_sort_key(well: str) -> tuple:
    """Sort wells row by row (A1, A2, ..., B1) and numeric labels numerically."""
    m = _WELL_RE.match(well)
    if m:
        row = m.group(1)
        return (0, len(row), row, int(m.group(2)))
    if well.isdigit():
        return (1, 0, "", int(well))
    return (2, 0, well, 0)


def well_from_position(position: int, columns: int, row_label: str = "ABC", column_label: str = "123") -> str:
    """Well name of a 1-based RDML position numbered row by row (RDML >= 1.1)."""
    row, col = divmod(position - 1, columns)
    if row_label == "123":
        row_text = str(row + 1)
    else:
        row_text = chr(ord("A") + row) if row < 26 else "A" + chr(ord("A") + row - 26)
    col_text = str(col + 1) if column_label != "ABC" else chr(ord("A") + col)
    if row_label == "123" and column_label == "123":
        return str(position)
    return f"{row_text}{col_text}"


def normalize_role(value: object, *, path: str | Path | None = None, well: str | None = None) -> str:
    """Map a role word to one of :data:`ROLES`, or raise :class:`InputError` naming the well."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip().lower()
    text = re.sub(r"[_\-]+", " ", text)
    if text in ROLE_SYNONYMS:
        return ROLE_SYNONYMS[text]
    raise InputError(path, f"unknown role '{value}'", "use one of: " + ", ".join(ROLES), record=well)


@dataclass
class Run:
    """A plate run: raw fluorescence per curve (one curve = one well x target) and the layout of each curve."""

    name: str  # "experiment / run" or the file stem
    source: str  # the file it came from
    fluor: np.ndarray  # (curves, cycles) raw fluorescence; NaN = missing reading
    cycles: np.ndarray  # (cycles,) cycle numbers, 1..n
    layout: pd.DataFrame  # one row per curve: LAYOUT_COLUMNS
    instrument: str = ""
    fmt: str = ""  # the importer that read it ("rdml 1.4", "biorad-cfx", ...)
    plate_rows: int = 8
    plate_columns: int = 12
    repaired: dict[int, str] = field(default_factory=dict)  # curve index -> which cycles were interpolated
    meta: dict = field(default_factory=dict)

    @property
    def n_curves(self) -> int:
        return self.fluor.shape[0]

    @property
    def n_cycles(self) -> int:
        return self.fluor.shape[1]

    def describe(self) -> str:
        """One line: name, curves, wells, targets, cycles."""
        wells = self.layout["well"].nunique()
        targets = ", ".join(sorted(self.layout["target"].unique()))
        return (
            f"{self.name}: {self.n_curves} curves in {wells} wells, {self.n_cycles} cycles, "
            f"targets {targets} ({self.fmt or 'unknown format'})"
        )


def _cycle_ranges(cycles: np.ndarray) -> str:
    """[2,3,4,9] -> '2-4, 9'."""
    parts = []
    start: int | None = None
    prev = 0  # read only once start is set (then prev is too)
    for c in cycles.tolist():
        if start is None:
            start = prev = c
        elif c == prev + 1:
            prev = c
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = c
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts)


def make_run(
    name: str,
    source: str | Path,
    fluor: np.ndarray,
    cycles: np.ndarray,
    layout: pd.DataFrame | Mapping[str, list],
    *,
    instrument: str = "",
    fmt: str = "",
    plate_rows: int | None = None,
    plate_columns: int | None = None,
    meta: dict | None = None,
) -> Run:
    """Check and assemble a :class:`Run`; every importer ends here. ``layout``: one row per curve, a DataFrame
    or lists by column (a reader of many small runs saves building a DataFrame twice per run).

    Raises :class:`InputError` for cycle numbers that do not increase from 1, a layout row without sample or
    target, unknown roles, duplicate (well, target) curves and infinite readings.
    """
    source = str(source)
    fluor = np.asarray(fluor, dtype=np.float64)
    cycles = np.asarray(cycles)
    if fluor.ndim != 2 or fluor.shape[0] == 0:
        raise InputError(source, "no amplification curves found", "export the amplification (cycle) data")
    if fluor.shape[1] != cycles.size:
        raise InputError(source, "cycle count does not match the readings", "re-export the run")
    if cycles.size < 10:
        raise InputError(source, f"only {cycles.size} cycles of data", "export the full amplification run")
    if fluor.shape[0] > MAX_CURVES:
        raise InputError(
            source,
            f"{fluor.shape[0]:,} curves, more than the {MAX_CURVES:,} a run may have",
            "export one run (one plate) per file",
        )
    cycles_f = cycles.astype(np.float64)
    if not np.isfinite(cycles_f).all() or cycles_f.max() > MAX_CYCLES:
        raise InputError(
            source,
            f"cycle numbers must be whole numbers from 1 to {MAX_CYCLES}",
            "export the amplification data with cycle numbers 1, 2, 3, ...",
        )
    steps = np.diff(cycles.astype(np.float64))
    if (steps <= 0).any():
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise InputError(
            source,
            f"cycle numbers are not increasing ({cycles[bad]} is followed by {cycles[bad + 1]})",
            "export the run sorted by cycle, one reading per cycle",
        )
    cycles_f = cycles.astype(np.float64)
    if cycles_f[0] < 1 or not np.all(cycles_f == np.round(cycles_f)):
        raise InputError(
            source,
            f"cycle numbers must be whole numbers from 1 (found {cycles[0]})",
            "export the amplification data with cycle numbers 1, 2, 3, ...",
        )
    full = np.arange(1, int(cycles_f[-1]) + 1)
    if full.size != cycles.size:  # cycles absent from the file become missing readings
        padded = np.full((fluor.shape[0], full.size), np.nan)
        padded[:, cycles_f.astype(np.int64) - 1] = fluor
        fluor, cycles = padded, full
    cycles = full
    if isinstance(layout, pd.DataFrame):
        layout = layout.reset_index(drop=True)
        rows = len(layout)
        given = {c: layout[c].tolist() for c in LAYOUT_COLUMNS if c in layout.columns}
        extra = {c: layout[c].to_numpy() for c in layout.columns if c not in LAYOUT_COLUMNS}
    else:
        given = {c: list(v) for c, v in layout.items()}
        rows = len(next(iter(given.values()), []))
        extra = {c: v for c, v in given.items() if c not in LAYOUT_COLUMNS}
    if rows != fluor.shape[0] or any(len(v) != rows for v in given.values()):
        raise InputError(source, "layout rows do not match the curves", "re-export the run")
    cols: dict[str, list] = {}
    for col in ("well", "sample", "target", "dye", "role", "sample_type", "excluded"):
        values = given[col] if col in given else [""] * rows
        cols[col] = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in values]
    cols["well"] = [normalize_well(w) for w in cols["well"]]
    cols["role"] = [normalize_role(r, path=source, well=w) for r, w in zip(cols["role"], cols["well"])]
    for w, role, sample, target in zip(cols["well"], cols["role"], cols["sample"], cols["target"]):
        if role == "empty":
            continue
        missing = [c for c, v in (("sample", sample), ("target", target)) if not v]
        if missing:
            raise InputError(
                source,
                f"no {' or '.join(missing)} in the plate layout",
                "give every used well a sample and a target (plate map), or mark it empty",
                record=w,
            )
    layout = pd.DataFrame({**{c: np.array(v, dtype=object) for c, v in cols.items()}, **extra})
    count = Counter(zip(cols["well"], cols["target"]))
    for w, t, role in zip(cols["well"], cols["target"], cols["role"]):
        if role != "empty" and count[(w, t)] > 1:
            raise InputError(source, f"two curves for target '{t}'", "one curve per well and target", record=w)
    with np.errstate(invalid="ignore"):
        wild = np.abs(fluor) > MAX_READING
    if wild.any():
        r, c = np.argwhere(wild)[0]
        raise InputError(
            source,
            f"reading {fluor[r, c]:g} at cycle {cycles[c]} is beyond any instrument's range "
            f"(|value| <= {MAX_READING:g})",
            "re-export the run",
            record=layout["well"].iat[r],
        )
    if plate_rows is None or plate_columns is None:
        plate_rows, plate_columns = guess_plate(layout["well"])
    return Run(
        name=name,
        source=source,
        fluor=fluor,
        cycles=cycles,
        layout=layout,
        instrument=instrument,
        fmt=fmt,
        plate_rows=int(plate_rows),
        plate_columns=int(plate_columns),
        meta=dict(meta or {}),
    )


def guess_plate(wells: pd.Series) -> tuple[int, int]:
    """Plate rows x columns that hold these wells (96 or 384, else the smallest rectangle)."""
    rows, cols = 0, 0
    for w in wells:
        m = _WELL_RE.match(str(w))
        if not m:
            continue
        letters = m.group(1)
        r = ord(letters[-1]) - ord("A") + 1 + (26 if len(letters) == 2 else 0)
        rows, cols = max(rows, r), max(cols, int(m.group(2)))
    if rows <= 8 and cols <= 12:
        return 8, 12
    if rows <= 16 and cols <= 24:
        return 16, 24
    return max(rows, 1), max(cols, 1)


def missing_readings(run: Run) -> dict[int, np.ndarray]:
    """Curve index -> cycle numbers without a reading, for curves that are used (role not empty)."""
    used = (run.layout["role"] != "empty").to_numpy()
    gaps = ~np.isfinite(run.fluor)
    out = {}
    for i in np.flatnonzero(gaps.any(axis=1) & used):
        out[int(i)] = run.cycles[gaps[i]]
    return out


def pad_unrecorded_start(run: Run) -> Run:
    """Fill cycles that no curve recorded at the start of the run (files that begin at cycle 2 or 3).

    Such cycles were never measured on the whole plate (an export or protocol choice, not a damaged reading);
    they take each curve's first reading, as LinRegPCR does, and the run notes it.
    """
    used = (run.layout["role"] != "empty").to_numpy()
    finite = np.isfinite(run.fluor[used]) if used.any() else np.isfinite(run.fluor)
    recorded = finite.any(axis=0)
    if not recorded.any() or recorded[0]:
        return run
    first = int(np.argmax(recorded))
    fluor = run.fluor.copy()
    for i in range(fluor.shape[0]):
        ok = np.flatnonzero(np.isfinite(fluor[i]))
        if ok.size:
            fluor[i, :first] = fluor[i, ok[0]]
    meta = dict(run.meta)
    meta["unrecorded_start"] = f"cycles 1-{first} were not recorded; each curve takes its cycle {first + 1} reading"
    return Run(
        name=run.name,
        source=run.source,
        fluor=fluor,
        cycles=run.cycles,
        layout=run.layout,
        instrument=run.instrument,
        fmt=run.fmt,
        plate_rows=run.plate_rows,
        plate_columns=run.plate_columns,
        repaired=dict(run.repaired),
        meta=meta,
    )


def check_complete(run: Run) -> None:
    """Refuse a run with missing readings: one line naming the first well, its missing cycles and the count."""
    gaps = missing_readings(run)
    if not gaps:
        return
    first = min(gaps)
    well = run.layout["well"].iat[first]
    target = run.layout["target"].iat[first]
    others = len(gaps) - 1
    more = f" (and {others} more curve{'s' if others != 1 else ''})" if others else ""
    raise InputError(
        run.source,
        f"target '{target}' has no reading (missing or NaN) at cycle(s) {_cycle_ranges(gaps[first])}{more}",
        "re-export the run, or analyse with --repair-gaps to interpolate missing cycles "
        "(repaired curves are flagged for review)",
        record=well,
    )


def repair_gaps(run: Run, *, max_missing_fraction: float = 0.5) -> Run:
    """Fill missing readings as LinRegPCR does and record, per curve, which cycles were filled.

    Leading gaps take the first reading, trailing gaps the last, inner gaps a straight line between the
    neighbours. A curve with no readings, or more than ``max_missing_fraction`` of its cycles missing, cannot
    be repaired: it is marked ``excluded`` ("no data") and gets no Cq.
    """
    fluor = run.fluor.copy()
    layout = run.layout.copy()
    repaired = dict(run.repaired)
    finite_all = fluor[np.isfinite(fluor)]
    floor = float(finite_all.min()) if finite_all.size else 0.0
    x = np.arange(fluor.shape[1])
    for i, cycles in missing_readings(run).items():
        ok = np.isfinite(fluor[i])
        if ok.sum() < 2 or (~ok).mean() > max_missing_fraction:
            fluor[i] = floor
            reason = "no data" if not ok.any() else f"{int((~ok).sum())} of {ok.size} cycles missing"
            layout.at[i, "excluded"] = "; ".join(filter(None, [layout.at[i, "excluded"], reason]))
            repaired[i] = f"unrepairable: {reason}"
            continue
        fluor[i] = np.interp(x, x[ok], fluor[i][ok])  # constant beyond the ends, linear inside
        repaired[i] = _cycle_ranges(cycles)
    return Run(
        name=run.name,
        source=run.source,
        fluor=fluor,
        cycles=run.cycles,
        layout=layout,
        instrument=run.instrument,
        fmt=run.fmt,
        plate_rows=run.plate_rows,
        plate_columns=run.plate_columns,
        repaired=repaired,
        meta=dict(run.meta),
    )
