"""RDML reader (versions 1.0 to 1.4): a zip holding ``rdml_data.xml``, or that XML on its own.

Files of version 1.3 and 1.4 are validated against the consortium's XSD (shipped in ``lab/schema``); older
versions get the structural checks every file gets (samples and targets that reactions refer to exist,
readings are numbers, one reading per cycle). Each ``experiment/run`` becomes one :class:`~.run.Run` with one
curve per reaction ``data`` element (well x target). Melting curves and digital PCR partitions are ignored.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
import zlib
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from ...errors import InputError
from ..run import MAX_CURVES, MAX_CYCLES, ROLE_OF_SAMPLE_TYPE, Run, make_run, normalize_well, well_from_position
from . import common

NAMES = ("rdml",)

NS = "http://www.rdml.org"
SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")
_XSD = {"1.3": "RDML_v1_3_REC.xsd", "1.4": "RDML_v1_4_CR.xsd"}


_THREAD = threading.local()
# XML limits are libxml2's without huge_tree: element depth 256 (RDML nests 6 levels), text nodes of 10 MB;
# the document's size is common.MAX_UNPACKED_BYTES (zip member) or common.MAX_FILE_BYTES (plain XML).


@cache
def _schema_text(version: str) -> bytes:
    return resources.files("oligolab.lab").joinpath("schema", _XSD[version]).read_bytes()


def detect(probe: common.Probe) -> str | None:
    """RDML: a zip holding rdml_data.xml (or any .xml that is not an instrument document), or RDML XML."""
    if probe.is_zip and not probe.is_excel:
        names = probe.zip_names
        if "rdml_data.xml" in names or probe.suffix == ".rdml":
            return "rdml"
        return None
    start = probe.head.lstrip()[:400]
    if start.startswith(b"<rdml") or (start.startswith(b"<?xml") and b"rdml" in probe.head[:4096]):
        return "rdml"
    return "rdml" if probe.suffix == ".rdml" and start.startswith(b"<") else None


def read(path: Path, fmt: str = "rdml", *, validate: bool = True, **_: object) -> list[Run]:
    return read_rdml(path, validate=validate)


def _schema(version: str) -> etree.XMLSchema:
    """The XSD validator of a version, one per thread (lxml validators keep per-call state)."""
    cache = getattr(_THREAD, "schemas", None)
    if cache is None:
        cache = _THREAD.schemas = {}
    if version not in cache:
        cache[version] = etree.XMLSchema(etree.parse(io.BytesIO(_schema_text(version))))
    return cache[version]


def read_xml_bytes(path: str | Path) -> bytes:
    """The RDML XML text of ``path`` (zip archive or plain XML); :class:`InputError` if damaged or too large."""
    path = Path(path)
    common.check_size(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the file ({exc.strerror})", "check the path") from None
    if raw[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                names = zf.namelist()
                name = (
                    "rdml_data.xml"
                    if "rdml_data.xml" in names
                    else next((n for n in names if n.lower().endswith(".xml")), None)
                )
                if name is None:
                    raise InputError(
                        path,
                        "the RDML archive holds no rdml_data.xml",
                        "export the run again as RDML from the instrument software",
                    )
                return common.read_member(path, zf, name)
        except InputError:
            raise
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, ValueError) as exc:
            raise InputError(
                path,
                f"the RDML archive is truncated or damaged ({type(exc).__name__})",
                "copy or export the file again; the transfer was incomplete",
            ) from None
    if raw.lstrip()[:1] != b"<":
        raise InputError(
            path,
            "not an RDML file (neither a zip archive nor XML)",
            "give an .rdml file exported by the instrument software",
        )
    return raw


def parse(path: str | Path, *, validate: bool = True, warnings: list[str] | None = None) -> tuple[etree._Element, str]:
    """Parse and (for 1.3/1.4) schema-validate an RDML file; returns (root element, version).

    Schema problems that do not change the data (a whole number written as ``600.0`` where the schema wants
    an integer) are read and reported in ``warnings``; any other schema problem refuses the file. The XML
    parser resolves no entities, reaches no network and keeps libxml2's limits (element depth 256, text nodes
    of 10 MB).
    """
    data = read_xml_bytes(path)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise InputError(
            path, f"the RDML XML is truncated or malformed ({exc.msg})", "copy or export the file again", line=line
        ) from None
    if etree.QName(root).localname != "rdml":
        raise InputError(path, f"root element is <{etree.QName(root).localname}>, not <rdml>", "give an RDML file")
    version = root.get("version", "")
    if version not in SUPPORTED_VERSIONS:
        raise InputError(path, f"unsupported RDML version '{version}'", f"use RDML {', '.join(SUPPORTED_VERSIONS)}")
    if validate and version in _XSD:
        # melting-curve points, which oligolab does not read, are left out of the validation (5x faster on runs
        # with melt data); everything the reader uses is validated
        etree.strip_elements(
            root, f"{{{etree.QName(root).namespace}}}mdp" if etree.QName(root).namespace else "mdp", with_tail=False
        )
        schema = _schema(version)
        if not schema.validate(root.getroottree()):
            errors = schema.error_log.filter_from_errors()
            fatal = [e for e in errors if not _harmless(e.message)]
            if fatal:
                raise InputError(
                    path,
                    f"does not follow the RDML {version} schema: {fatal[0].message}",
                    "export the run again; do not edit RDML by hand",
                    line=fatal[0].line,
                )
            if warnings is not None:
                warnings.append(
                    f"{len(errors)} RDML schema deviation(s) that do not change the data were read "
                    f"as numbers (first, line {errors[0].line}: {errors[0].message})"
                )
    return root, version


_INTEGER_TYPE = re.compile(r"'([^']*)' is not a valid value of the atomic type 'xs:(?:\w*[Ii]nteger|long|int)'")


def _harmless(message: str) -> bool:
    """A schema error about a whole number written with a decimal point (600.0 for 600)."""
    m = _INTEGER_TYPE.search(message)
    if not m:
        return False
    try:
        value = float(m.group(1))
    except ValueError:
        return False
    return value == value and abs(value) < 1e15 and value == int(value)


def _q(tag: str, ns: str) -> str:
    return f"{{{ns}}}{tag}" if ns else tag


def _float(text: str | None, path: Path, what: str, well: str, line: int | None) -> float:
    try:
        return float(text) if text is not None else np.nan
    except ValueError:
        raise InputError(
            path, f"{what} '{text}' is not a number", "re-export the run", line=line, record=well
        ) from None


def read_rdml(path: str | Path, *, validate: bool = True) -> list[Run]:
    """All runs of an RDML file, in file order (one :class:`Run` per experiment/run)."""
    path = Path(path)
    warnings: list[str] = []
    root, version = parse(path, validate=validate, warnings=warnings)
    ns = etree.QName(root).namespace or ""
    q = lambda tag: _q(tag, ns)  # noqa: E731

    sample_types: dict[str, dict[str, str]] = {}
    for s in root.iter(q("sample")):
        if s.getparent() is not root:
            continue
        per: dict[str, str] = {}
        for t in s.findall(q("type")):
            per[t.get("targetId", "")] = (t.text or "unkn").strip()
        for ann in s.findall(q("annotation")):
            if (ann.findtext(q("property")) or "").strip() == ROLE_ANNOTATION:
                per["__role__"] = (ann.findtext(q("value")) or "").strip()
        sample_types[s.get("id", "")] = per
    target_dye = {}
    for t in root.findall(q("target")):
        dye = t.find(q("dyeId"))
        target_dye[t.get("id", "")] = dye.get("id", "") if dye is not None else (t.findtext(q("dyeId")) or "")

    runs: list[Run] = []
    for exp in root.findall(q("experiment")):
        for run_el in exp.findall(q("run")):
            runs.append(_read_run(path, version, exp.get("id", ""), run_el, q, sample_types, target_dye))
            if warnings:
                runs[-1].meta["warnings"] = list(warnings)
    if not runs:
        raise InputError(path, "the RDML file has no experiment with a run", "export a run with amplification data")
    return runs


def _plate_format(run_el, q, path: Path) -> tuple[int, int, str, str]:
    fmt = run_el.find(q("pcrFormat"))
    if fmt is not None and fmt.find(q("columns")) is not None:
        rows = _dimension(fmt.findtext(q("rows")), 8, "rows", path, fmt.sourceline)
        cols = _dimension(fmt.findtext(q("columns")), 12, "columns", path, fmt.sourceline)
        return rows, cols, (fmt.findtext(q("rowLabel")) or "ABC"), (fmt.findtext(q("columnLabel")) or "123")
    text = (fmt.text or "") if fmt is not None else ""  # RDML 1.0: "96-well plate; A1-H12"
    if text.startswith("384"):
        return 16, 24, "ABC", "123"
    if text.startswith("48"):
        return 6, 8, "ABC", "123"
    return 8, 12, "ABC", "123"


def _dimension(text: str | None, default: int, what: str, path: Path, line: int | None) -> int:
    """A plate dimension from pcrFormat: a whole number 1..1536 (rotor positions count as columns)."""
    if not (text or "").strip():
        return default
    assert text is not None  # empty or None returned above
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (1 <= value <= 1536 and value == int(value)):
        raise InputError(
            path, f"pcrFormat {what} '{text}' is not a whole number from 1 to 1536", "export the run again", line=line
        )
    return int(value)


def _read_run(path: Path, version: str, exp_id: str, run_el, q, sample_types, target_dye) -> Run:
    run_id = run_el.get("id", "")
    name = f"{exp_id} / {run_id}" if exp_id else run_id
    rows, cols, row_label, col_label = _plate_format(run_el, q, path)
    records: dict[str, list] = {
        k: []
        for k in ("well", "sample", "target", "dye", "role", "sample_type", "excluded", "react_id", "instrument_cq")
    }
    curves: list[tuple[np.ndarray, np.ndarray]] = []
    max_cycle = 0
    for react in run_el.findall(q("react")):
        rid = react.get("id", "")
        if rid.isdigit() and not 1 <= int(rid[:12]) <= rows * cols:
            raise InputError(
                path,
                f"reaction id {rid[:20]} is not a position of the {rows} x {cols} plate",
                "export the run again",
                line=react.sourceline,
            )
        well = well_from_position(int(rid), cols, row_label, col_label) if rid.isdigit() else normalize_well(rid)
        sample_el = react.find(q("sample"))
        sample = sample_el.get("id", "") if sample_el is not None else ""
        if sample and sample not in sample_types:
            raise InputError(
                path,
                f"reaction refers to sample '{sample}' that the file does not define",
                "export the run again",
                line=react.sourceline,
                record=well,
            )
        for data in react.findall(q("data")):
            tar_el = data.find(q("tar"))
            target = tar_el.get("id", "") if tar_el is not None else ""
            if target and target not in target_dye:
                raise InputError(
                    path,
                    f"reaction refers to target '{target}' that the file does not define",
                    "export the run again",
                    line=data.sourceline,
                    record=well,
                )
            cyc, flu = _readings(data, q, path, well)
            if cyc.size:
                if not np.isfinite(cyc).all() or cyc.max() > MAX_CYCLES:
                    raise InputError(
                        path,
                        f"a cycle number is missing or not from 1 to {MAX_CYCLES}",
                        "re-export the run",
                        line=data.sourceline,
                        record=well,
                    )
                cyc = np.ceil(cyc).astype(np.int64)
                if cyc.min() < 1:
                    raise InputError(
                        path,
                        f"cycle number {cyc.min()} is below 1",
                        "re-export the run",
                        line=data.sourceline,
                        record=well,
                    )
                if np.unique(cyc).size != cyc.size:
                    dup = int(pd.Series(cyc)[pd.Series(cyc).duplicated()].iloc[0])
                    raise InputError(
                        path,
                        f"cycle {dup} appears twice for target '{target}'",
                        "one reading per cycle; re-export the run",
                        line=data.sourceline,
                        record=well,
                    )
                max_cycle = max(max_cycle, int(cyc.max()))
            types = sample_types.get(sample, {})
            stype = types.get(target, types.get("", "unkn"))
            excl = (data.findtext(q("excl")) or "").strip()
            role = types.get("__role__") or ROLE_OF_SAMPLE_TYPE.get(stype, "sample")
            for key, value in (
                ("well", well),
                ("sample", sample),
                ("target", target),
                ("dye", target_dye.get(target, "")),
                ("role", role),
                ("sample_type", stype),
                ("excluded", excl),
                ("react_id", rid),
                ("instrument_cq", _opt_float(data.findtext(q("cq")))),
            ):
                records[key].append(value)
            curves.append((cyc.astype(np.int64), flu))
            if len(curves) > MAX_CURVES:
                raise InputError(path, f"run '{name}' has more than {MAX_CURVES:,} curves", "export one run per file")
    if not curves:
        raise InputError(path, f"run '{name}' has no reactions with data", "export the amplification data")
    if max_cycle == 0:
        raise InputError(
            path,
            f"run '{name}' has no amplification readings (adp)",
            "export the amplification curves, not only Cq values",
        )
    fluor = np.full((len(curves), max_cycle), np.nan)
    for i, (cyc, flu) in enumerate(curves):
        fluor[i, cyc - 1] = flu
    instrument = (run_el.findtext(q("instrument")) or "").strip()
    return make_run(
        name,
        path,
        fluor,
        np.arange(1, max_cycle + 1),
        records,
        instrument=instrument,
        fmt=f"rdml {version}",
        plate_rows=rows,
        plate_columns=cols,
        meta={
            "experiment": exp_id,
            "run": run_id,
            "rdml_version": version,
            "run_date": (run_el.findtext(q("runDate")) or "").strip(),
        },
    )


def _adp_paths(namespaced: bool) -> tuple[etree.XPath, etree.XPath, etree.XPath]:
    """Compiled XPaths of a data element's cycle texts, reading texts and adp count (once per thread, as the
    validators)."""
    cache = getattr(_THREAD, "adp_paths", None)
    if cache is None:
        cache = _THREAD.adp_paths = {}
    if namespaced not in cache:
        ns = {"r": NS} if namespaced else None
        pre = "r:" if ns else ""
        cache[namespaced] = (
            etree.XPath(f"{pre}adp/{pre}cyc/text()", namespaces=ns),
            etree.XPath(f"{pre}adp/{pre}fluor/text()", namespaces=ns),
            etree.XPath(f"count({pre}adp)", namespaces=ns),
        )
    return cache[namespaced]


def _readings(data, q, path: Path, well: str) -> tuple[np.ndarray, np.ndarray]:
    """Cycle numbers and readings of one data element (fast path: two XPath lists; slow path names the bad one)."""
    cyc_path, flu_path, count_path = _adp_paths(q("adp").startswith("{"))
    try:
        cyc_text = cyc_path(data)
        flu_text = flu_path(data)
        n_adp = int(count_path(data))
        if len(cyc_text) == len(flu_text) == n_adp:
            return np.asarray(cyc_text, dtype=np.float64), np.asarray(flu_text, dtype=np.float64)
    except ValueError:
        pass
    adps = data.findall(q("adp"))
    cyc = np.empty(len(adps))
    flu = np.empty(len(adps))
    for k, adp in enumerate(adps):
        cyc[k] = _float(adp.findtext(q("cyc")), path, "cycle", well, adp.sourceline)
        flu[k] = _float(adp.findtext(q("fluor")), path, "fluorescence", well, adp.sourceline)
    return cyc, flu


def _opt_float(text: str | None) -> float:
    try:
        value = float(text) if text else np.nan
    except ValueError:
        return np.nan
    return value if value >= 0 else np.nan


def load_rdml(path: str | Path, run: str | None = None, *, validate: bool = True) -> Run:
    """One run of an RDML file: the only run, or the one whose id (or 'experiment / run') is ``run``."""
    runs = read_rdml(path, validate=validate)
    if run is None:
        if len(runs) > 1:
            names = ", ".join(r.meta["run"] for r in runs[:5]) + (" ..." if len(runs) > 5 else "")
            raise InputError(path, f"holds {len(runs)} runs ({names})", "choose one with --run, or use read_rdml")
        return runs[0]
    for r in runs:
        if run in (r.meta["run"], r.name):
            return r
    raise InputError(path, f"no run '{run}'", "use one of: " + ", ".join(r.meta["run"] for r in runs))


# ------------------------------------------------------------------------------------------------- writing

#: sample annotation that carries oligolab's well role through RDML (RDML has no extraction-control type)
ROLE_ANNOTATION = "oligolab role"


def to_rdml_xml(run: Run, *, experiment: str = "oligolab", run_id: str | None = None) -> bytes:
    """RDML 1.4 XML of a run (raw readings, layout and roles); valid against RDML_v1_4_CR.xsd."""
    from ..run import RDML_TYPE_OF_ROLE, well_sort_key

    E = lambda tag, text=None, **attrs: _el(tag, text, **attrs)  # noqa: E731
    root = etree.Element(f"{{{NS}}}rdml", nsmap={None: NS}, version="1.4")
    used = run.layout[run.layout["role"] != "empty"]
    root.append(E("dateMade", pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")))
    for dye in sorted(set(used["dye"]) | ({"unknown"} if (used["dye"] == "").any() else set())):
        if dye:
            root.append(E("dye", id=dye))
    for sample, grp in used.groupby("sample", sort=False):
        s = E("sample", id=sample)
        role = grp["role"].iat[0]
        ann = E("annotation")
        ann.append(E("property", ROLE_ANNOTATION))
        ann.append(E("value", role))
        s.append(ann)
        s.append(
            E(
                "type",
                grp["sample_type"].iat[0]
                if grp["sample_type"].iat[0] in ROLE_OF_SAMPLE_TYPE
                else RDML_TYPE_OF_ROLE[role],
            )
        )
        root.append(s)
    for target, grp in used.groupby("target", sort=False):
        t = E("target", id=target)
        t.append(E("type", "toi"))
        t.append(E("dyeId", id=grp["dye"].iat[0] or "unknown"))
        root.append(t)
    exp = E("experiment", id=experiment)
    r = E("run", id=run_id or run.name)
    if run.instrument:
        r.append(E("instrument", run.instrument))
    fmt = E("pcrFormat")
    for tag, text in (
        ("rows", run.plate_rows),
        ("columns", run.plate_columns),
        ("rowLabel", "ABC"),
        ("columnLabel", "123"),
    ):
        fmt.append(E(tag, str(text)))
    r.append(fmt)
    for well in sorted(used["well"].unique(), key=well_sort_key):
        rows = used[used["well"] == well]
        m = re.match(r"^([A-Z]+)(\d+)$", well)
        pos = (ord(m.group(1)[-1]) - ord("A")) * run.plate_columns + int(m.group(2)) if m else int(well)
        react = E("react", id=str(pos))
        react.append(E("sample", id=rows["sample"].iat[0]))
        for i in rows.index:
            data = E("data")
            data.append(E("tar", id=run.layout.at[i, "target"]))
            if run.layout.at[i, "excluded"]:
                data.append(E("excl", run.layout.at[i, "excluded"]))
            for cyc, value in zip(run.cycles, run.fluor[i]):
                if np.isfinite(value):
                    adp = E("adp")
                    adp.append(E("cyc", str(int(cyc))))
                    adp.append(E("fluor", repr(float(value))))
                    data.append(adp)
            react.append(data)
        r.append(react)
    exp.append(r)
    root.append(exp)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=False)


def _el(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.Element(f"{{{NS}}}{tag}", **attrs)
    if text is not None:
        el.text = text
    return el


def write_rdml(run: Run, path: str | Path, **kwargs) -> Path:
    """Write a run as an RDML 1.4 file (zip holding rdml_data.xml), atomically."""
    from ...reports import atomic_path

    data = to_rdml_xml(run, **kwargs)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rdml_data.xml", data)
    return Path(path)
