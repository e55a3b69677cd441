"""Result versions: the lab core's analysis of a stored upload, kept as one immutable document per version.

A version stores everything its exports show, so no export ever analyses again: the rule set it was made with
(content and hash), the per-sample results, wells, controls and curves, and the lab core's printable report as
rendered then. Its ``content_sha256`` covers all of it; a sign-off carries that hash.

Analyses run in separate processes when the service has them (:func:`use_analysis_processes`), so pages stay
responsive on a small machine; tests and the command line run them in the calling thread.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InputError
from ..lab import audit as lab_audit
from ..lab.analysis import PlateResult, analyze_run
from ..lab.report import render_html, samples_frame, wells_frame
from ..lab.rules import RuleSet
from ..lab.run import guess_plate
from ..reports import plotly_js, to_json
from .db import Assay, Batch, BatchVersion, utcnow
from .rulesets import frozen, resolve_ruleset, thaw

#: where the printable report's release line (signed, superseded, corrected) goes when it is exported
RELEASE_MARK = "<!--oligolab:release-->"
#: stands for the plotting library inlined in a report (stored once in the package, not in every version)
PLOTLY_MARK = "/*oligolab:plotly.js*/"


@dataclasses.dataclass(frozen=True)
class AnalysisJob:
    """Everything one analysis of a stored batch needs; picklable, so it runs in an analysis process."""

    run_name: str
    run_bytes: bytes
    map_name: str
    map_bytes: bytes | None
    ruleset: RuleSet
    run_sha256: str
    overrides: tuple[dict, ...] = ()


@dataclasses.dataclass(frozen=True)
class Document:
    """What an analysis gives a new version: the result, the curves and the packed printable report."""

    result: dict
    curves: dict
    report: bytes


def batch_ruleset(db: Session, batch: Batch) -> RuleSet:
    """The rule set a batch was uploaded with (batches stored before rule sets were kept: resolved by name)."""
    if batch.ruleset_text:
        return thaw(batch.ruleset_text)
    assay = db.get(Assay, batch.assay_id)
    assert assay is not None  # a foreign key
    return resolve_ruleset(db, batch.lab_id, assay.ruleset)


def version_ruleset(db: Session, batch: Batch, v: BatchVersion) -> RuleSet:
    """The rule set a version was made with."""
    return thaw(v.ruleset_text) if v.ruleset_text else batch_ruleset(db, batch)


def job_for(db: Session, batch: Batch, ruleset: RuleSet, overrides: list[dict] | None = None) -> AnalysisJob:
    return AnalysisJob(
        batch.run_filename,
        batch.run_bytes,
        batch.map_filename,
        batch.map_bytes,
        ruleset,
        batch.run_sha256,
        tuple(overrides or ()),
    )


def run_job(job: AnalysisJob) -> PlateResult:
    """The lab core's analysis of an upload, with a version's overrides (lab-core entries) applied."""
    from .uploads import one_run, upload_files

    entries = [
        lab_audit.Entry(
            seq=i + 1,
            kind="override",
            time=o["time"],
            user=o["user"],
            run_id="",
            subject=o["subject"],
            field=o["field"],
            old=o.get("old", ""),
            new=o["new"],
            reason=o["reason"],
            prev="",
            hash="",
        )
        for i, o in enumerate(job.overrides)
    ]
    with upload_files(job.run_name, job.run_bytes, job.map_name, job.map_bytes) as (run_path, map_path):
        run = one_run(run_path, validate=False)  # validated at upload
        # missing readings are repaired and their curves held for review, as `oligolab lab analyze` does
        plate = analyze_run(
            run, job.ruleset, plate_map=map_path, gaps="repair", input_sha256=job.run_sha256, overrides=entries
        )
    # the uploaded names, not the temporary copies analysed
    plate.provenance.update(input=job.run_name, plate_map=job.map_name if job.map_bytes else "")
    return plate


def document_job(job: AnalysisJob) -> Document:
    """A job's result as a version stores it (runs in the analysis process)."""
    plate = run_job(job)
    result, curves = result_document(plate)
    html = render_html(plate, canonical_sha256(result["samples"]), release_html=RELEASE_MARK)
    return Document(result, curves, pack_report(html))


# ------------------------------------------------------------------------------------ analysis processes

_pool = None
_workers = 0  # the pool's size (to restart it alike)


def use_analysis_processes(n: int) -> None:
    """Run analyses in ``n`` worker processes (0: in the calling thread)."""
    global _pool, _workers
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None
    _workers = n
    if n > 0:
        from .process import analysis_process_start

        _pool = ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context("spawn"), initializer=analysis_process_start
        )


def compute(fn: Callable[..., Any], *args: Any, db: Session | None = None) -> Any:
    """``fn(*args)`` in the analysis process (restarted once if it died), or here without one.

    ``db``: a session that has read but not yet written; its transaction is ended first, so its pooled
    connection serves other requests while this one waits for the analysis.
    """
    from concurrent.futures.process import BrokenProcessPool

    if db is not None:
        db.commit()
    if _pool is None:
        return fn(*args)
    try:
        return _pool.submit(fn, *args).result()
    except BrokenProcessPool:
        use_analysis_processes(_workers)
        return _pool.submit(fn, *args).result()


# ------------------------------------------------------------------------------------------- documents


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(to_json(frame.to_dict(orient="records")))


def result_document(plate: PlateResult) -> tuple[dict, dict]:
    """(summary, samples, wells, controls, problems, provenance; the curves) of an analysed plate."""
    t = plate.table
    curves = {
        f"{w}/{tg}": np.round(plate.curves.corrected[i], 4).tolist()
        for i, (w, tg) in enumerate(zip(t["well"], t["target"]))
    }
    return {
        "run_id": plate.run_id,
        "run": plate.run.name,
        "summary": plate.summary(),
        "valid": plate.valid,
        "problems": list(plate.problems),
        "samples": _records(samples_frame(plate)),
        "wells": _records(wells_frame(plate)),
        "controls": _records(plate.controls),
        "thresholds": plate.curves.thresholds,
        "cycles": np.asarray(plate.run.cycles).tolist(),
        "provenance": json.loads(to_json(plate.provenance)),
        "plate": dict(zip(("rows", "columns"), map(int, guess_plate(plate.run.layout["well"])))),
    }, json.loads(to_json(curves))


def canonical(obj: object) -> bytes:
    """The one byte form of a JSON value that hashes are computed on (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_sha256(obj: object) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def pack_report(html: str) -> bytes:
    """A report as a version stores it: the inlined plotting library replaced by a mark, gzip-compressed."""
    js = plotly_js()
    return gzip.compress(html.replace(js, PLOTLY_MARK).encode(), mtime=0)


def report_text(packed: bytes) -> str:
    """The stored report text (with its marks): what the content hash covers."""
    return gzip.decompress(packed).decode()


def unpack_report(packed: bytes, release_html: str) -> str:
    """The stored report with its release line and the plotting library, ready to serve."""
    return report_text(packed).replace(RELEASE_MARK, release_html, 1).replace(PLOTLY_MARK, plotly_js(), 1)


def content_sha256(batch: Batch, v: BatchVersion) -> str:
    """SHA-256 of everything a version shows: batch, number, run file, rule set, overrides, result, curves and
    the printable report. A sign-off carries it; ``oligolab serve verify`` recomputes it."""
    body = {
        "batch": batch.id,
        "version": v.version,
        "run_sha256": batch.run_sha256,
        "ruleset": v.ruleset_text or "",
        "ruleset_sha256": v.ruleset_sha256 or "",
        "overrides": v.overrides or [],
        "result": v.result,
        "curves_sha256": canonical_sha256(v.curves or {}),
        "report_sha256": hashlib.sha256(report_text(v.report_html).encode()).hexdigest() if v.report_html else "",
    }
    return canonical_sha256(body)


def store_version(
    db: Session, batch: Batch, document: Document, ruleset: RuleSet, *, user: str, reason: str, overrides: list[dict]
) -> BatchVersion:
    """A new immutable version from a :func:`document_job` result, the batch pointing at it (caller commits
    both at once)."""
    number = batch.current_version + 1
    v = BatchVersion(
        batch_id=batch.id,
        version=number,
        overrides=overrides,
        summary=document.result["summary"],
        result=document.result,
        curves=document.curves,
        report_html=document.report,
        ruleset_text=frozen(ruleset),
        ruleset_sha256=ruleset.sha256,
        reason=reason,
        created_by=user,
        created_at=utcnow(),
    )
    v.content_sha256 = content_sha256(batch, v)
    db.add(v)
    batch.current_version = number
    return v


def version(db: Session, batch: Batch, number: int | None = None) -> BatchVersion | None:
    number = number or batch.current_version
    if not number:
        return None
    return db.scalar(select(BatchVersion).where(BatchVersion.batch_id == batch.id, BatchVersion.version == number))


def versions(db: Session, batch: Batch) -> list[BatchVersion]:
    return list(
        db.scalars(select(BatchVersion).where(BatchVersion.batch_id == batch.id).order_by(BatchVersion.version))
    )


def need_version(db: Session, batch: Batch, number: int | None = None) -> BatchVersion:
    v = version(db, batch, number)
    if v is None:
        raise InputError(
            f"batch {batch.id}",
            f"no version {number or ''} yet (the batch is {batch.status})",
            "wait until the analysis is done",
        )
    return v
