"""Every limit a run file can ask past (cycles, curves, targets, cells, file size, unpacked size of a zip member,
XML depth and text size, plate dimensions, reaction ids) is refused in one line naming the file, in well
under a second and without the memory the file asks for.

The cases run in one subprocess that records each case's CPU time (the machine is shared: wall time measures
the neighbours) and the process's peak resident memory (ru_maxrss) above what the imports took; a limit that is checked after the allocation it guards shows up as
hundreds of MB there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RDML_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<rdml version="1.1" xmlns="http://www.rdml.org">'
             '<target id="T"><type>toi</type></target><sample id="S"><type>unkn</type></sample>'
             '<experiment id="E"><run id="R">')
RDML_TAIL = "</run></experiment></rdml>"

RUNNER = textwrap.dedent("""
    import json, resource, sys, time
    import openpyxl  # imported once by any workbook read; its import is not the refusal's cost
    from oligolab.errors import InputError
    from oligolab.lab.analysis import load_runs
    from oligolab.lab.formats import common
    cases = json.loads(sys.argv[1])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {}
    for name, path, patch in cases:
        saved = {k: getattr(common, k) for k in patch}
        for k, v in patch.items():
            setattr(common, k, v)
        t0 = time.process_time()
        try:
            load_runs(path)
            msg = "ACCEPTED"
        except InputError as exc:
            msg = str(exc)
        except Exception as exc:
            msg = "NOT AN INPUT ERROR: " + repr(exc)[:300]
        out[name] = [time.process_time() - t0, msg]
        for k, v in saved.items():
            setattr(common, k, v)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cases": out, "peak_mib": (peak - base) / 1024}))
""")


def _zip_with(path: Path, member: str, size: int, extra: dict[str, str] | None = None) -> Path:
    """A zip whose member unpacks to ``size`` bytes of zeros (a zip bomb: a few hundred kB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
        with zf.open(member, "w", force_zip64=True) as fh:
            block = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                fh.write(block)
    return path


def _cases(tmp: Path) -> list[tuple[str, str, dict, str]]:
    """(name, file, limits lowered for the case, words the refusal must hold)."""
    w = tmp.joinpath
    w("cycle_huge.csv").write_text("well,cycle,rfu\nA1,1,10\nA1,2.3e16,11\n")
    w("cycle_inf.csv").write_text("well,cycle,rfu\nA1,1,10\nA1,inf,11\n")
    w("cycle_nan.csv").write_text("well,cycle,rfu\nA1,1,10\nA1,nan,11\n")
    w("wide_cycle_million.csv").write_text("Cycle,A1,A2\n1,1,2\n2,1,2\n1000000,1,2\n")
    w("quantstudio_cycle_millions.txt").write_text(
        "* Block Type = 96-Well Block\n\n[Amplification Data]\nWell\tWell Position\tCycle\tTarget Name\tRn\tDelta Rn\n"
        + "".join(f"1\tA1\t{c}\tT\t1.0\t0.1\n" for c in (1, 2, 3_000_000)))
    w("too_many_curves.csv").write_text("well,cycle,rfu\n" + "".join(f"W{i},{c},1\n" for i in range(9300) for c in (1, 2)))
    w("too_many_wide_curves.csv").write_text("Cycle," + ",".join(f"W{i}" for i in range(9300)) + "\n"
                                             + "".join(f"{c}," + ",".join("1" for _ in range(9300)) + "\n" for c in (1, 2)))
    w("too_many_targets.csv").write_text("well,target,cycle,rfu\n" + "".join(f"A1,T{t},{c},1\n" for t in range(600) for c in (1, 2)))
    w("too_many_cells.csv").write_text("Cycle,A1,A2,A3\n" + "".join(f"{c},1,2,3\n" for c in range(1, 400)))
    w("too_large.csv").write_text("Cycle,A1\n" + "".join(f"{c},1\n" for c in range(1, 40)) + "#" * (3 << 20))
    _zip_with(w("zip_bomb.rdml"), "rdml_data.xml", 300 << 20)
    _zip_with(w("zip_bomb.eds"), "apldbio/sds/multicomponent_data.txt", 300 << 20)
    _zip_with(w("zip_bomb.xlsx"), "xl/worksheets/sheet1.xml", 300 << 20, {"[Content_Types].xml": "<Types/>"})
    w("xml_deep.rdml").write_text(RDML_HEAD + "<x>" * 100_000 + "</x>" * 100_000 + RDML_TAIL)
    w("xml_huge_text.rdml").write_text(RDML_HEAD + "<description>" + "a" * (12 << 20) + "</description>" + RDML_TAIL)
    react = '<react id="{rid}"><sample id="S"/><data><tar id="T"/><adp><cyc>1</cyc><fluor>1</fluor></adp></data></react>'
    w("rdml_columns_zero.rdml").write_text(RDML_HEAD + "<pcrFormat><rows>8</rows><columns>0</columns>"
                                           "<rowLabel>ABC</rowLabel><columnLabel>123</columnLabel></pcrFormat>"
                                           + react.format(rid=1) + RDML_TAIL)
    w("rdml_react_id_huge.rdml").write_text(RDML_HEAD + react.format(rid="9" * 400) + RDML_TAIL)
    w("rdml_cycle_million.rdml").write_text(RDML_HEAD + react.format(rid=1).replace("<cyc>1</cyc>", "<cyc>1e6</cyc>")
                                            + RDML_TAIL)
    return [
        ("cycle_huge", "cycle_huge.csv", {}, "cycle number"),
        ("cycle_inf", "cycle_inf.csv", {}, "cycle number"),
        ("cycle_nan", "cycle_nan.csv", {}, "cycle number"),
        ("wide_cycle_million", "wide_cycle_million.csv", {}, "cycle number"),
        ("quantstudio_cycle_millions", "quantstudio_cycle_millions.txt", {}, "cycle number"),
        ("too_many_curves", "too_many_curves.csv", {}, "curves"),
        ("too_many_wide_curves", "too_many_wide_curves.csv", {}, "curves"),
        ("too_many_targets", "too_many_targets.csv", {}, "targets"),
        ("too_many_cells", "too_many_cells.csv", {"MAX_CELLS": 1000}, "cells"),
        ("file_too_large", "too_large.csv", {"MAX_FILE_BYTES": 1 << 20}, "MiB"),
        ("zip_bomb_rdml", "zip_bomb.rdml", {}, "unpacks to more than"),
        ("zip_bomb_eds", "zip_bomb.eds", {}, "unpacks to more than"),
        ("zip_bomb_xlsx", "zip_bomb.xlsx", {}, "unpacks to more than"),
        ("xml_depth", "xml_deep.rdml", {}, "malformed"),
        ("xml_huge_text", "xml_huge_text.rdml", {}, "malformed"),
        ("rdml_columns_zero", "rdml_columns_zero.rdml", {}, "columns"),
        ("rdml_react_id_huge", "rdml_react_id_huge.rdml", {}, "reaction id"),
        ("rdml_cycle_million", "rdml_cycle_million.rdml", {}, "cycle"),
    ]


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    cases = _cases(tmp)
    arg = json.dumps([(name, str(tmp / f), patch) for name, f, patch, _ in cases])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-c", RUNNER, arg], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return cases, result


def test_every_limit_is_refused_in_one_line_naming_the_file(refused):
    cases, result = refused
    for name, f, _, words in cases:
        seconds, msg = result["cases"][name]
        assert msg != "ACCEPTED" and not msg.startswith("NOT AN INPUT ERROR"), f"{name}: {msg}"
        assert "\n" not in msg and f in msg and words in msg and "fix:" in msg, f"{name}: {msg}"


def test_every_limit_is_refused_in_well_under_a_second(refused):
    cases, result = refused
    slow = {name: round(result["cases"][name][0], 2) for name, *_ in cases if result["cases"][name][0] > 0.5}
    assert not slow, f"refusals slower than 0.5 s: {slow}"


def test_no_limit_costs_the_memory_the_file_asks_for(refused):
    """A zip bomb asks for 300 MiB, a cycle typo for 166 PiB: the process's peak grows by less than 64 MiB."""
    _, result = refused
    assert result["peak_mib"] < 64, f"peak resident memory grew by {result['peak_mib']:.0f} MiB"
