"""Exports of an ``oligolab lab analyze`` output folder, for the command line (``oligolab lab export``).

The folder's ``samples.csv`` is exported as it is (its texts already follow the final calls); it counts as
released (``final``) only while the sign-off in ``result.json`` names the SHA-256 of that very file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

import pandas as pd

from ... import reports
from ...errors import InputError
from . import csv as csv_export
from . import fhir
from .release import Release


def _read(folder: Path) -> tuple[list[dict], dict, bool]:
    doc_path, samples_path = folder / "result.json", folder / "samples.csv"
    for p in (doc_path, samples_path):
        if not p.is_file():
            raise InputError(folder, f"no {p.name} here", "give the output folder of 'oligolab lab analyze'")
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(doc_path, f"not valid JSON ({exc.msg})", "analyse the run again", line=exc.lineno) from None
    frame = pd.read_csv(samples_path, dtype={"sample": str}, keep_default_na=False)
    signoff = doc.get("signoff") or {}
    signed = bool(signoff) and signoff.get("new") == hashlib.sha256(samples_path.read_bytes()).hexdigest()
    return frame.to_dict(orient="records"), doc, signed


def _release(doc: dict, signed: bool) -> Release:
    signoff = doc.get("signoff") or {}
    return Release(
        version=1,
        signed_by=signoff.get("user", "") if signed else "",
        signed_at=signoff.get("time", "") if signed else "",
        run_valid=doc.get("valid"),
        invalid_reason="; ".join(doc.get("problems") or []) if signed else "",
    )


def export_csv(folder: Path, dest: Path, **_options: str) -> Path:
    samples, doc, signed = _read(folder)
    return reports.write_text(dest / "samples.export.csv", csv_export.samples_csv(samples, _release(doc, signed)))


def export_fhir(
    folder: Path,
    dest: Path,
    *,
    performer: str = "laboratory",
    loinc: str = "",
    loinc_display: str = "",
    **_options: str,
) -> Path:
    samples, doc, signed = _read(folder)
    settings = (doc.get("provenance") or {}).get("settings") or {}
    ruleset_id = str(settings.get("rules") or (doc.get("provenance") or {}).get("rules", "")).split(" v")[0]
    test = fhir.Test.for_ruleset(ruleset_id, (doc.get("provenance") or {}).get("rules") or ruleset_id)
    if loinc:
        test = fhir.Test(test.name, loinc, loinc_display)
    release = _release(doc, signed)
    stamp = release.signed_at or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    prefix = "r" + str(doc.get("run_id", "run")).split(":")[0][:12]
    bundle = fhir.bundle(
        samples,
        release=release,
        test=test,
        performer=performer,
        prefix=prefix,
        context=f"run {doc.get('summary', {}).get('run', '')}",
        timestamp=stamp,
    )
    return reports.write_json(dest / "observations.fhir.json", bundle)


#: export formats of ``oligolab lab export``: name -> function(folder, dest, **options) -> written file
FORMATS = {"csv": export_csv, "fhir": export_fhir}


def export(folder: str | Path, fmt: str, dest: str | Path | None = None, **options: str) -> Path:
    """Write the ``fmt`` export of an analysis output folder into ``dest`` (default: the folder itself)."""
    if fmt not in FORMATS:
        raise InputError(None, f"unknown export format '{fmt}'", "use one of: " + ", ".join(FORMATS))
    folder = Path(folder)
    return FORMATS[fmt](folder, Path(dest) if dest else folder, **options)
