"""Applied Biosystems 7500 / 7500 Fast (SDS software) "analysis result" text: per well and detector a row
(Well, Sample Name, Detector, Task, Ct, ...) followed by a "Rn values" row and a "Delta Rn values" row with
one reading per cycle. Wells are 0-based indices of the 96-well plate. This text is what the SDS software
exports and what a 7500 ``.eds`` of that software holds (``apldbio/sds/analysis_result.txt``).

The raw Rn is read; the instrument's Ct is kept as ``instrument_cq`` (a Ct at or after the last cycle means
the instrument saw no amplification: ``instrument_call`` "undetermined").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ..run import Run, well_from_position
from . import common

NAMES = ("abi-7500-sds",)
TASK_ROLE = {
    "target": "sample",
    "unknown": "sample",
    "ntc": "ntc",
    "standard": "std",
    "std": "std",
    "positive": "pc",
    "negative": "ntc",
}


def detect(probe: common.Probe) -> str | None:
    return "abi-7500-sds" if looks_like(probe.text) else None


def looks_like(text: str) -> bool:
    return text.startswith("Session Name") and "Rn values" in text


def read(path: Path, fmt: str = "abi-7500-sds", **_: object) -> list[Run]:
    return [parse(common.read_text(path), path)]


def parse(text: str, path: Path) -> Run:
    """The run of an analysis_result.txt text (``path`` names it in messages)."""
    lines = text.split("\n")
    head_at = next((k for k, ln in enumerate(lines[:5]) if ln.lower().startswith("well\t")), None)
    if head_at is None:
        raise InputError(
            path, "no 'Well  Sample Name  Detector' header line", "export the 7500 analysis results", line=1
        )
    header = [h.strip().lower() for h in lines[head_at].split("\t")]
    need = {"well", "sample name", "detector", "task", "ct"}
    if not need <= set(header):
        raise InputError(
            path,
            f"the header lacks {', '.join(sorted(need - set(header)))}",
            "export the 7500 analysis results with their standard columns",
            line=head_at + 1,
        )
    idx = {h: header.index(h) for h in need}
    records, curves, current = [], [], None
    for k, ln in enumerate(lines[head_at + 1 :], start=head_at + 2):
        cells = ln.split("\t")
        first = cells[0].strip()
        if first.isdigit() and len(cells) > max(idx.values()):
            current = (k, cells)
        elif first.lower() == "rn values" and current is not None:
            records.append(_record(current[1], idx, path, current[0]))
            values = [c for c in cells[1:] if c.strip()]
            flu = np.array([common.number(v, path, records[-1]["well"], j + 1) for j, v in enumerate(values)])
            curves.append((np.arange(1, flu.size + 1, dtype=np.float64), flu))
            current = None
    run = common.curves_to_run(
        path, records, curves, fmt="abi-7500-sds", instrument="Applied Biosystems 7500", rows=8, cols=12
    )
    n = run.n_cycles
    cq = run.layout["instrument_cq"].to_numpy(dtype=np.float64)
    late = ~(cq < n)
    run.layout["instrument_call"] = np.where(late, "undetermined", "amplified")
    run.layout["instrument_cq"] = np.where(late, np.nan, cq)
    return run


def _record(cells: list[str], idx: dict[str, int], path: Path, line: int) -> dict:
    number = int(cells[idx["well"]].strip())
    if number > 95:
        raise InputError(path, f"well index {number} is outside the 96-well plate", "export the run again", line=line)
    well = well_from_position(number + 1, 12)
    task = cells[idx["task"]].strip().lower()
    ct = common.number(cells[idx["ct"]], path, well, "Ct")
    return {
        "well": well,
        "sample": cells[idx["sample name"]].strip(),
        "target": cells[idx["detector"]].strip(),
        "dye": "",
        "role": TASK_ROLE.get(task, "sample"),
        "sample_type": task,
        "excluded": "",
        "instrument_cq": ct,
    }
