"""`oligolab lab analyze` gives the same files whatever Python's hash seed; the one difference allowed is the
analysis time, kept in one place (result.json provenance.analysed_at, shown in the report's provenance
table). Files and folders follow the user's umask, so a lab group can read the results."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "qpcr"
ARGS = ["lab", "analyze", str(DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"), "--plate-map",
        str(DATA / "exports" / "lc480_cdc_platemap.csv"), "--rules", "cdc-2019-ncov"]


def _analyze(out: Path, *, seed: str = "0", umask: int = 0o022) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONHASHSEED=seed)
    proc = subprocess.run([sys.executable, "-c", "from oligolab.cli import main; main()", *ARGS, "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr[-2000:]


def _without_time(folder: Path) -> dict[str, bytes]:
    doc = json.loads((folder / "result.json").read_text())
    stamp = doc["provenance"].pop("analysed_at")
    files = {p.name: p.read_bytes().replace(stamp.encode(), b"T") for p in folder.iterdir()
             if p.name not in ("result.json", "manifest.json")}
    files["result.json"] = json.dumps(doc, sort_keys=True).encode()
    return files


def test_same_files_under_different_hash_seeds(tmp_path):
    _analyze(tmp_path / "a", seed="1")
    _analyze(tmp_path / "b", seed="4242")
    a, b = _without_time(tmp_path / "a"), _without_time(tmp_path / "b")
    assert sorted(a) == sorted(b) == ["controls.csv", "report.html", "result.json", "samples.csv", "wells.csv"]
    for name in a:
        assert a[name] == b[name], f"{name} differs between PYTHONHASHSEED 1 and 4242"


def test_files_follow_the_umask(tmp_path):
    for umask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        out = tmp_path / f"u{umask:o}"
        _analyze(out, umask=umask)
        assert stat.S_IMODE(out.stat().st_mode) == dir_mode
        for p in out.iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == file_mode, (p.name, oct(p.stat().st_mode))
