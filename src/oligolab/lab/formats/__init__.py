"""Instrument formats as a registry: one module per format, each with ``detect(probe)`` and ``read(path)``.

==================  =================================================================  ==========================
name                what                                                               read by
==================  =================================================================  ==========================
rdml                RDML 1.0-1.4 (LightCycler 96, StepOne, CFX, rdmlpython, ...)       :mod:`.rdml` (lxml + XSD)
eds                 Applied Biosystems .eds (QuantStudio, StepOne, 7500)               :mod:`.eds`
quantstudio         QuantStudio 3/5/6/7/12K Flex, ViiA 7 export (text or Excel)        :mod:`.quantstudio`
abi-7500            7500 software v2 export (wells 1-96, same sections)                :mod:`.quantstudio`
abi-7500-sds        7500 SDS "analysis result" text                                    :mod:`.sds7500`
lightcycler480      Roche LightCycler 480 raw data text                                :mod:`.lightcycler480`
biorad-cfx          Bio-Rad CFX Manager / Maestro amplification results (csv, xlsx)    :mod:`.wide`
rdes                RDES v1.0 table (RDML consortium)                                  :mod:`.rdes`
long                one reading per row (well, cycle, fluorescence)                    :mod:`.long`
wide                a cycle column and one column per well or curve                    :mod:`.wide`
==================  =================================================================  ==========================

:mod:`.common` holds what the readers share: limits on sizes and counts, number and cycle parsing, zip members,
the run built from curves. :data:`DETECTION_ORDER` is the order formats are tried in (the most specific first).
Adding a format is one new module with ``NAMES``, ``detect`` and ``read`` plus one line in :data:`MODULES`
(docs/lab.md, "Adding an instrument format"). Benchling's ``allotropy`` was tried on every real export here
(scripts/compare_allotropy.py): it reads the QuantStudio text export with identical readings but none of the
other formats, at 11x the CPU time, and pins pandas < 3; docs/lab.md ("Which library reads what") says why
these readers stay the project's own.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ...errors import InputError
from ..run import Run
from . import common, eds, lightcycler480, long, quantstudio, rdes, rdml, sds7500, wide

#: every format module, in detection order
MODULES: tuple[ModuleType, ...] = (rdml, eds, quantstudio, sds7500, lightcycler480, rdes, wide, long)
#: format name -> module that reads it
REGISTRY: dict[str, ModuleType] = {name: m for m in MODULES for name in m.NAMES}
FORMATS = tuple(REGISTRY)
DETECTION_ORDER = tuple(m.__name__.rsplit(".", 1)[-1] for m in MODULES)


def detect_format(path: str | Path) -> str:
    """The format name of ``path``, judged from its content; InputError listing the formats if none fits."""
    path = Path(path)
    probe = common.Probe(path)
    for module in MODULES:
        name = module.detect(probe)
        if name:
            return name
    lines = [ln for ln in probe.text.split("\n") if ln.strip()][:3]
    first = lines[0][:120] if lines else ""
    for k, line in enumerate(lines):
        cols = {c.strip().strip('"').lower() for c in line.split(common.sniff_delimiter(line))}
        if "cycle" in cols or "cyc" in cols or not ({"well", "pos", "well position"} & cols):
            continue
        if {"cq", "ct", "cт", "cp"} & cols:
            raise InputError(
                path,
                "this file holds Cq results but no amplification readings",
                "export the amplification data (cycle by cycle) and give this file as --plate-map",
                line=k + 1,
            )
        if {"sample", "target", "role", "content", "sample name", "name"} & cols:
            raise InputError(
                path,
                "this file looks like a plate map (wells and samples) and holds no amplification readings",
                "give it as --plate-map beside the run file",
                line=k + 1,
            )
    what = f"header: '{first}'" if first else "not a text table, RDML or .eds document"
    raise InputError(path, f"unknown instrument export ({what})", common.SUPPORTED_HELP, line=1 if first else None)


def read_runs(path: str | Path, fmt: str | None = None, **options: object) -> list[Run]:
    """Every run in ``path`` read by format ``fmt`` (detected when None). Options: ``validate`` (RDML XSD),
    ``dye`` (the dye of a single-channel wide export)."""
    path = Path(path)
    common.check_size(path)
    fmt = fmt or detect_format(path)
    if fmt not in REGISTRY:
        raise InputError(path, f"unknown format '{fmt}'", "use one of: " + ", ".join(FORMATS))
    return REGISTRY[fmt].read(path, fmt, **options)
