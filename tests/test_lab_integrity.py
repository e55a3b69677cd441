"""Integrity of a plate's result folder (oligolab.lab.store): the audit log is the commit point, the tables are
derived from the run and the log.

* `oligolab lab audit` reports a table edited after sign-off (exit 2), and tells a later override apart;
* `lab analyze`, `lab override` and `lab sign` killed (SIGKILL) at each step leave the previous complete folder
  or a log ahead of its tables, which the next command regenerates; checked file by file against the same
  commands run without a kill (timestamps aside); a sign repeated after an interrupted one writes no second
  sign-off; nothing temporary is left after the next run.

A kill point is a function the command calls, replaced in a subprocess by one that kills the process on its
n-th call (no hook in the product).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.lab import audit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "qpcr"
RUN = DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"
CDC_MAP = DATA / "exports" / "lc480_cdc_platemap.csv"
runner = CliRunner()

KILLER = textwrap.dedent("""
    import importlib, os, signal, sys
    target, nth = sys.argv[1], int(sys.argv[2])
    module_name, attr = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original, calls = getattr(module, attr), [0]

    def killer(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(module, attr, killer)
    from oligolab.cli import main
    main(sys.argv[3:])
""")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
TABLES = ("samples.csv", "wells.csv", "controls.csv")


@pytest.fixture(scope="module", autouse=True)
def registered():
    _register()


def _cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def _killed(kill_at: str, nth: int, *args) -> int:
    """Run `oligolab ARGS` in a subprocess that is SIGKILLed at the n-th call of ``kill_at``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-c", KILLER, kill_at, str(nth), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode


def _analyze(out: Path) -> None:
    res = _cli("lab", "analyze", RUN, "--plate-map", CDC_MAP, "--rules", "cdc-2019-ncov", "--out", out, "--no-html")
    assert res.exit_code == 0, res.output


def _held(out: Path) -> list[str]:
    return [a for line in (out / "samples.csv").read_text().splitlines()[1:]
            for a in ("--sample", line.split(",")[1])]


def _override_args(out: Path) -> list:
    return ["lab", "override", out, *_held(out), "--accept", "--user", "dr.lee", "--reason", "curves reviewed"]


def _sign_args(out: Path) -> list:
    return ["lab", "sign", out, "--user", "dr.lee"]


def _normalised(folder: Path) -> dict[str, str]:
    """The folder's tables and result.json with timestamps (analysis time, log entry times) and the hashes
    of what holds them blanked: what must equal the uninterrupted reference."""
    out = {}
    for name in TABLES:
        out[name] = TIME.sub("T", (folder / name).read_text())
    doc = json.loads((folder / "result.json").read_text())
    doc["provenance"]["analysed_at"] = "T"
    for e in ([doc["signoff"]] if doc.get("signoff") else []) + doc["overrides"]:
        e["time"], e["hash"], e["prev"] = "T", "H", "H"
    doc["derived_from"]["head"] = "H"
    doc["samples_sha256"] = doc["files"]["samples.csv"] = "H"      # samples.csv holds the override times
    if doc.get("signoff"):
        doc["signoff"]["new"] = doc["signoff"]["files"]["samples.csv"] = "H"
    out["result.json"] = TIME.sub("T", json.dumps(doc, sort_keys=True))
    kinds = [(e.kind, e.subject, e.new if e.kind == "override" else "") for e in audit.read(folder / "audit.jsonl")]
    out["audit.jsonl"] = json.dumps(kinds)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The same commands without any kill: after analyze, after override, after sign."""
    out = tmp_path_factory.mktemp("reference") / "plate"
    _analyze(out)
    ref = {"analyzed": _normalised(out)}
    assert _cli(*_override_args(out)).exit_code == 0
    ref["overridden"] = _normalised(out)
    res = _cli(*_sign_args(out))
    assert res.exit_code == 0, res.output
    ref["signed"] = _normalised(out)
    return ref


def _no_leftovers(out: Path) -> None:
    assert [p.name for p in out.parent.iterdir() if p.name != out.name] == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_audit_reports_a_results_table_edited_after_sign_off(tmp_path, reference):
    out = tmp_path / "plate"
    _analyze(out)
    assert _cli(*_override_args(out)).exit_code == 0
    assert _cli(*_sign_args(out)).exit_code == 0
    res = _cli("lab", "audit", out)
    assert res.exit_code == 0 and "match the signed SHA-256" in res.output, res.output
    samples = out / "samples.csv"
    samples.write_text(samples.read_text().replace("negative", "positive", 1))
    res = _cli("lab", "audit", out)
    assert res.exit_code == 2 and "samples.csv" in res.output and "changed after oligolab wrote it" in res.output
    # the edited file is reported, not regenerated over
    assert "positive" in samples.read_text().split("\n")[1] or samples.read_text() != reference["signed"]["samples.csv"]


def test_an_override_after_sign_off_is_told_apart_from_tampering(tmp_path):
    out = tmp_path / "plate"
    _analyze(out)
    assert _cli(*_override_args(out)).exit_code == 0
    assert _cli(*_sign_args(out)).exit_code == 0
    sample = _held(out)[1]
    res = _cli("lab", "override", out, "--sample", sample, "--call", "inconclusive", "--user", "dr.lee", "--reason", "x")
    assert res.exit_code == 0, res.output
    res = _cli("lab", "audit", out)
    assert res.exit_code == 0 and "no longer signed" in res.output, res.output


@pytest.mark.parametrize("kill_at,nth", [("oligolab.lab.store.write", 1), ("oligolab.reports.write_text", 2),
                                         ("oligolab.reports._swap_in", 1)])
def test_override_killed_between_its_steps(tmp_path, reference, kill_at, nth):
    out = tmp_path / "plate"
    _analyze(out)
    assert _killed(kill_at, nth, *_override_args(out)) == -9
    # the folder is the previous complete one (the log already holds the overrides: the commit point)
    now = _normalised(out)
    for name in TABLES:
        assert now[name] == reference["analyzed"][name], name
    assert len(audit.read(out / "audit.jsonl")) == 25
    # the next command regenerates the tables from the log: the same files as an uninterrupted override
    res = _cli("lab", "audit", out)
    assert res.exit_code == 0 and "regenerated" in res.output, res.output
    assert _normalised(out) == reference["overridden"]
    _no_leftovers(out)


@pytest.mark.parametrize("kill_at,nth", [("oligolab.lab.store.write", 1), ("oligolab.reports.write_text", 2),
                                         ("oligolab.reports._swap_in", 1)])
def test_sign_killed_between_its_steps_then_signed_again_once(tmp_path, reference, kill_at, nth):
    out = tmp_path / "plate"
    _analyze(out)
    assert _cli(*_override_args(out)).exit_code == 0
    assert _killed(kill_at, nth, *_sign_args(out)) == -9
    assert [e.kind for e in audit.read(out / "audit.jsonl")].count("sign") == 1
    doc = json.loads((out / "result.json").read_text())
    assert doc["signoff"] is None                       # the tables lag the log ...
    res = _cli(*_sign_args(out))                        # ... and signing again records nothing new
    assert res.exit_code == 0 and "already signed" in res.output, res.output
    assert [e.kind for e in audit.read(out / "audit.jsonl")].count("sign") == 1
    assert _normalised(out) == reference["signed"]
    _no_leftovers(out)


@pytest.mark.parametrize("kill_at,nth", [("oligolab.reports.write_text", 1), ("oligolab.reports.write_text", 3),
                                         ("oligolab.reports._swap_in", 1)])
def test_analyze_killed_while_writing_leaves_the_previous_folder_and_its_log(tmp_path, reference, kill_at, nth):
    out = tmp_path / "plate"
    _analyze(out)
    assert _cli(*_override_args(out)).exit_code == 0
    log_before = (out / "audit.jsonl").read_bytes()
    args = ["lab", "analyze", RUN, "--plate-map", CDC_MAP, "--rules", "cdc-2019-ncov", "--out", out, "--no-html"]
    assert _killed(kill_at, nth, *args) == -9
    assert (out / "audit.jsonl").read_bytes() == log_before
    assert _normalised(out) == reference["overridden"]
    # analysed again: the overrides of the log still apply, nothing temporary is left
    _analyze(out)
    assert (out / "audit.jsonl").read_bytes() == log_before
    assert _normalised(out) == reference["overridden"]
    _no_leftovers(out)


def test_first_analysis_killed_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "plate"
    args = ["lab", "analyze", RUN, "--plate-map", CDC_MAP, "--rules", "cdc-2019-ncov", "--out", out, "--no-html"]
    assert _killed("oligolab.reports.write_text", 2, *args) == -9
    assert not out.exists()
    _analyze(out)
    _no_leftovers(out)


def test_a_report_of_earlier_results_is_not_carried_into_the_new_folder(tmp_path):
    """`analyze --no-html` over a folder with a report: the old report (other results) goes; the log stays."""
    out = tmp_path / "plate"
    res = _cli("lab", "analyze", RUN, "--plate-map", CDC_MAP, "--rules", "cdc-2019-ncov", "--out", out)
    assert res.exit_code == 0 and (out / "report.html").exists()
    assert _cli(*_override_args(out)).exit_code == 0
    log = (out / "audit.jsonl").read_bytes()
    (out / "observations.fhir.json").write_text("{}")          # an export made from the results: kept
    _analyze(out)
    assert not (out / "report.html").exists() and (out / "audit.jsonl").read_bytes() == log
    assert (out / "observations.fhir.json").exists()
