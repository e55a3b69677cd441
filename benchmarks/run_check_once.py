"""Run one `oligolab check` (Python API) and print its figures as JSON: wall and CPU seconds (this process and the
workers), peak memory of this process and of the largest worker, genomes per second. Used by bench_check.py.

With ``"progress": PATH`` in the spec, a line "seconds genomes nucleotides" is appended to PATH every 10 s or so (the
rate of a run too long to wait for)."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from oligolab.check import CheckInputs, CheckOptions, run_check

    spec = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    last = [t0]

    def progress(genomes: int, nucleotides: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10:
            last[0] = now
            with open(spec["progress"], "a") as fh:
                fh.write(f"{now - t0:.1f} {genomes} {nucleotides}\n")

    result = run_check(CheckInputs(**spec["inputs"]), spec["out"], CheckOptions(**spec.get("options", {})),
                       progress if spec.get("progress") else None)
    wall = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers_cpu = result.run["worker_cpu_s"]  # 0 when every chunk was checked in this process
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(own.ru_utime + own.ru_stime + workers_cpu, 2),
                      "driver_peak_mib": round(own.ru_maxrss / 1024), "worker_peak_mib": result.run["worker_peak_rss_mib"],
                      "genomes": result.genomes, "genomes_per_s": round(result.genomes / wall, 1), **result.run}))


if __name__ == "__main__":
    main()
