"""Applied Biosystems ``.eds`` documents (a zip): QuantStudio, StepOne and 7500 experiment files.

* A 7500 SDS ``.eds`` that holds ``apldbio/sds/analysis_result.txt`` is read as that text
  (:mod:`.sds7500`), with the instrument's Ct.
* A StepOne / QuantStudio ``.eds`` with ``apldbio/sds/multicomponent_data.txt`` is read from the
  multicomponent (dye-separated) signals: Rn = reporter / passive reference (ROX) per well and cycle, the
  layout (sample, detector, task, reporter) from ``plate_setup.xml``. Cycles numbered from 0 are read as 1, 2,
  3, ... The file carries no instrument Ct.

Zip members are size-checked before they are unpacked and XML is parsed without entities or network access.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
from lxml import etree

from ...errors import InputError
from ..run import Run, well_from_position
from . import common, sds7500

NAMES = ("eds",)
ANALYSIS = "apldbio/sds/analysis_result.txt"
MULTICOMPONENT = "apldbio/sds/multicomponent_data.txt"
PLATE_SETUP = "apldbio/sds/plate_setup.xml"
_RECORD = re.compile(r"(\d+)\t(\d+)\t([A-Za-z][\w\- ]*)\t([-\d.Ee+]+)\t([-\d.Ee+]+)")


def detect(probe: common.Probe) -> str | None:
    names = set(probe.zip_names)
    return "eds" if names & {ANALYSIS, MULTICOMPONENT} else None


def read(path: Path, fmt: str = "eds", **_: object) -> list[Run]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.replace("\\", "/"): n for n in zf.namelist()}
            if ANALYSIS in names:
                text = common.decode(common.read_member(path, zf, names[ANALYSIS]), path)
                run = sds7500.parse(text, path)
                run.fmt = "eds (7500 analysis result)"
                return [run]
            if MULTICOMPONENT not in names:
                raise InputError(
                    path,
                    "the .eds file holds no amplification data (no analysis_result.txt or multicomponent_data.txt)",
                    "open the run in the instrument software and save it again",
                )
            signals = common.decode(common.read_member(path, zf, names[MULTICOMPONENT]), path)
            setup = common.read_member(path, zf, names[PLATE_SETUP]) if PLATE_SETUP in names else b""
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise InputError(
            path,
            f"the .eds archive is truncated or damaged ({type(exc).__name__})",
            "copy the file again; the transfer was incomplete",
        ) from None
    return [_multicomponent_run(path, signals, _plate_setup(path, setup))]


def _plate_setup(path: Path, data: bytes) -> dict[int, dict]:
    """Well index -> sample, target (detector), task, reporter dye from plate_setup.xml."""
    if not data:
        return {}
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise InputError(path, f"plate_setup.xml is malformed ({exc.msg})", "save the run again") from None
    out: dict[int, dict] = {}
    for fmap in root.iter("FeatureMap"):
        kind = (fmap.findtext("Feature/Id") or "").strip()
        for fv in fmap.findall("FeatureValue"):
            try:
                index = int(fv.findtext("Index") or "")
            except ValueError:
                continue
            rec = out.setdefault(index, {})
            if kind == "sample":
                rec["sample"] = (fv.findtext("FeatureItem/Sample/Name") or "").strip()
            elif kind == "detector-task":
                task = fv.find("FeatureItem/DetectorTaskList/DetectorTask")
                if task is not None:
                    rec["task"] = (task.findtext("Task") or "").strip().lower()
                    rec["target"] = (task.findtext("Detector/Name") or "").strip()
                    rec["dye"] = (task.findtext("Detector/Reporter") or "").strip()
    return out


def _multicomponent_run(path: Path, text: str, setup: dict[int, dict]) -> Run:
    """Rn (reporter / ROX) per well and cycle from the multicomponent signals."""
    signal: dict[tuple[int, str], dict[int, float]] = {}
    for ln in text.split("\n"):
        for m in _RECORD.finditer(ln):
            well, cycle, dye = int(m.group(1)), int(m.group(2)), m.group(3).strip()
            if well > 1535 or cycle > 1000:
                raise InputError(path, f"well {well} or cycle {cycle} out of range", "save the run again")
            signal.setdefault((well, dye), {})[cycle] = common.number(m.group(5), path, str(well), cycle)
    if not signal:
        raise InputError(path, "multicomponent_data.txt holds no readings", "save the run again")
    wells = sorted({w for w, _ in signal})
    cols = 24 if max(wells) >= 96 else 12
    records, curves = [], []
    for w in wells:
        info = setup.get(w, {})
        reporter = info.get("dye") or "FAM"
        if (w, reporter) not in signal:
            continue
        rep, rox = signal[(w, reporter)], signal.get((w, "ROX"), {})
        cyc = np.array(sorted(rep), dtype=np.float64)
        flu = np.array([rep[int(c)] / rox[int(c)] if rox.get(int(c)) else rep[int(c)] for c in cyc])
        task = info.get("task", "")
        role = {"unknown": "sample", "ntc": "ntc", "standard": "std"}.get(task, "sample" if info else "empty")
        records.append(
            {
                "well": well_from_position(w + 1, cols),
                "sample": info.get("sample", ""),
                "target": info.get("target", reporter),
                "dye": reporter,
                "role": role,
                "sample_type": task,
                "excluded": "",
            }
        )
        curves.append((cyc, flu))
    return common.curves_to_run(
        path,
        records,
        curves,
        fmt="eds (multicomponent)",
        instrument="Applied Biosystems",
        rows=16 if cols == 24 else 8,
        cols=cols,
    )
