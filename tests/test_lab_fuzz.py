"""Property-based tests of every lab reader (each format in oligolab.lab.formats, forced or detected, and plate
maps): whatever the bytes, a reader returns runs or raises oligolab's InputError in one line, and a run it
returns goes through the curve analysis. `make fuzz` runs them for longer (HYPOTHESIS_PROFILE=fuzz).

Seeds are small real files (a few wells of the shipped runs) mutated by truncation, inserted bytes, replaced
lines and numbers replaced by the values that broke readers before (inf, NaN, 2.3e16, cycle numbers in the
millions, 0 and huge ids); the examples found by fuzzing are kept below as regression cases.
"""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oligolab.errors import InputError
from oligolab.lab.curves import analyze_curves, prepare
from oligolab.lab.formats import FORMATS, read_runs
from oligolab.lab.platemap import apply_plate_map, default_layout, read_plate_map

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
WORK = Path(tempfile.mkdtemp(prefix="oligolab-lab-fuzz-"))


def _lines(path: Path, n: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:n])


def _rdml_xml() -> bytes:
    with zipfile.ZipFile(DATA / "own_mix_a.rdml") as zf:
        xml = zf.read("rdml_data.xml").decode()
    # keep the first three reactions: a small, complete, schema-valid run
    head, _, rest = xml.partition("<react ")
    reacts = ["<react " + r for r in rest.split("<react ")]
    tail = reacts[-1][reacts[-1].index("</run>"):]
    reacts[-1] = reacts[-1][:reacts[-1].index("</run>")]
    return (head + "".join(reacts[:3]) + tail).encode()


#: format -> (file suffix, seed bytes in that format)
SEEDS: dict[str, tuple[str, bytes]] = {
    "rdml": (".rdml", _rdml_xml()),
    "quantstudio": (".txt", _lines(DATA / "exports" / "own_mix_a_quantstudio.txt", 140)),
    "abi-7500": (".txt", _lines(DATA / "exports" / "own_mix_a_7500.txt", 140)),
    "abi-7500-sds": (".txt", _lines(DATA / "realworld" / "analysis_result_ejemplo.txt", 10)),
    "lightcycler480": (".txt", _lines(DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt", 122)),
    "biorad-cfx": (".csv", _lines(DATA / "exports" / "eva_green_a - Quantification Amplification Results_SYBR.csv", 45)),
    "wide": (".csv", _lines(DATA / "realworld" / "fdata.csv", 45)),
    "rdes": (".tsv", _lines(DATA / "schema" / "RDES_v1_0_example_amplification.tsv", 6)),
    "long": (".csv", b"well,cycle,rfu,target\n" + b"".join(f"A{w},{c},{100 + c * c * w},T\n".encode()
                                                           for w in (1, 2) for c in range(1, 31))),
}
EDS = (DATA / "realworld" / "sce.eds").read_bytes()
PLATE_MAP = (DATA / "exports" / "lc480_cdc_platemap.csv").read_bytes()
TOKENS = [b"inf", b"-inf", b"nan", b"NaN", b"2.3e16", b"1e308", b"3000000", b"0", b"-1", b"", b"\xff\xfe", b"\r",
          b"\x00", b'"', b"9" * 40, b"1,5", b"A0", b"Z99", b"Undetermined", b"\t\t\t"]


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """The seed with a few edits: truncation, inserted bytes, a replaced line, numbers replaced by tokens."""
    data = seed
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "insert", "line", "token", "token"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(max_size=20)) + data[at:]
        elif kind == "line":
            lines = data.split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines[k] = draw(st.sampled_from(TOKENS)) + draw(st.binary(max_size=12))
            data = b"\n".join(lines)
        else:
            digits = [i for i in range(len(data)) if 48 <= data[i] <= 57]
            if digits:
                i = draw(st.sampled_from(digits))
                j = i
                while j < len(data) and (48 <= data[j] <= 57 or data[j] in b".eE+-"):
                    j += 1
                data = data[:i] + draw(st.sampled_from(TOKENS)) + data[j:]
    return data


def _check(data: bytes, suffix: str, fmt: str | None) -> None:
    """Read ``data`` as ``fmt`` (detected when None): runs that analyse, or one InputError line."""
    path = WORK / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        runs = read_runs(path, fmt)
        for run in runs:
            if (run.layout["role"] == "empty").all():
                run = default_layout(run)
            analyze_curves(prepare(run, "repair"))
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)


#: nine formats share the profile's budget (CI: 50 examples each; `make fuzz`: a quarter of FUZZ_EXAMPLES each)
PER_FORMAT = settings(settings.default, max_examples=max(settings.default.max_examples // 4, 25))


@pytest.mark.fuzz
@pytest.mark.parametrize("fmt", sorted(SEEDS))
@PER_FORMAT
@given(data=st.data())
def test_fuzz_each_format(fmt, data):
    suffix, seed = SEEDS[fmt]
    blob = data.draw(mutated(seed))
    _check(blob, suffix, fmt)
    _check(blob, suffix, None)


@pytest.mark.fuzz
@given(source=st.sampled_from(sorted(SEEDS)), forced=st.sampled_from(sorted(FORMATS)))
def test_fuzz_any_format_forced_on_any_file(source, forced):
    """`--format long` or `rdes` on a file of another format is one line, never a KeyError."""
    suffix, seed = SEEDS[source]
    _check(seed, suffix, forced)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


@pytest.mark.fuzz
@given(data=st.data(), member=st.sampled_from(["rdml_data.xml", "apldbio/sds/multicomponent_data.txt",
                                               "apldbio/sds/plate_setup.xml", "apldbio/sds/analysis_result.txt"]))
def test_fuzz_zip_containers(data, member):
    """RDML and .eds archives: a member mutated inside a sound zip, or the zip's own bytes damaged."""
    with zipfile.ZipFile(io.BytesIO(EDS)) as zf:
        eds = {n: zf.read(n) for n in zf.namelist()}
    if member == "rdml_data.xml":
        blob, suffix = _zip({member: data.draw(mutated(SEEDS["rdml"][1]))}), ".rdml"
    elif member == "apldbio/sds/analysis_result.txt":
        blob, suffix = _zip({member: data.draw(mutated(SEEDS["abi-7500-sds"][1]))}), ".eds"
    else:
        eds[member] = data.draw(mutated(eds.get(member, b"")[:4000]))
        blob, suffix = _zip(eds), ".eds"
    _check(blob, suffix, None)
    cut = data.draw(st.integers(0, len(blob)))
    _check(blob[:cut] + data.draw(st.binary(max_size=30)), suffix, None)


@functools.lru_cache(maxsize=1)
def _lc480_run():
    return read_runs(DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt")[0]


@pytest.mark.fuzz
@PER_FORMAT
@given(data=st.data())
def test_fuzz_plate_maps(data):
    """A plate map is read and applied to a real run, or refused in one line naming it."""
    run = _lc480_run()
    path = WORK / "map.csv"
    path.write_bytes(data.draw(mutated(PLATE_MAP)))
    try:
        apply_plate_map(run, read_plate_map(path), path)
    except InputError as exc:
        assert "\n" not in str(exc), str(exc)


# ----------------------------------------------------------------------------------- regression examples

REGRESSIONS = {
    "cycle_inf.csv": b"well,cycle,rfu\nA1,1,10\nA1,inf,11\n",
    "cycle_2e16.csv": b"well,cycle,rfu\nA1,1,10\nA1,2.3e16,11\n",
    "cycle_nan.csv": b"well,cycle,rfu\nA1,1,10\nA1,NaN,11\n",
    "quantstudio_millions.txt": (b"* Block Type = 96-Well Block\n\n[Amplification Data]\n"
                                 b"Well\tWell Position\tCycle\tTarget Name\tRn\tDelta Rn\n1\tA1\t1\tT\t1\t0\n"
                                 b"1\tA1\t4000000\tT\t1\t0\n"),
    "rdml_columns_zero.rdml": SEEDS["rdml"][1].replace(b"<columns>24</columns>", b"<columns>0</columns>"),
    "rdml_huge_react.rdml": SEEDS["rdml"][1].replace(b'<react id="', b'<react id="' + b"9" * 300, 1),
}
#: found by `make fuzz`: a multicomponent signal of "-" inside a StepOne .eds
EDS_SIGNAL_DASH = b"WELL\tCYCLE\tDYE LIST\tMSE\tSIGNAL DATA\n0\t0\tFAM\t6657.1\t-\t1.0\n0\t1\tFAM\t1\t2\t1\n"


def test_regression_eds_signal_dash():
    with zipfile.ZipFile(io.BytesIO(EDS)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["apldbio/sds/multicomponent_data.txt"] = EDS_SIGNAL_DASH
    _check(_zip(members), ".eds", None)


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
@pytest.mark.parametrize("fmt", [None, "long", "rdes", "wide", "quantstudio"])
def test_regression_examples_are_one_line(name, fmt):
    _check(REGRESSIONS[name], Path(name).suffix, fmt)
    path = WORK / f"fuzz{Path(name).suffix}"
    if fmt is None:
        with pytest.raises(InputError):
            read_runs(path)


def test_seeds_are_valid_runs():
    """The fuzz seeds are real, readable runs (so the mutations start from a file the reader accepts)."""
    for fmt, (suffix, seed) in SEEDS.items():
        path = WORK / f"seed{suffix}"
        path.write_bytes(seed)
        runs = read_runs(path, fmt)
        assert runs and np.isfinite(runs[0].fluor).any(), fmt
