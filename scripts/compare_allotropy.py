#!/usr/bin/env python3
"""Evaluate Benchling's allotropy (PyPI, Apache-2.0) on the real instrument exports beside oligolab's readers.

allotropy pins pandas < 3 and the project runs pandas 3, so it lives in its own folder:

    python -m pip install --target /tmp/allotropy allotropy
    python scripts/compare_allotropy.py /tmp/allotropy

For each file it asks allotropy's parser for that instrument to convert the file to ASM (Allotrope Simple
Model), then, where allotropy returns amplification curves, compares them reading by reading with what
oligolab reads (in a separate process: the two pandas versions cannot share one). Prints one line per file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "qpcr"
#: (allotropy vendor, file): every real export of an instrument allotropy has a parser for, plus our exports
CASES = [("APPBIO_QUANTSTUDIO", DATA / "realworld" / "quantstudio-export_amplification.txt"),
         ("APPBIO_QUANTSTUDIO", DATA / "realworld" / "analysis_result_ejemplo.txt"),
         ("APPBIO_QUANTSTUDIO", DATA / "realworld" / "DEMO_COVID2020_THERMO.eds"),
         ("APPBIO_QUANTSTUDIO", DATA / "realworld" / "sce.eds"),
         ("APPBIO_QUANTSTUDIO", DATA / "exports" / "own_mix_a_quantstudio.txt"),
         ("APPBIO_QUANTSTUDIO", DATA / "exports" / "own_mix_a_7500.txt"),
         ("CFXMAESTRO", DATA / "exports" / "eva_green_a - Quantification Amplification Results_SYBR.csv"),
         ("CFXMAESTRO", DATA / "realworld" / "BioRad.xlsx")]

CONVERT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
from allotropy.parser_factory import Vendor
from allotropy.to_allotrope import allotrope_from_file
t0 = time.process_time()
try:
    asm = allotrope_from_file(sys.argv[3], Vendor[sys.argv[2]])
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:120]}"}))
    raise SystemExit
curves = {}
for doc in asm.get("qpcr aggregate document", {}).get("qpcr document", []):
    m = doc["measurement aggregate document"]["measurement document"][0]
    cube = m["processed data aggregate document"]["processed data document"][0].get("normalized reporter data cube")
    if cube:
        curves[m["sample document"]["well location identifier"] + "/" + m["target DNA description"]] = cube["data"]["measures"][0]
print(json.dumps({"seconds": time.process_time() - t0, "curves": curves}))
"""


def ours(path: Path) -> tuple[dict[str, list[float]], float]:
    sys.path.insert(0, str(ROOT / "src"))
    from oligolab.lab.analysis import load_runs

    t0 = time.process_time()
    run = load_runs(path)[0]
    return ({f"{w}/{t}": list(f) for w, t, f in zip(run.layout["well"], run.layout["target"], run.fluor)},
            time.process_time() - t0)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for vendor, path in CASES:
        out = subprocess.run([sys.executable, "-c", CONVERT, sys.argv[1], vendor, str(path)], capture_output=True,
                             text=True, timeout=600)
        got = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"error": out.stderr[-200:]}
        if "error" in got:
            print(f"{path.name}: allotropy {vendor} refuses it ({got['error']})")
            continue
        if not got["curves"]:
            print(f"{path.name}: allotropy {vendor} reads it without amplification curves ({got['seconds']:.2f} s)")
            continue
        mine, seconds = ours(path)
        same = sum(1 for k, v in got["curves"].items() if k in mine and all(
            abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(v, mine[k])))
        print(f"{path.name}: allotropy {vendor}: {len(got['curves'])} curves in {got['seconds']:.2f} s CPU; "
              f"oligolab {len(mine)} curves in {seconds:.2f} s; identical readings: {same}")


if __name__ == "__main__":
    main()
