"""The lab service's library API: uploads, analysis versions, review, sign-off, audit and exports.

Every analysis is the :mod:`oligolab.lab` core's (``load_runs`` + ``analyze_run``); a correction is a list of
lab-core overrides applied to the same run, stored as a new immutable version. The web routes and the worker
call only these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import csv
import datetime as _dt
import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import knowledge
from ..errors import InputError
from ..lab import audit as lab_audit
from ..lab.analysis import PlateResult, analyze_run, load_runs
from ..lab.platemap import apply_plate_map, read_plate_map
from ..lab.report import render_html, samples_frame, wells_frame
from ..lab.rules import RuleSet, load_ruleset, ruleset_from_yaml, shipped_rulesets
from ..lab.run import guess_plate
from ..reports import to_json
from .db import Assay, AuditEvent, Batch, BatchVersion, RuleSetRow, User, utcnow

#: largest run file or plate map accepted (bytes)
MAX_UPLOAD_BYTES = 32 << 20
#: largest total a zip upload (RDML) may unpack to, and the largest unpacked/packed ratio (zip-bomb guard)
MAX_UNPACKED_BYTES = 256 << 20
MAX_ZIP_RATIO = 200
RUN_SUFFIXES = (".rdml", ".rdm", ".xml", ".csv", ".tsv", ".txt", ".xlsx", ".xls")
MAP_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")


# ------------------------------------------------------------------------------------------------- audit

def record(db: Session, *, user: User | str, lab_id: int | None, action: str, entity: str, entity_id: object,
           before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Append one audit event in the caller's transaction (it commits with the change it describes)."""
    name = user.username if isinstance(user, User) else user
    ev = AuditEvent(lab_id=lab_id, at=utcnow(), username=name, action=action, entity=entity,
                    entity_id=str(entity_id), before=_plain(before), after=_plain(after))
    db.add(ev)
    return ev


def _plain(obj):
    return None if obj is None else json.loads(to_json(obj))


def audit_rows(db: Session, lab_id: int, *, entity: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.lab_id == lab_id)
    if entity:
        q = q.where(AuditEvent.entity == entity)
    if entity_id:
        q = q.where(AuditEvent.entity_id == entity_id)
    q = q.order_by(AuditEvent.id.desc())
    return list(db.scalars(q.limit(limit) if limit else q))


def audit_csv(rows: list[AuditEvent]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "time_utc", "user", "action", "entity", "entity_id", "before", "after"])
    for r in sorted(rows, key=lambda r: r.id):
        w.writerow([r.id, r.at.isoformat(), r.username, r.action, r.entity, r.entity_id,
                    json.dumps(r.before, sort_keys=True) if r.before is not None else "",
                    json.dumps(r.after, sort_keys=True) if r.after is not None else ""])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- rule sets

def seed_lab(db: Session, lab_id: int, user: str = "system") -> None:
    """Give a new lab the default assays of knowledge/lab-service.toml (once)."""
    if db.scalar(select(func.count()).select_from(Assay).where(Assay.lab_id == lab_id)):
        return
    for spec in knowledge.lab_service()["assays"]:
        a = Assay(lab_id=lab_id, name=spec["name"], ruleset=spec["ruleset"], watch_assays=spec["watch_assays"],
                  loinc_code=spec.get("loinc_code", ""), loinc_display=spec.get("loinc_display", ""))
        db.add(a)
        db.flush()
        record(db, user=user, lab_id=lab_id, action="create", entity="assay", entity_id=a.id, after=assay_dict(a))


def assay_dict(a: Assay) -> dict:
    return {"id": a.id, "name": a.name, "ruleset": a.ruleset, "watch_assays": list(a.watch_assays or []),
            "loinc_code": a.loinc_code, "active": a.active}


def resolve_ruleset(db: Session, lab_id: int, name: str) -> RuleSet:
    """A shipped rule set by id, or the lab's own by name (stored YAML, may extend a shipped one)."""
    row = db.scalar(select(RuleSetRow).where(RuleSetRow.lab_id == lab_id, RuleSetRow.name == name))
    if row is None:
        return load_ruleset(name)
    return dataclasses.replace(ruleset_from_yaml(row.yaml_text, f"rule set {name}"),
                               path=f"lab rule set '{name}' (sha256 {row.sha256[:12]})")


def save_ruleset(db: Session, user: User, name: str, yaml_text: str) -> RuleSetRow:
    """Store a lab rule set after validating it with the lab core; InputError (one line) when invalid."""
    name = name.strip()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InputError("rule set", "the name must be letters, digits, - or _", "choose a plain name")
    if name in shipped_rulesets():
        raise InputError("rule set", f"'{name}' is a shipped rule set", "choose another name (extends: it)")
    ruleset_from_yaml(yaml_text, f"rule set {name}")       # InputError (file, line, fix) when invalid
    sha = hashlib.sha256(yaml_text.encode()).hexdigest()
    row = db.scalar(select(RuleSetRow).where(RuleSetRow.lab_id == user.lab_id, RuleSetRow.name == name))
    before = {"name": row.name, "sha256": row.sha256, "yaml": row.yaml_text} if row else None
    if row is None:
        row = RuleSetRow(lab_id=user.lab_id, name=name, yaml_text=yaml_text, sha256=sha, created_by=user.username)
        db.add(row)
    else:
        row.yaml_text, row.sha256 = yaml_text, sha
    db.flush()
    record(db, user=user, lab_id=user.lab_id, action="update" if before else "create", entity="ruleset",
           entity_id=name, before=before, after={"name": name, "sha256": sha, "yaml": yaml_text})
    return row


# --------------------------------------------------------------------------------------------- uploads

def _check_size(data: bytes, filename: str, what: str) -> None:
    if not data:
        raise InputError(filename or what, f"the {what} is empty", f"choose the {what} file again")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(filename, f"the {what} is larger than {MAX_UPLOAD_BYTES >> 20} MiB",
                         "upload one instrument run per batch")


def _check_zip(data: bytes, filename: str) -> None:
    """Refuse zip bombs before any reader unpacks the upload."""
    if not data.startswith(b"PK"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise InputError(filename, "a damaged zip archive", "export the run from the instrument again") from None
    total = sum(i.file_size for i in infos)
    if len(infos) > 100 or total > MAX_UNPACKED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise InputError(filename, f"the archive unpacks to {total >> 20} MiB in {len(infos)} files (refused as a "
                         "possible zip bomb)", "upload the run file exported by the instrument")


def _safe_name(filename: str, suffixes: tuple[str, ...], what: str) -> str:
    name = Path((filename or "").replace("\\", "/")).name.strip()[:200]
    if not name:
        raise InputError(what, "no file was chosen", f"choose the {what} file")
    if Path(name).suffix.lower() not in suffixes:
        raise InputError(name, f"not a {what} file type", "use one of: " + ", ".join(suffixes))
    return name


@contextlib.contextmanager
def _files(run_name: str, run_bytes: bytes, map_name: str = "", map_bytes: bytes | None = None
           ) -> Iterator[tuple[Path, Path | None]]:
    """The upload as files in a private temporary folder, removed afterwards whatever happens."""
    with tempfile.TemporaryDirectory(prefix="oligolab-batch-") as tmp:
        run_path = Path(tmp) / run_name
        run_path.write_bytes(run_bytes)
        map_path = None
        if map_bytes:
            map_path = Path(tmp) / ("map-" + map_name)
            map_path.write_bytes(map_bytes)
        yield run_path, map_path


def _one_run(run_path: Path, *, validate: bool = True):
    runs = load_runs(run_path, validate=validate)
    if len(runs) != 1:
        raise InputError(run_path.name, f"the file holds {len(runs)} runs", "export one run per file and upload "
                         "each as its own batch")
    return runs[0]


def _read_named(name: str, read: Callable):
    """Run a reader on an uploaded file; its errors name the uploaded file, never the temporary copy, and a
    reader failing on hostile bytes gives a one-line refusal, not a server fault."""
    try:
        return read()
    except InputError as exc:
        raise InputError(name, exc.problem, exc.fix, line=exc.line, record=exc.record) from None
    except Exception as exc:
        raise InputError(name, f"could not be read ({type(exc).__name__})",
                         "upload the file exported by the instrument (RDML or a supported table)") from None


def validate_upload(run_name: str, run_bytes: bytes, map_name: str, map_bytes: bytes | None,
                    ruleset: RuleSet | None = None) -> str:
    """Check an upload the way the analysis will read it; returns a one-line description of the run.

    InputError (naming the uploaded file, line or well, and the fix) on anything the analysis would refuse.
    """
    run_name = _safe_name(run_name, RUN_SUFFIXES, "run")
    _check_size(run_bytes, run_name, "run file")
    _check_zip(run_bytes, run_name)
    if map_bytes:
        map_name = _safe_name(map_name, MAP_SUFFIXES, "plate map")
        _check_size(map_bytes, map_name, "plate map")
        _check_zip(map_bytes, map_name)
    with _files(run_name, run_bytes, map_name, map_bytes) as (run_path, map_path):
        run = _read_named(run_name, lambda: _one_run(run_path))
        if map_path is not None:
            run = _read_named(map_name, lambda: apply_plate_map(run, read_plate_map(map_path), map_name))
        if (run.layout["role"] == "empty").all():
            raise InputError(run_name, "the run has no plate layout (samples, targets, roles)",
                             "upload the plate map with it (columns well, sample, role, target)")
        if ruleset is not None:
            used = sorted(set(run.layout.loc[run.layout["role"] != "empty", "target"].astype(str)))
            if not any(ruleset.target_of(t) for t in used):
                raise InputError(map_name if map_bytes else run_name,
                                 f"none of the plate's targets ({', '.join(used[:6])}{'…' if len(used) > 6 else ''}) "
                                 f"belongs to the assay's rule set ({', '.join(ruleset.targets)})",
                                 "choose the right assay, or upload the plate map that names the targets")
        return run.describe()


def create_batch(db: Session, user: User, *, assay_id: int, name: str, run_name: str, run_bytes: bytes,
                 map_name: str = "", map_bytes: bytes | None = None) -> Batch:
    """Validate and store an upload as a queued batch (in the caller's transaction, with its audit event)."""
    assay = db.get(Assay, assay_id)
    if assay is None or assay.lab_id != user.lab_id or not assay.active:
        raise InputError("assay", "unknown assay", "choose one of your lab's assays")
    description = compute(validate_upload, run_name, run_bytes, map_name, map_bytes,
                          resolve_ruleset(db, user.lab_id, assay.ruleset), db=db)
    batch = Batch(lab_id=user.lab_id, assay_id=assay.id, name=(name or Path(run_name).stem).strip()[:200],
                  run_filename=Path(run_name).name, run_bytes=run_bytes,
                  run_sha256=hashlib.sha256(run_bytes).hexdigest(),
                  map_filename=Path(map_name).name if map_bytes else "", map_bytes=map_bytes or None,
                  status="queued", progress="waiting in the queue", created_by=user.username, created_at=utcnow())
    db.add(batch)
    db.flush()
    record(db, user=user, lab_id=user.lab_id, action="upload", entity="batch", entity_id=batch.id,
           after={"name": batch.name, "assay": assay.name, "run_file": batch.run_filename,
                  "run_sha256": batch.run_sha256, "plate_map": batch.map_filename, "run": description})
    return batch


# -------------------------------------------------------------------------------------------- analysis

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


def job_for(db: Session, batch: Batch, overrides: list[dict] | None = None) -> AnalysisJob:
    assay = db.get(Assay, batch.assay_id)
    return AnalysisJob(batch.run_filename, batch.run_bytes, batch.map_filename, batch.map_bytes,
                       resolve_ruleset(db, batch.lab_id, assay.ruleset), batch.run_sha256, tuple(overrides or ()))


def run_job(job: AnalysisJob) -> PlateResult:
    """The lab core's analysis of an upload, with a version's overrides (lab-core entries) applied."""
    entries = [lab_audit.Entry(seq=i + 1, kind="override", time=o["time"], user=o["user"], run_id="",
                               subject=o["subject"], field=o["field"], old=o.get("old", ""), new=o["new"],
                               reason=o["reason"], prev="", hash="")
               for i, o in enumerate(job.overrides)]
    with _files(job.run_name, job.run_bytes, job.map_name, job.map_bytes) as (run_path, map_path):
        run = _one_run(run_path, validate=False)   # validated at upload
        plate = analyze_run(run, job.ruleset, plate_map=map_path, input_sha256=job.run_sha256, overrides=entries)
    # the uploaded names, not the temporary copies analysed
    plate.provenance.update(input=job.run_name, plate_map=job.map_name if job.map_bytes else "")
    return plate


def document_job(job: AnalysisJob) -> tuple[dict, dict]:
    """A job's result as a version stores it (see :func:`result_document`)."""
    return result_document(run_job(job))


def report_job(job: AnalysisJob, signoff: lab_audit.Entry | None) -> str:
    """A job's printable report (the lab core's), with the version's sign-off."""
    plate = run_job(job)
    if signoff is not None:
        plate.signoff = dataclasses.replace(signoff, run_id=plate.run_id)
    return render_html(plate)


# Analyses run in a separate process when the service has one, so pages stay responsive on a small machine
# (the analysis is CPU-bound Python); tests and the CLI run them in the calling thread.
_pool = None


def use_analysis_processes(n: int) -> None:
    """Run analyses in ``n`` worker processes (0: in the calling thread)."""
    global _pool
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None
    if n > 0:
        _pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))


def compute(fn: Callable, *args, db: Session | None = None):
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
        use_analysis_processes(_pool._max_workers)
        return _pool.submit(fn, *args).result()


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(to_json(frame.to_dict(orient="records")))


def result_document(plate: PlateResult) -> tuple[dict, dict]:
    """What a version stores: (summary, samples, wells, controls, problems, provenance; the curves)."""
    t = plate.table
    curves = {f"{w}/{tg}": np.round(plate.curves.corrected[i], 4).tolist()
              for i, (w, tg) in enumerate(zip(t["well"], t["target"]))}
    return {
        "run_id": plate.run_id, "run": plate.run.name, "summary": plate.summary(), "valid": plate.valid,
        "problems": list(plate.problems), "samples": _records(samples_frame(plate)),
        "wells": _records(wells_frame(plate)), "controls": _records(plate.controls),
        "thresholds": plate.curves.thresholds, "cycles": np.asarray(plate.run.cycles).tolist(),
        "provenance": json.loads(to_json(plate.provenance)),
        "plate": dict(zip(("rows", "columns"), map(int, guess_plate(plate.run.layout["well"])))),
    }, curves


def store_version(db: Session, batch: Batch, document: tuple[dict, dict], *, user: str, reason: str,
                  overrides: list[dict]) -> BatchVersion:
    """A new immutable version from a :func:`document_job` result, the batch pointing at it (caller commits
    both at once)."""
    number = batch.current_version + 1
    result, curves = document
    v = BatchVersion(batch_id=batch.id, version=number, overrides=overrides, summary=result["summary"],
                     result=result, curves=curves, reason=reason, created_by=user, created_at=utcnow())
    db.add(v)
    batch.current_version = number
    return v


def version(db: Session, batch: Batch, number: int | None = None) -> BatchVersion | None:
    number = number or batch.current_version
    if not number:
        return None
    return db.scalar(select(BatchVersion).where(BatchVersion.batch_id == batch.id, BatchVersion.version == number))


def versions(db: Session, batch: Batch) -> list[BatchVersion]:
    return list(db.scalars(select(BatchVersion).where(BatchVersion.batch_id == batch.id)
                           .order_by(BatchVersion.version)))


# ------------------------------------------------------------------------------------- review, sign-off

def call_choices(ruleset: RuleSet) -> list[str]:
    """The calls a reviewer may give a sample: the rule set's own (its table and default), 'review' excepted."""
    return sorted(({c.call for c in ruleset.calls} | {ruleset.default.call}) - {"review"})


def correct(db: Session, user: User, batch: Batch, changes: list[dict], reason: str) -> BatchVersion:
    """A reviewer's correction: overrides of sample calls (``{"sample", "call"}``; ``{"sample", "accept": True}``
    keeps the shown call and releases a sample held for review) or curve calls
    (``{"well", "target", "amplified"}``) on top of the current version's, analysed into a new version.
    A signed version stays as it was; the batch goes back to review until the new version is signed."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("correction", "a correction needs a reason", "say why the result is changed")
    if batch.status not in ("analysed", "signed"):
        raise InputError(f"batch {batch.id}", f"the batch is {batch.status}", "wait until the analysis is done")
    current = version(db, batch)
    base = job_for(db, batch)
    allowed = call_choices(base.ruleset)
    samples = {s["sample"]: s for s in current.result["samples"]}
    wells = {(w["well"], w["target"]) for w in current.result["wells"]}
    new = []
    for ch in changes:
        if "sample" in ch:
            if ch["sample"] not in samples:
                raise InputError("correction", f"no sample '{ch['sample']}' in this batch", "pick a sample of the batch")
            old = samples[ch["sample"]].get("final_call", "")
            field, subject = "call", ch["sample"]
            value = old if ch.get("accept") else str(ch.get("call", "")).strip()
            if not ch.get("accept") and value and value not in allowed:
                raise InputError("correction", f"'{value}' is not a call of this assay's rule set",
                                 "use one of: " + ", ".join(allowed))
        else:
            if (ch.get("well"), ch.get("target")) not in wells:
                raise InputError("correction", f"no curve {ch.get('well')}/{ch.get('target')} in this batch",
                                 "pick a well and target of the batch")
            field, subject, value, old = "amplified", f"{ch['well']}/{ch['target']}", str(ch["amplified"]).lower(), ""
            if value not in ("true", "false"):
                raise InputError("correction", "amplified must be true or false", "choose true or false")
        if not value:
            raise InputError("correction", "the new call is empty", "choose the new call")
        new.append({"time": utcnow().isoformat(), "user": user.username, "subject": subject, "field": field,
                    "old": str(old), "new": value, "reason": reason})
    if not new:
        raise InputError("correction", "nothing to change", "choose a sample and its new call")
    overrides = list(current.overrides or []) + new
    document = compute(document_job, dataclasses.replace(base, overrides=tuple(overrides)), db=db)
    before = {"version": current.version, "signed_by": current.signed_by, "status": batch.status}
    v = store_version(db, batch, document, user=user.username, reason=reason, overrides=overrides)
    batch.status = "analysed"
    db.flush()
    record(db, user=user, lab_id=batch.lab_id, action="correct", entity="batch", entity_id=batch.id,
           before=before, after={"version": v.version, "changes": new, "status": batch.status})
    return v


def sign(db: Session, user: User, batch: Batch, number: int, statement: str = "results reviewed and released"
         ) -> BatchVersion:
    """Sign the batch's current version (``number`` guards against signing a version the reviewer did not
    see); refused while samples still need review or when the run is invalid without a reason."""
    if batch.status != "analysed":
        raise InputError(f"batch {batch.id}", f"the batch is {batch.status}", "only an analysed batch is signed")
    v = version(db, batch)
    if v is None or v.version != number:
        raise InputError(f"batch {batch.id}", f"version {number} is not the current one ({batch.current_version})",
                         "reload the page and review the current version")
    pending = [s["sample"] for s in v.result["samples"] if s.get("status") == "review"]
    if pending:
        raise InputError(f"batch {batch.id}", f"{len(pending)} samples still need review ({', '.join(pending[:5])})",
                         "accept or correct each flagged sample first")
    v.signed_by, v.signed_at = user.username, utcnow()
    batch.status = "signed"
    db.flush()
    record(db, user=user, lab_id=batch.lab_id, action="sign", entity="batch", entity_id=batch.id,
           before={"status": "analysed", "version": v.version},
           after={"status": "signed", "version": v.version, "statement": statement,
                  "samples_sha256": hashlib.sha256(samples_csv(v).encode()).hexdigest()})
    return v


# ----------------------------------------------------------------------------------------------- exports

def samples_csv(v: BatchVersion) -> str:
    return pd.DataFrame(v.result["samples"]).to_csv(index=False, lineterminator="\n")


def report_html(db: Session, batch: Batch, v: BatchVersion) -> str:
    """The lab core's printable report of one version (analysed again: the same bytes give the same result)."""
    signoff = None
    if v.signed_by:
        signoff = lab_audit.Entry(seq=0, kind="sign", time=v.signed_at.isoformat(), user=v.signed_by, run_id="",
                                  subject="", field="results_sha256", old="",
                                  new=hashlib.sha256(samples_csv(v).encode()).hexdigest(),
                                  reason="results reviewed and released", prev="", hash="")
    return compute(report_job, job_for(db, batch, v.overrides), signoff, db=db)


def fhir_observations(batch: Batch, assay: Assay, v: BatchVersion, lab_name: str) -> dict:
    """An HL7 FHIR R4 Bundle (collection) of one Observation per patient sample, validated by fhir.resources."""
    from fhir.resources.R4B.bundle import Bundle

    coding = knowledge.lab_service()["fhir"]["values"]
    entries = []
    for s in v.result["samples"]:
        final = s.get("final_call") or s.get("call") or ""
        obs = {
            "resourceType": "Observation",
            "id": f"b{batch.id}-v{v.version}-{_slug(s['sample'])}",
            "identifier": [{"system": "urn:oligolab:sample", "value": f"{batch.id}/{s['sample']}"}],
            "status": "final" if v.signed_by else "preliminary",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory", "display": "Laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": assay.loinc_code,
                                 "display": assay.loinc_display}], "text": assay.name}
            if assay.loinc_code else {"text": assay.name},
            "specimen": {"display": str(s["sample"])},
            "performer": [{"display": lab_name}],
            "note": [{"text": f"{s.get('report', '')} (batch {batch.id} '{batch.name}', version {v.version})"}],
        }
        if v.signed_at:
            obs["issued"] = v.signed_at.isoformat()
        if final in coding:
            c = coding[final]
            obs["valueCodeableConcept"] = {"coding": [{"system": c["system"], "code": c["code"],
                                                       "display": c["display"]}], "text": final}
        else:
            obs["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                                   "code": "error", "display": "Error"}], "text": final or "no call"}
        entries.append({"fullUrl": f"urn:uuid:{_uuid(obs['id'])}", "resource": obs})
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries,
              "timestamp": (v.signed_at or v.created_at).isoformat()}
    return json.loads(Bundle.model_validate(bundle).model_dump_json(exclude_none=True))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in str(text))[:50]


def _uuid(text: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "oligolab:" + text))


def current_summaries(db: Session, rows: list[Batch]) -> dict[int, dict]:
    """Batch id -> summary of its current version, without loading the versions' results."""
    current = {(b.id, b.current_version) for b in rows if b.current_version}
    if not current:
        return {}
    q = select(BatchVersion.batch_id, BatchVersion.version, BatchVersion.summary).where(
        BatchVersion.batch_id.in_([bid for bid, _ in current]))
    return {bid: summary for bid, ver, summary in db.execute(q) if (bid, ver) in current}


def daily_summary(db: Session, lab_id: int, day: _dt.date) -> dict:
    """Batches uploaded on ``day`` (UTC) with their status, and the final calls of their current versions."""
    start = _dt.datetime.combine(day, _dt.time(0), _dt.timezone.utc)
    rows = list(db.scalars(select(Batch).where(Batch.lab_id == lab_id, Batch.created_at >= start,
                                               Batch.created_at < start + _dt.timedelta(days=1))
                           .order_by(Batch.id)))
    assays = {a.id: a.name for a in db.scalars(select(Assay).where(Assay.lab_id == lab_id))}
    per_assay: dict[str, dict] = {}
    status: dict[str, int] = {}
    summaries = current_summaries(db, rows)
    for b in rows:
        status[b.status] = status.get(b.status, 0) + 1
        if b.id not in summaries:
            continue
        counts = per_assay.setdefault(assays.get(b.assay_id, "?"), {"batches": 0, "samples": 0, "calls": {}})
        counts["batches"] += 1
        counts["samples"] += summaries[b.id].get("samples", 0)
        for call, n in summaries[b.id].get("calls", {}).items():
            counts["calls"][call] = counts["calls"].get(call, 0) + n
    return {"date": day.isoformat(), "batches": len(rows), "status": status, "assays": per_assay}
