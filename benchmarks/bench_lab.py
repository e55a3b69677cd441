#!/usr/bin/env python3
"""Benchmark of `oligolab lab`: a 384-well run from import to report, and 1,000 runs back to back.

The 384-well run is built from real readings: the 384 curves of the shipped LightCycler 480 run
(Edward_qPCR_Nrd1_calibration_2019-02-02, 40 cycles; 279 amplified, 96 flat, 9 held by the diagnostic call),
relabelled as a CDC N1/N2/RP plate: NTC and extraction-control N1/N2 on flat curves, positive controls and the
extraction control's RP on amplified ones, then 125 samples x N1/N2/RP on the remaining curves in plate order
(so the samples are a realistic mix of positive, negative and held), written as RDML 1.4 with its layout. Each run
goes through the whole pipeline: RDML read + XSD validation, LinRegPCR, QC flags, controls, CDC calls, and
samples.csv, wells.csv, controls.csv, result.json and report.html.

Usage: python benchmarks/bench_lab.py [--runs 1000] [--repeat 20] [--peer PATH] [--peer-only]
Peer (../shared/PEERS.md): rdmlpython 2.x (git clone of github.com/RDML-consortium/rdmlpython; its rdml.py needs
matplotlib), run in the same process on the same real RDML files: load + LinRegPCR, CPU time.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oligolab.lab.analysis import analyze_file, load_runs  # noqa: E402
from oligolab.lab.curves import analyze_curves, analyze_runs, prepare  # noqa: E402
from oligolab.lab.formats.rdml import write_rdml  # noqa: E402
from oligolab.lab.platemap import default_layout  # noqa: E402
from oligolab.lab.report import write_outputs  # noqa: E402
from oligolab.lab.run import make_run, well_from_position  # noqa: E402

DATA = ROOT / "data" / "qpcr"
WORK = ROOT / "benchmarks" / "_work"
#: the shipped LightCycler 480 run (384 wells, 40 cycles, SYBR; data/qpcr/SOURCE.md) whose curves fill the plate
LC480_RUN = DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"


def rss_mib() -> float:
    """Resident set size of this process (MiB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def build_384_run() -> Path:
    """Write the 384-well CDC-style RDML run described in the module docstring; returns its path."""
    src = load_runs(LC480_RUN)[0]
    assert src.n_curves == 384 and src.n_cycles == 40
    call = analyze_curves(prepare(src)).table["call"].to_numpy()
    neg, pos = list(np.flatnonzero(call == "not amplified")), list(np.flatnonzero(call == "amplified"))
    controls = [(neg[0], "NTC", "ntc", "N1"), (neg[1], "NTC", "ntc", "N2"), (neg[2], "NTC", "ntc", "RP"),
                (pos[0], "nCoVPC", "pc", "N1"), (pos[1], "nCoVPC", "pc", "N2"), (pos[2], "nCoVPC", "pc", "RP"),
                (neg[3], "HSC", "ec", "N1"), (neg[4], "HSC", "ec", "N2"), (pos[3], "HSC", "ec", "RP")]
    used = {r[0] for r in controls}
    rest = [i for i in range(src.n_curves) if i not in used]
    rows = controls + [(i, f"S-{k // 3 + 1:03d}", "sample", ("N1", "N2", "RP")[k % 3]) for k, i in enumerate(rest)]
    layout = pd.DataFrame({"well": [well_from_position(i + 1, 24) for i in range(len(rows))],
                           "sample": [r[1] for r in rows], "role": [r[2] for r in rows],
                           "target": [r[3] for r in rows], "dye": "FAM",
                           "source": [f"LC480 {src.layout['well'].iloc[r[0]]}" for r in rows]})
    run = make_run("CDC plate 384 (real LC480 curves)", "bench", src.fluor[[r[0] for r in rows]], src.cycles, layout,
                   instrument="LightCycler 480 (curves of the shipped Nrd1 run)", plate_rows=16, plate_columns=24)
    WORK.mkdir(parents=True, exist_ok=True)
    return write_rdml(run, WORK / "cdc_plate_384.rdml")


def one_run(path: Path, out: Path, validate: bool = True) -> dict:
    """Import to report once; wall-clock and CPU ("compute") seconds of each part."""
    t0, c0 = time.perf_counter(), time.process_time()
    plate = analyze_file(path, rules="cdc-2019-ncov", validate=validate)[0]
    t1, c1 = time.perf_counter(), time.process_time()
    write_outputs(plate, out)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"analyse_s": t1 - t0, "report_s": t2 - t1, "total_s": t2 - t0,
            "analyse_cpu": c1 - c0, "report_cpu": c2 - c1, "total_cpu": c2 - c0, "plate": plate}


#: the real RDML runs of the comparison (the peer reads RDML only); LC96 (1.1) and StepOne (1.0) files are
#: migrated to RDML 1.4 by the peer (its LinRegPCR needs 1.4), inside its timed load
PEER_FILES = [DATA / n for n in ("eva_green_a.rdml", "eva_green_b.rdml", "own_mix_a.rdml", "technical_shifted_baseline.rdml",
                                 "vermeulen_data_vermeulen_std_150000_15000.rdml")] + \
             [DATA / "realworld" / n for n in ("lc96_bACTXY.rdml", "stepone_std.rdml")]


def ours(path: Path) -> tuple[float, float]:
    """oligolab, CPU seconds: load (with XSD validation) and analysis (the diagnostic call, LinRegPCR, Cq
    methods, QC) of every run of the file, the runs of a file analysed together as `analyze_file` does."""
    t0 = time.process_time()
    runs = load_runs(path, validate=True)
    t1 = time.process_time()
    analyze_runs([prepare(default_layout(run) if (run.layout["role"] == "empty").all() else run, "repair")
                  for run in runs])
    return t1 - t0, time.process_time() - t1


def peer(rdml, path: Path) -> tuple[float, float]:
    """rdmlpython 2.x, CPU seconds: load (migrated to 1.4 when older) and LinRegPCR of every run."""
    t0 = time.process_time()
    doc = rdml.Rdml(str(path))
    for step in ("1_0_to_1_1", "1_1_to_1_2", "1_2_to_1_3", "1_3_to_1_4"):
        if doc.version() == step[:3].replace("_", "."):
            getattr(doc, f"migrate_version_{step}")()
    t1 = time.process_time()
    for exp in doc.experiments():
        for run in exp.runs():
            run.linRegPCR(updateRDML=True, saveResultsList=True)
    return t1 - t0, time.process_time() - t1


def peer_table(peer_dir: Path | None, repeat: int) -> None:
    """Load + analysis of the real RDML files, oligolab against rdmlpython in this process, CPU time."""
    if peer_dir is None or not (peer_dir / "rdml.py").is_file():
        print("peer comparison skipped: give --peer (a clone of github.com/RDML-consortium/rdmlpython, rdml.py)")
        return
    import warnings

    warnings.simplefilter("ignore")
    sys.path.insert(0, str(peer_dir))
    import rdml  # noqa: E402  (the peer)

    print("file | curves | oligolab load + analysis (CPU s) | rdmlpython load + analysis (CPU s) | ratio")
    total_o = total_p = 0.0
    for path in PEER_FILES:
        o = [ours(path) for _ in range(repeat)]
        ol, oa = np.median([x[0] for x in o]), np.median([x[1] for x in o])
        curves = sum(r.n_curves for r in load_runs(path, validate=False))
        try:
            p = [peer(rdml, path) for _ in range(repeat)]
        except Exception as exc:  # the peer's own failure on a real file is a result too
            print(f"{path.name} | {curves} | {ol:.3f} + {oa:.3f} = {ol + oa:.3f} | fails ({type(exc).__name__}: "
                  f"{str(exc)[:60]}) | -")
            continue
        pl, pa = np.median([x[0] for x in p]), np.median([x[1] for x in p])
        total_o, total_p = total_o + ol + oa, total_p + pl + pa
        print(f"{path.name} | {curves} | {ol:.3f} + {oa:.3f} = {ol + oa:.3f} | {pl:.3f} + {pa:.3f} = {pl + pa:.3f} | "
              f"{(pl + pa) / (ol + oa):.2f}x")
    print(f"files both read | | {total_o:.3f} | {total_p:.3f} | {total_p / total_o:.2f}x (peer CPU / oligolab CPU; "
          f"> 1: oligolab faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="runs back to back for the memory check")
    ap.add_argument("--repeat", type=int, default=20, help="timed repetitions of the 384-well run")
    ap.add_argument("--peer", type=Path, default=Path(os.environ.get("RDMLPYTHON", "")) if os.environ.get("RDMLPYTHON")
                    else None, help="folder holding rdmlpython 2.x's rdml.py (git clone of RDML-consortium/rdmlpython); "
                    "env RDMLPYTHON")
    ap.add_argument("--repeat-peer", type=int, default=5, help="timed repetitions per file in the peer comparison")
    ap.add_argument("--peer-only", action="store_true", help="only the comparison with the peer")
    args = ap.parse_args()
    if args.peer_only:
        peer_table(args.peer, args.repeat_peer)
        return

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}, python {platform.python_version()}")
    path = build_384_run()
    out = WORK / "out_384"
    t_cold = time.perf_counter()
    first = one_run(path, out)
    cold = time.perf_counter() - t_cold
    plate = first["plate"]
    s = plate.summary()
    print(f"384-well run: {s['curves']} curves, {s['amplified']} amplified, run valid={s['valid']}, calls={s['calls']}")
    print(f"first run in this process (includes lazy imports and plotly.js load): {cold * 1000:.0f} ms")

    timings = [one_run(path, out) for _ in range(args.repeat)]
    keys = ("analyse_s", "report_s", "total_s", "analyse_cpu", "report_cpu", "total_cpu")
    med = {k: float(np.median([t[k] for t in timings])) for k in keys}
    nov = [one_run(path, out, validate=False)["total_cpu"] for _ in range(max(3, args.repeat // 4))]
    print(f"384 wells, import to report (median of {args.repeat}), compute (CPU): {med['total_cpu'] * 1000:.0f} ms "
          f"= import+analysis+calls {med['analyse_cpu'] * 1000:.0f} ms + report files {med['report_cpu'] * 1000:.0f} ms; "
          f"without XSD validation {np.median(nov) * 1000:.0f} ms; wall clock {med['total_s'] * 1000:.0f} ms "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

    peer_table(args.peer, args.repeat_peer)

    gc.collect()
    rss = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(1, args.runs + 1):
        one_run(path, out)
        if i % max(1, args.runs // 10) == 0:
            gc.collect()
            rss.append((i, rss_mib()))
            print(f"  run {i:5d}: RSS {rss[-1][1]:.1f} MiB", flush=True)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    growth = rss[-1][1] - rss[0][1]
    print(f"{args.runs} runs back to back: {elapsed:.0f} s wall, {cpu / args.runs * 1000:.0f} ms CPU per run; RSS after "
          f"run {rss[0][0]}: {rss[0][1]:.1f} MiB, after run {rss[-1][0]}: {rss[-1][1]:.1f} MiB (growth {growth:+.1f} MiB)")


if __name__ == "__main__":
    main()
