"""Output folders are transactions: killed at any moment, a folder holds the previous complete result or the new
one; leftovers go on the next start; modes follow the umask; OS failures are one line (reports.output_folder)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from oligolab.errors import InputError
from oligolab.reports import MANIFEST, output_folder, write_json, write_text

WRITER = textwrap.dedent("""
    import sys, time
    from oligolab.reports import output_folder, write_text
    target, tag, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with output_folder(target) as tmp:
        for i in range(6):
            write_text(tmp / f"part{i}.txt", f"{tag} {i}\\n" * 20000)
            time.sleep(pause)
    print("done", flush=True)
""")


def _run_writer(target: Path, tag: str, pause: float) -> subprocess.Popen:
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(target), tag, str(pause)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tags(folder: Path) -> set[str]:
    """The run tags found in a result folder (a consistent folder has exactly one)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    return {p.read_text().split()[0] for p in folder.glob("part*.txt")}


def test_kill_at_any_moment_leaves_previous_or_new_result(tmp_path):
    target = tmp_path / "out"
    first = _run_writer(target, "old", 0.0)
    assert first.wait(60) == 0, first.stderr.read()
    assert _tags(target) == {"old"}
    for delay in (0.05, 0.15, 0.3, 0.45, 0.6):
        proc = _run_writer(target, "new", 0.08)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert _tags(target) in ({"old"}, {"new"}), f"mixed folder after a kill at {delay} s"
    finished = _run_writer(target, "last", 0.0)
    assert finished.wait(60) == 0, finished.stderr.read()
    assert _tags(target) == {"last"}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    assert leftovers == [], f"temporary folders left after a successful run: {leftovers}"
    assert not list(target.glob(".*.part"))


def test_exception_leaves_previous_result_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        write_text(tmp / "a.txt", "first\n")
    with pytest.raises(RuntimeError):
        with output_folder(target) as tmp:
            write_text(tmp / "a.txt", "second\n")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_modes_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with output_folder(tmp_path / "out") as tmp:
            write_json(tmp / "summary.json", {"a": 1})
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert out.stat().st_mode & 0o777 == 0o755
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_out_is_a_file_or_holds_foreign_files(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine\n")
    with pytest.raises(InputError, match="is a file, not a folder"):
        with output_folder(a_file):
            pass
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("precious\n")
    with pytest.raises(InputError, match="did not write"):
        with output_folder(mine) as tmp:
            write_text(tmp / "report.html", "<html></html>\n")
    assert (mine / "thesis.docx").read_text() == "precious\n"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.docx"]


def test_result_without_manifest_from_an_older_version_is_replaced(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "report.html").write_text("old\n")
    (target / ".report.html.abc.part").write_text("junk")
    with output_folder(target) as tmp:
        write_text(tmp / "report.html", "new\n")
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "report.html"]


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def test_disk_full_and_read_only_are_one_line(tmp_path):
    full, readonly = tmp_path / "full", tmp_path / "ro"
    if not _mount_tmpfs(full, "size=64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root): disk-full case not run")
    try:
        with pytest.raises(InputError) as err:
            with output_folder(full / "out") as tmp:
                write_text(tmp / "big.txt", "x" * 1_000_000)
        assert "No space left on device" in str(err.value) and "\n" not in str(err.value)
        assert "free disk space" in str(err.value)
        assert not any(full.iterdir()), "a failed write left files on the full disk"
        assert _mount_tmpfs(readonly, "size=64k,ro")
        with pytest.raises(InputError, match="Read-only file system"):
            with output_folder(readonly / "out") as tmp:
                write_text(tmp / "a.txt", "a\n")
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
        subprocess.run(["umount", str(readonly)], capture_output=True)


def test_a_command_on_a_full_disk_says_so_in_one_line_and_leaves_nothing(tmp_path):
    """`oligolab lab analyze --out` on a 64 KiB tmpfs (its report is larger): exit 2, one line naming the
    folder and the fix on stderr, no traceback, nothing left on the disk; the same command elsewhere works."""
    root = Path(__file__).resolve().parents[1]
    run = root / "data" / "qpcr" / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"
    plate_map = root / "data" / "qpcr" / "exports" / "lc480_cdc_platemap.csv"
    full = tmp_path / "full"
    if not _mount_tmpfs(full, "size=64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root): disk-full case not run")
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    args = [sys.executable, "-c", "from oligolab.cli import main; main()", "lab", "analyze", str(run),
            "--plate-map", str(plate_map), "--rules", "cdc-2019-ncov"]
    try:
        done = subprocess.run([*args, "--out", str(full / "plate")], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 2, done.stderr
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "No space left on device" in lines[0] and "free disk space" in lines[0], lines[0]
        assert not any(full.iterdir()), "a failed run left files on the full disk"
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
    ok = subprocess.run([*args, "--out", str(tmp_path / "plate")], env=env, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr
