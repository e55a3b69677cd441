"""Roche LightCycler 480 text exports ("Export Raw Data" / "Raw Data" tab-separated text).

A title line (``Raw Data ... Experiment - NAME (Run on LCS480 ...)``), then a header ``SamplePos, SampleName,
Prog#, Seg#, Cycle#, Time, Temp`` and one column per detection channel (``483-533``, ``465-510``, ...). The
amplification program is the one whose readings are one per cycle (the melt program repeats cycle 1); each
channel becomes one curve per well. Sample names come from the file; targets are the channel names until a
plate map names them. The LightCycler's Cp values are exported in a separate "Abs Quant" table, which can be
given as the plate map (Pos, Name columns).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import InputError
from ..run import Run, normalize_well
from . import common

NAMES = ("lightcycler480",)
HEADER = ("samplepos", "samplename", "prog#", "seg#", "cycle#")


def detect(probe: common.Probe) -> str | None:
    for ln in probe.text.split("\n")[:3]:
        cols = tuple(c.strip().lower() for c in ln.split("\t")[:5])
        if cols == HEADER:
            return "lightcycler480"
    return None


def read(path: Path, fmt: str = "lightcycler480", **_: object) -> list[Run]:
    text = common.read_text(path)
    lines = text.split("\n")
    head_at = next(
        (k for k, ln in enumerate(lines[:3]) if tuple(c.strip().lower() for c in ln.split("\t")[:5]) == HEADER), None
    )
    if head_at is None:
        raise InputError(
            path,
            "no SamplePos / SampleName / Prog# / Seg# / Cycle# header",
            "export the raw data as text from the LightCycler 480 software, or choose the right --format",
            line=1,
        )
    m = re.search(r"Experiment - (.*?)(?: \(Run on (.*)\))?\s*$", lines[0]) if head_at > 0 else None
    body = "\n".join(lines[head_at:])
    frame = common.frame_from_text(body, path)
    channels = [c for c in list(frame.columns)[7:] if str(c).strip()]
    if not channels:
        raise InputError(
            path, "no detection channel column after Temp", "export the raw data with its channels", line=head_at + 1
        )
    prog = _amplification_program(frame, path)
    amp = frame[frame["Prog#"].astype(str).str.strip() == prog]
    records, curves = [], []
    for pos, grp in amp.groupby("SamplePos", sort=False):
        well = normalize_well(pos)
        cyc = common.cycle_numbers(grp["Cycle#"].tolist(), path, well)
        sample = str(grp["SampleName"].iat[0]).strip()
        for ch in channels:
            flu = np.array([common.number(v, path, well, c) for v, c in zip(grp[ch], cyc)])
            records.append(
                {
                    "well": well,
                    "sample": sample,
                    "target": str(ch).strip(),
                    "dye": str(ch).strip(),
                    "role": "sample" if sample else "empty",
                    "sample_type": "",
                    "excluded": "",
                }
            )
            curves.append((cyc, flu))
    meta = {"experiment": m.group(1).strip()} if m else {}
    instrument = f"Roche LightCycler 480 ({m.group(2)})" if m and m.group(2) else "Roche LightCycler 480"
    run = common.curves_to_run(
        path,
        records,
        curves,
        fmt="lightcycler480",
        instrument=instrument,
        rows=None,
        cols=None,
        meta=meta,
        name=meta.get("experiment"),
    )
    return [run]


def _amplification_program(frame, path: Path) -> str:
    """The program whose wells have one reading per cycle and the most cycles."""
    best, best_cycles = None, 0
    for prog, grp in frame.groupby("Prog#", sort=False):
        first = grp[grp["SamplePos"] == grp["SamplePos"].iat[0]]
        cycles = first["Cycle#"].astype(str).str.strip()
        if cycles.is_unique and len(cycles) > best_cycles:
            best, best_cycles = str(prog).strip(), len(cycles)
    if best is None or best_cycles < 10:
        raise InputError(
            path,
            "no program with one reading per cycle (amplification)",
            "export the raw data of a run with its amplification program",
        )
    return best
