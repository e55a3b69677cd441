"""A version's exports, rendered from the stored version only (never analysed again): the printable report
with its release line, the per-sample CSV and the FHIR Observations, all with the version's release state
(:mod:`oligolab.lab.exports.release`) and the one call mapping of :mod:`oligolab.lab.exports.calls`."""

from __future__ import annotations

import datetime as _dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import reports
from ..lab.exports import csv as csv_export
from ..lab.exports import fhir
from ..lab.exports.release import Previous, Release, final_call
from .analysis import unpack_report
from .db import Assay, Batch, BatchVersion, Lab, Signoff


def _iso(t: _dt.date | None) -> str:
    return t.isoformat() if t is not None else ""


def previous_release(db: Session, batch: Batch, v: BatchVersion) -> BatchVersion | None:
    """The last version signed before ``v`` (the release a signed ``v`` changes), if any."""
    return db.scalar(
        select(BatchVersion)
        .join(Signoff, Signoff.version_id == BatchVersion.id)
        .where(BatchVersion.batch_id == batch.id, BatchVersion.version < v.version)
        .order_by(BatchVersion.version.desc())
        .limit(1)
    )


def release_of(db: Session, batch: Batch, v: BatchVersion) -> Release:
    """The release state of a stored version: signed or not, superseded, and the values it replaces."""
    previous: dict[str, Previous] = {}
    if v.signed_by:
        before = previous_release(db, batch, v)
        if before is not None:
            previous = {
                str(s["sample"]): Previous(
                    final_call(s), str(s.get("report") or ""), before.version, before.signed_by, _iso(before.signed_at)
                )
                for s in before.result["samples"]
            }
    newer = batch.current_version if batch.current_version > v.version else None
    return Release(
        version=v.version,
        signed_by=v.signed_by,
        signed_at=_iso(v.signed_at),
        run_valid=v.result.get("valid"),
        superseded_by=newer,
        previous=previous,
        invalid_reason=v.signoff.invalid_reason if v.signoff is not None else "",
    )


def release_html(release: Release, v: BatchVersion) -> str:
    """The release line of the printable report: signed or not, superseded, corrected."""
    esc = reports.html_escape
    if release.signed:
        line = (
            f'<span class="pill ok">SIGNED</span> version {release.version}, by {esc(release.signed_by)} at '
            f"{esc(release.signed_at)}; content SHA-256 {esc(v.content_sha256)}"
        )
    else:
        line = f'<span class="pill na">NOT SIGNED</span> version {release.version} awaits review and sign-off'
    parts = [f'<p id="release">{line}</p>']
    if release.signed and release.run_valid is False:
        parts.append(
            f'<p id="invalid-release"><span class="pill bad">RELEASED AS INVALID RUN</span> no sample result '
            f"is released; reason: {esc(release.invalid_reason)}</p>"
        )
    changed = [s for s in v.result["samples"] if release.change_note(s)]
    if changed:
        parts.append(
            f'<p><span class="pill warn">CHANGED AFTER RELEASE</span> {len(changed)} sample result(s) '
            "replace values released earlier: "
            + "; ".join(esc(f"{s['sample']}: {release.change_note(s)}") for s in changed[:20])
            + "</p>"
        )
    if release.superseded_by:
        parts.append(
            f'<p id="superseded"><span class="pill warn">SUPERSEDED</span> a newer version '
            f"({release.superseded_by}) of these results exists; this is version {release.version}</p>"
        )
    return "".join(parts)


def report_html(db: Session, batch: Batch, v: BatchVersion) -> str:
    """The printable report of a version as stored, with its release line."""
    release = release_of(db, batch, v)
    if v.report_html:
        return unpack_report(v.report_html, release_html(release, v))
    # versions stored before reports were kept: their per-sample results only, from the stored document
    import pandas as pd

    frame = pd.DataFrame(v.result["samples"])
    return reports.html_page(
        f"qPCR plate report: {v.result.get('run', '')}",
        f"batch {batch.id} '{batch.name}', version {v.version} (stored without its full report)",
        [("Release", release_html(release, v)), ("Samples", reports.table_html(frame, max_rows=2000))],
        include_plotly=False,
    )


def samples_csv(db: Session, batch: Batch, v: BatchVersion) -> str:
    return csv_export.samples_csv(v.result["samples"], release_of(db, batch, v))


def fhir_bundle(db: Session, batch: Batch, v: BatchVersion) -> dict:
    assay, lab = db.get(Assay, batch.assay_id), db.get(Lab, batch.lab_id)
    assert assay is not None and lab is not None  # foreign keys
    test = fhir.Test(assay.name, assay.loinc_code, assay.loinc_display)
    return fhir.bundle(
        v.result["samples"],
        release=release_of(db, batch, v),
        test=test,
        performer=lab.name,
        prefix=f"b{batch.id}",
        context=f"batch {batch.id} '{batch.name}', version {v.version}",
        timestamp=_iso(v.signed_at or v.created_at),
    )


def fhir_json(db: Session, batch: Batch, v: BatchVersion) -> str:
    return json.dumps(fhir_bundle(db, batch, v), indent=1)
