#!/usr/bin/env python3
"""Build the lab's instrument-layout test files and demo plate maps from the real RDML runs in data/qpcr.

Every number written is a real reading of the shipped RDML files; only the container changes (instrument
export layouts) or the labels (demo plate maps that relabel real wells as CDC/WHO targets and controls).
Run from the repository root: ``python scripts/build_lab_test_data.py``. Output: data/qpcr/exports/.
Text files are deterministic (no dates); a rebuild changes only the zip timestamps inside the XLSX files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oligolab.lab.analysis import analyze_file  # noqa: E402
from oligolab.lab.formats.rdml import load_rdml  # noqa: E402
from oligolab.lab.run import well_from_position, well_sort_key  # noqa: E402

DATA = ROOT / "data" / "qpcr"
OUT = DATA / "exports"


def fmt(x: float) -> str:
    return repr(float(x))


def abi_header(block: str, instrument: str, name: str) -> list[str]:
    return [f"* Block Type = {block}", "* Chemistry = SYBR_GREEN", f"* Experiment Name = {name}",
            f"* Instrument Type = {instrument}", "* Passive Reference = ROX", "* Quantification Cycle Method = Ct", ""]


def quantstudio_text(run, wells: list[str], numbers: list[int], with_position: bool, block: str, instrument: str) -> str:
    """[Sample Setup] + [Amplification Data] sections, tab separated, as QuantStudio / 7500 software export."""
    lay = run.layout
    lines = abi_header(block, instrument, run.name)
    lines.append("[Sample Setup]")
    head = ["Well"] + (["Well Position"] if with_position else []) + ["Sample Name", "Target Name", "Task",
                                                                      "Reporter", "Quencher"]
    lines.append("\t".join(head))
    for i in range(len(lay)):
        row = [str(numbers[i])] + ([wells[i]] if with_position else []) + [
            lay["sample"].iat[i], lay["target"].iat[i], "UNKNOWN", "SYBR", "None"]
        lines.append("\t".join(row))
    lines.append("")
    lines.append("[Amplification Data]")
    lines.append("\t".join(["Well"] + (["Well Position"] if with_position else []) +
                           ["Cycle", "Target Name", "Rn", "Delta Rn"]))
    for i in range(len(lay)):
        base = float(np.median(run.fluor[i, 2:8]))
        for c, v in zip(run.cycles, run.fluor[i]):
            row = [str(numbers[i])] + ([wells[i]] if with_position else []) + [
                str(int(c)), lay["target"].iat[i], fmt(v), fmt(v - base)]
            lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def build_quantstudio() -> None:
    run = load_rdml(DATA / "own_mix_a.rdml")
    pos = [(ord(w[0]) - 65) * 24 + int(w[1:]) for w in run.layout["well"]]
    text = quantstudio_text(run, list(run.layout["well"]), pos, True, "384-Well Block",
                            "QuantStudio(TM) 6 Flex System")
    (OUT / "own_mix_a_quantstudio.txt").write_text(text, encoding="utf-8")
    # the same export as an Excel workbook: one sheet per section, header lines on every sheet
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    header = abi_header("384-Well Block", "QuantStudio(TM) 6 Flex System", run.name)
    sections = text.split("\n[")
    for sec in sections[1:]:
        title, _, body = sec.partition("]\n")
        ws = wb.create_sheet(title)
        for h in header:
            ws.append([h] if h else [])
        for ln in body.strip("\n").split("\n"):
            cells = ln.split("\t")
            ws.append([_num(c) for c in cells])
    for ws in wb.worksheets:
        ws.sheet_properties.tabColor = None
    _save_deterministic(wb, OUT / "own_mix_a_quantstudio.xlsx")


def _num(cell: str):
    try:
        return int(cell)
    except ValueError:
        try:
            return float(cell)
        except ValueError:
            return cell


def _save_deterministic(wb, path: Path) -> None:
    import datetime

    wb.properties.created = datetime.datetime(2026, 1, 1)
    wb.properties.modified = datetime.datetime(2026, 1, 1)
    wb.properties.creator = "oligolab scripts/build_lab_test_data.py"
    wb.save(path)


def build_7500() -> None:
    """own_mix_a renumbered into a 96-well block (7500 is 96-well only): plate order -> wells 1..n."""
    run = load_rdml(DATA / "own_mix_a.rdml")
    order = sorted(range(len(run.layout)), key=lambda i: well_sort_key(run.layout["well"].iat[i]))
    numbers = [0] * len(order)
    for k, i in enumerate(order):
        numbers[i] = k + 1
    wells96 = [well_from_position(n, 12) for n in numbers]
    text = quantstudio_text(run, wells96, numbers, False, "96-Well Block (0.2mL)", "7500 Fast Real-Time PCR System")
    (OUT / "own_mix_a_7500.txt").write_text(text, encoding="utf-8")


def build_cfx() -> None:
    """eva_green_a as Bio-Rad CFX (CFX384) exports: amplification results (CSV and XLSX) and Cq results."""
    run = load_rdml(DATA / "eva_green_a.rdml")
    lay = run.layout
    order = sorted(range(len(lay)), key=lambda i: well_sort_key(lay["well"].iat[i]))
    amp = pd.DataFrame({"": np.arange(len(run.cycles)), "Cycle": run.cycles.astype(int)})
    cols = {lay["well"].iat[i]: run.fluor[i] for i in order}
    amp = pd.concat([amp, pd.DataFrame(cols)], axis=1)
    amp.to_csv(OUT / "eva_green_a - Quantification Amplification Results_SYBR.csv", index=False,
               lineterminator="\n", float_format="%.6f")
    cq = pd.DataFrame({
        "": np.arange(len(order)),
        "Well": [f"{lay['well'].iat[i][0]}{int(lay['well'].iat[i][1:]):02d}" for i in order],
        "Fluor": "SYBR", "Target": [lay["target"].iat[i] for i in order],
        "Content": ["Unkn" for _ in order], "Sample": [lay["sample"].iat[i] for i in order],
        "Cq": [lay["instrument_cq"].iat[i] for i in order]})
    cq.to_csv(OUT / "eva_green_a - Quantification Cq Results.csv", index=False, lineterminator="\n",
              float_format="%.2f")
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "SYBR"
    ws.append([None, "Cycle"] + [lay["well"].iat[i] for i in order])
    for k, c in enumerate(run.cycles):
        ws.append([k, int(c)] + [float(run.fluor[i, k]) for i in order])
    _save_deterministic(wb, OUT / "eva_green_a - Quantification Amplification Results.xlsx")


def build_demo_plate_maps() -> None:
    """Relabel real eva_green_b wells as CDC (N1, N2, RP) and WHO (E, RdRp) plates with controls.

    Not SARS-CoV-2 data: real amplification curves (and the run's seven real non-amplifying reactions) stand in
    for targets and controls so the interpretation can be tested end to end on real curves.
    """
    res = analyze_file(DATA / "eva_green_b.rdml")[0]
    t = res.table.copy()
    t["key"] = t["well"].map(well_sort_key)
    t = t.sort_values("key")
    neg = list(t.loc[~t["amplified"], "well"])
    pos = list(t.loc[t["amplified"], "well"])
    assert len(neg) >= 7, "eva_green_b should hold seven non-amplifying reactions"

    rows: list[dict] = []

    def put(well: str, sample: str, role: str, target: str) -> None:
        rows.append({"well": well, "sample": sample, "role": role, "target": target})

    n, p = iter(neg), iter(pos)
    for tgt in ("N1", "N2", "RP"):
        put(next(n), "NTC", "ntc", tgt)
    put(next(n), "HSC", "ec", "N1")
    put(next(n), "HSC", "ec", "N2")
    put(next(p), "HSC", "ec", "RP")
    for tgt in ("N1", "N2", "RP"):
        put(next(p), "nCoVPC", "pc", tgt)
    put(next(n), "S-001", "sample", "N1")
    put(next(n), "S-001", "sample", "N2")
    put(next(p), "S-001", "sample", "RP")
    for k in range(2, 26):
        for tgt in ("N1", "N2", "RP"):
            put(next(p), f"S-{k:03d}", "sample", tgt)
    taken = {r["well"] for r in rows}
    for w in t["well"]:
        if w not in taken:
            put(w, "", "empty", "")
    pd.DataFrame(rows).to_csv(OUT / "eva_green_b_cdc_platemap.csv", index=False, lineterminator="\n")

    rows = []
    n, p = iter(neg), iter(pos)
    put(next(n), "NTC", "ntc", "E")
    put(next(n), "NTC", "ntc", "RdRp")
    put(next(p), "PC", "pc", "E")
    put(next(p), "PC", "pc", "RdRp")
    put(next(p), "W-001", "sample", "E")             # E+ RdRp+ -> positive
    put(next(p), "W-001", "sample", "RdRp")
    put(next(p), "W-002", "sample", "E")             # E+ RdRp- -> inconclusive
    put(next(n), "W-002", "sample", "RdRp")
    put(next(n), "W-003", "sample", "E")             # E- -> negative
    put(next(p), "W-004", "sample", "E")             # E+ only -> screen positive
    put(next(n), "W-005", "sample", "E")             # E- RdRp+ -> inconclusive
    put(next(p), "W-005", "sample", "RdRp")
    taken = {r["well"] for r in rows}
    for w in t["well"]:
        if w not in taken:
            put(w, "", "empty", "")
    pd.DataFrame(rows).to_csv(OUT / "eva_green_b_who_platemap.csv", index=False, lineterminator="\n")


#: the developers' shared real-world runs (../shared/data beside the checkout, or further up for worktrees)
REALWORLD = next((p / "shared" / "data" / "qpcr-realworld" for p in ROOT.parents
                  if (p / "shared" / "data" / "qpcr-realworld").is_dir()), ROOT.parent / "shared" / "data" / "qpcr-realworld")
LC480 = "Edward_qPCR_Nrd1_calibration_2019-02-02"


def build_lc480_demo() -> None:
    """A trimmed real LightCycler 480 run and CDC / WHO demo plate maps on it (ground truth: the LC480's Cp).

    The raw-data export keeps its title, header and every amplification-program row (Prog# 2), byte for byte;
    the melt program is left out. Negatives are wells where the LightCycler found no Cp, positives wells with a
    Cp below 32, both in plate order: the instrument decides, not oligolab. Not SARS-CoV-2 data: real curves
    relabelled to exercise the interpretation end to end.
    """
    src = REALWORLD / "tidyqpcr" / f"{LC480}.txt"
    lines = src.read_bytes().split(b"\n")
    keep = lines[:2] + [ln for ln in lines[2:] if ln.split(b"\t")[2:3] == [b"2"]]
    (DATA / f"{LC480}_amplification.txt").write_bytes(b"\n".join(keep) + b"\n")
    cq = pd.read_csv(REALWORLD / "tidyqpcr" / f"{LC480}_Cq.txt", sep="\t", skiprows=1)
    cq["key"] = cq["Pos"].map(well_sort_key)
    cq = cq.sort_values("key")
    (DATA / f"{LC480}_Cq.txt").write_bytes((REALWORLD / "tidyqpcr" / f"{LC480}_Cq.txt").read_bytes())
    neg = list(cq.loc[cq["Cp"].isna(), "Pos"])
    pos = list(cq.loc[cq["Cp"] < 32, "Pos"])
    rows: list[dict] = []

    def put(well: str, sample: str, role: str, target: str) -> None:
        rows.append({"well": well, "sample": sample, "role": role, "target": target})

    n, p = iter(neg), iter(pos)
    for tgt in ("N1", "N2", "RP"):
        put(next(n), "NTC", "ntc", tgt)
    put(next(n), "HSC", "ec", "N1")
    put(next(n), "HSC", "ec", "N2")
    put(next(p), "HSC", "ec", "RP")
    for tgt in ("N1", "N2", "RP"):
        put(next(p), "nCoVPC", "pc", tgt)
    put(next(n), "S-001", "sample", "N1")
    put(next(n), "S-001", "sample", "N2")
    put(next(p), "S-001", "sample", "RP")
    for k in range(2, 26):
        for tgt in ("N1", "N2", "RP"):
            put(next(p), f"S-{k:03d}", "sample", tgt)
    taken = {r["well"] for r in rows}
    rows += [{"well": w, "sample": "", "role": "empty", "target": ""} for w in cq["Pos"] if w not in taken]
    pd.DataFrame(rows).to_csv(OUT / "lc480_cdc_platemap.csv", index=False, lineterminator="\n")

    rows = []
    n, p = iter(neg), iter(pos)
    put(next(n), "NTC", "ntc", "E")
    put(next(n), "NTC", "ntc", "RdRp")
    put(next(p), "PC", "pc", "E")
    put(next(p), "PC", "pc", "RdRp")
    put(next(p), "W-001", "sample", "E")             # E+ RdRp+ -> positive
    put(next(p), "W-001", "sample", "RdRp")
    put(next(p), "W-002", "sample", "E")             # E+ RdRp- -> inconclusive
    put(next(n), "W-002", "sample", "RdRp")
    put(next(n), "W-003", "sample", "E")             # E- -> negative
    put(next(p), "W-004", "sample", "E")             # E+ only -> screen positive
    put(next(n), "W-005", "sample", "E")             # E- RdRp+ -> inconclusive
    put(next(p), "W-005", "sample", "RdRp")
    taken = {r["well"] for r in rows}
    rows += [{"well": w, "sample": "", "role": "empty", "target": ""} for w in cq["Pos"] if w not in taken]
    pd.DataFrame(rows).to_csv(OUT / "lc480_who_platemap.csv", index=False, lineterminator="\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    build_lc480_demo()
    build_quantstudio()
    build_7500()
    build_cfx()
    build_demo_plate_maps()
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
