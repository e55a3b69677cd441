"""The JSON API under ``/api`` (typed bodies in :mod:`.schemas`): sign-in, batches, corrections, sign-off,
exports, audit, summaries, administration. Bearer tokens from ``POST /api/login``; thin shells over the
service's modules."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .. import __version__
from . import accounts, analysis, audit, auth, exports, review, rulesets, schemas, summary, uploads, watch
from .db import Batch, Lab, User
from .web import (
    COOKIE,
    client_address,
    current,
    get_batch,
    get_db,
    get_version,
    lab_assays,
    need,
    parse_day,
    read_upload,
)

router = APIRouter(prefix="/api")
#: the printable report: a self-contained file with its own inline scripts, opened in a sandbox (its own
#: origin: no cookies, no requests to the service)
REPORT_CSP = (
    "sandbox allow-scripts allow-popups allow-modals; default-src 'none'; script-src 'unsafe-inline' "
    "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)
EXPORT_KINDS = ("csv", "html", "fhir.json", "fhir")


@router.get("/health")
def health(request: Request, db: Session = Depends(get_db)) -> dict:
    db.execute(text("SELECT 1"))
    queued = db.scalar(select(func.count()).select_from(Batch).where(Batch.status.in_(("queued", "running"))))
    return {"status": "ok", "database": request.app.state.engine.dialect.name, "queue": queued, "version": __version__}


@router.post("/login", response_model=None)
def login(request: Request, body: schemas.Login, db: Session = Depends(get_db)) -> Response | dict:
    try:
        got = auth.sign_in(db, body.username, body.password, client_address(request))
    except auth.Throttled as exc:
        return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})
    if got is None:
        return JSONResponse({"error": "wrong user name or password"}, status_code=401)
    token, sess = got
    db.commit()
    return {"token": token, "expires_at": sess.expires_at.isoformat()}


@router.post("/logout")
def logout(request: Request, who: tuple = Depends(current), db: Session = Depends(get_db)) -> dict:
    header = request.headers.get("authorization", "")
    auth.sign_out(db, header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE))
    db.commit()
    return {"signed_out": True}


@router.get("/me")
def me(user: User = Depends(need("view")), db: Session = Depends(get_db)) -> dict:
    lab = db.get(Lab, user.lab_id)
    assert lab is not None  # a foreign key
    return {"username": user.username, "role": user.role, "lab": lab.name}


@router.post("/me/password")
def change_password(
    request: Request, body: schemas.PasswordChange, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> dict:
    accounts.change_password(db, user, body.current, body.new, keep_session=request.state.session.token_sha256)
    db.commit()
    return {"changed": True}


@router.get("/assays")
def assays(user: User = Depends(need("view")), db: Session = Depends(get_db)) -> list[dict]:
    return [rulesets.assay_dict(a) for a in lab_assays(db, user)]


@router.post("/batches", status_code=201)
async def upload(
    assay_id: int = Form(...),
    name: str = Form(""),
    run_file: UploadFile | None = File(None),
    plate_map: UploadFile | None = File(None),
    user: User = Depends(need("upload")),
    db: Session = Depends(get_db),
) -> dict:
    """Upload a run file (and its plate map) as a new batch; ``duplicate_of`` names earlier batches of the same
    run file."""
    run_name, run_bytes = await read_upload(run_file)
    map_name, map_bytes = await read_upload(plate_map)
    b = await run_in_threadpool(
        uploads.create_batch,
        db,
        user,
        assay_id=assay_id,
        name=name,
        run_name=run_name,
        run_bytes=run_bytes,
        map_name=map_name,
        map_bytes=map_bytes or None,
    )
    await run_in_threadpool(db.commit)
    same = uploads.duplicates(db, b)
    out: dict = {"id": b.id, "status": b.status, "url": f"/batches/{b.id}", "duplicate_of": same}
    if same:
        out["warning"] = f"the same run file (SHA-256 {b.run_sha256[:12]}…) was uploaded before as batch " + ", ".join(
            map(str, same)
        )
    return out


def batch_json(db: Session, b: Batch, detail: bool = False) -> dict:
    out = {
        "id": b.id,
        "name": b.name,
        "assay_id": b.assay_id,
        "status": b.status,
        "progress": b.progress,
        "error": b.error,
        "version": b.current_version,
        "created_by": b.created_by,
        "created_at": b.created_at.isoformat(),
        "run_file": b.run_filename,
        "run_sha256": b.run_sha256,
    }
    if detail and b.current_version:
        v = analysis.version(db, b)
        assert v is not None  # the batch has a current version
        out["result"] = {k: v.result[k] for k in ("summary", "valid", "problems", "samples", "controls")}
        out["signed_by"], out["signed_at"] = v.signed_by, v.signed_at.isoformat() if v.signed_at else None
    return out


@router.get("/batches")
def batches(limit: int = 100, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> list[dict]:
    rows = db.scalars(
        select(Batch).where(Batch.lab_id == user.lab_id).order_by(Batch.id.desc()).limit(min(max(limit, 1), 1000))
    )
    return [batch_json(db, b) for b in rows]


@router.get("/batches/{batch_id}")
def batch(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> dict:
    return batch_json(db, get_batch(db, user, batch_id), detail=True)


@router.get("/batches/{batch_id}/versions")
def versions(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> list[dict]:
    b = get_batch(db, user, batch_id)
    return [
        {
            "version": v.version,
            "created_by": v.created_by,
            "created_at": v.created_at.isoformat(),
            "reason": v.reason,
            "signed_by": v.signed_by,
            "signed_at": v.signed_at.isoformat() if v.signed_at else None,
            "overrides": v.overrides,
            "ruleset_sha256": v.ruleset_sha256,
            "content_sha256": v.content_sha256,
            "calls": v.summary.get("calls", {}),
        }
        for v in analysis.versions(db, b)
    ]


@router.post("/batches/{batch_id}/corrections")
def correct(
    batch_id: int, body: schemas.Correction, user: User = Depends(need("review")), db: Session = Depends(get_db)
) -> dict:
    b = get_batch(db, user, batch_id)
    v = review.correct(db, user, b, body.changes, body.reason)
    db.commit()
    return {"version": v.version, "status": b.status}


@router.post("/batches/{batch_id}/sign")
def sign(batch_id: int, body: schemas.Sign, user: User = Depends(need("sign")), db: Session = Depends(get_db)) -> dict:
    b = get_batch(db, user, batch_id)
    v = review.sign(db, user, b, body.version, reason=body.reason)
    db.commit()
    return {"version": v.version, "status": b.status, "signed_by": v.signed_by}


def export_response(db: Session, user: User, batch_id: int, kind: str, number: int | None) -> Response:
    """One export of a stored version (the API's and the pages' export links)."""
    if kind not in EXPORT_KINDS:
        raise HTTPException(404, "exports: csv, html, fhir.json")
    b = get_batch(db, user, batch_id)
    v = get_version(db, b, number)
    stem = f"batch-{b.id}-v{v.version}"
    if kind == "csv":
        return Response(
            exports.samples_csv(db, b, v),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    if kind == "html":
        return HTMLResponse(
            exports.report_html(db, b, v),
            headers={"Content-Security-Policy": REPORT_CSP, "Content-Disposition": f'inline; filename="{stem}.html"'},
        )
    return Response(
        exports.fhir_json(db, b, v),
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{stem}-fhir.json"'},
    )


@router.get("/batches/{batch_id}/export.{kind}")
def export(
    batch_id: int,
    kind: str,
    version: int | None = None,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> Response:
    return export_response(db, user, batch_id, kind, version)


def audit_response(db: Session, user: User, batch: int | None, as_csv: bool) -> Response | list[dict]:
    rows = audit.audit_rows(db, user.lab_id, entity="batch" if batch else None, entity_id=str(batch) if batch else None)
    if as_csv:
        return PlainTextResponse(
            audit.audit_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return [
        {
            "id": r.id,
            "seq": r.seq,
            "at": r.at.isoformat(),
            "user": r.username,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "before": r.before,
            "after": r.after,
        }
        for r in rows
    ]


@router.get("/audit", response_model=None)
def audit_events(
    format: str = "json", batch: int | None = None, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> Response | list[dict]:
    return audit_response(db, user, batch, format == "csv")


@router.get("/summary/daily")
def daily(day: str | None = None, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> dict:
    return summary.daily_summary(db, user.lab_id, parse_day(day))


@router.get("/watch")
def assay_watch(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> dict:
    res = watch.latest(db, request.app.state.settings.watch_inputs)
    return {
        "checked_at": res.created_at.isoformat() if res else None,
        "genomes": res.genomes if res else None,
        "assays": {a.name: watch.for_assay(res, a.watch_assays) for a in lab_assays(db, user)},
    }


# ------------------------------------------------------------------------------------------ administration


@router.post("/users", status_code=201)
def add_user(body: schemas.NewUser, user: User = Depends(need("admin")), db: Session = Depends(get_db)) -> dict:
    u = accounts.add_user(db, user, body.username, body.password, body.role, body.full_name)
    db.commit()
    return {"username": u.username, "role": u.role}


@router.post("/users/{username}")
def update_user(
    username: str, body: schemas.UserChange, user: User = Depends(need("admin")), db: Session = Depends(get_db)
) -> dict:
    u = accounts.update_user(
        db, user, username, role=body.role or None, active=body.active, password=body.password or None
    )
    db.commit()
    return {"username": u.username, "role": u.role, "active": u.active}


@router.post("/labs", status_code=201)
def create_lab(body: schemas.NewLab, user: User = Depends(need("admin")), db: Session = Depends(get_db)) -> dict:
    lab = accounts.create_lab(db, user, body.name, body.admin_username, body.admin_password)
    db.commit()
    return {"id": lab.id, "name": lab.name}


@router.post("/lab")
def lab_settings(body: schemas.LabSettings, user: User = Depends(need("admin")), db: Session = Depends(get_db)) -> dict:
    lab = accounts.set_lab_settings(db, user, body.four_eyes)
    db.commit()
    return {"name": lab.name, "four_eyes": lab.four_eyes}


@router.post("/assays", status_code=201)
def add_assay(body: schemas.NewAssay, user: User = Depends(need("admin")), db: Session = Depends(get_db)) -> dict:
    a = rulesets.save_assay(db, user, body.name, body.ruleset, body.watch_assays, body.loinc_code, body.loinc_display)
    db.commit()
    return rulesets.assay_dict(a)


@router.post("/rulesets", status_code=201)
def add_ruleset(body: schemas.NewRuleSet, user: User = Depends(need("admin")), db: Session = Depends(get_db)) -> dict:
    row = rulesets.save_ruleset(db, user, body.name, body.yaml)
    db.commit()
    return {"name": row.name, "sha256": row.sha256}
