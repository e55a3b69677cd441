#!/usr/bin/env python3
"""The diagnostic amplification call on every real run in data/qpcr and data/qpcr/realworld, against a ground
truth defined independently of the caller (tests/lab_truth.py), and our threshold Cq against the instrument's.

Per file: curves analysed; curves clearly amplified; of those, called "not amplified" (silent negatives: must
be 0) and called "amplified" outright; curves held for review (all); wells the instrument calls undetermined
and how many of them we call amplified or hold; threshold Cq minus the instrument's Cq over the curves
amplified by both (median and robust spread, 1.4826 x MAD, cycles). tests/test_lab_realworld.py asserts the
same figures. Usage: python benchmarks/lab_calls.py  (prints a Markdown table)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from lab_truth import RUN_FILES, figures  # noqa: E402


def main() -> None:
    warnings.simplefilter("ignore")
    print("| file | instrument | curves | clear | silent neg. | amplified outright | review (all) | undetermined: "
          "amplified / review | threshold Cq - instrument Cq: median, spread (n) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in sorted(RUN_FILES):
        f = figures(name)
        d = f.cq_diff
        if d.size:
            med = float(np.median(d))
            cq = f"{med:+.2f}, {1.4826 * float(np.median(np.abs(d - med))):.2f} ({d.size})"
        else:
            cq = "no instrument Cq"
        und = f"{f.undetermined_amplified} / {f.undetermined_review} of {f.undetermined}" if f.undetermined else "-"
        rate = f"{f.outright} ({100 * f.outright_rate:.1f}%)" if f.clear else "-"
        print(f"| {name.split('/')[-1]} | {f.instrument} | {f.curves} | {f.clear} | {f.silent} | {rate} | {f.review} "
              f"| {und} | {cq} |")


if __name__ == "__main__":
    main()
