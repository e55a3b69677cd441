"""The server-rendered pages of the bench: sign-in, the batch list and upload, a batch with its plate, review
and sign-off forms, a sample's curves, exports, the audit trail, the daily summary, the guide and the account
page. Thin shells over the service's modules; every form carries the session's CSRF token."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import accounts, analysis, audit, auth, review, rulesets, summary, uploads, views, watch
from .api import audit_response, export_response
from .db import Assay, Batch, User
from .web import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    check_csrf,
    client_address,
    form_result,
    get_batch,
    get_db,
    get_version,
    lab_assays,
    local_path,
    need,
    page,
    parse_day,
    q,
    read_upload,
)

router = APIRouter(include_in_schema=False)
#: batches per page of the batch list (a busy lab runs a few dozen plates a day)
PAGE_ROWS = 50
#: shipped real runs offered by the walkthrough (file, plate map, assay)
GUIDE_FILES = {
    "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt": (
        "qpcr/Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"
    ),
    "lc480_cdc_platemap.csv": "qpcr/exports/lc480_cdc_platemap.csv",
}
DATA_DIR = Path(__file__).resolve().parents[3] / "data"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", error: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    resp = page(request, "login.html", None, next=local_path(next), login_csrf=token, error=error)
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.settings.secure_cookies
    )
    return resp


@router.post("/login")
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    login_csrf: str = Form(""),
    db: Session = Depends(get_db),
) -> RedirectResponse:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, login_csrf):
        return RedirectResponse("/login?error=The+sign-in+form+expired%2C+please+try+again", status_code=303)
    try:
        got = auth.sign_in(db, username, password, client_address(request))
    except auth.Throttled as exc:
        return RedirectResponse(f"/login?next={local_path(next)}&error={q(str(exc).capitalize())}", status_code=303)
    if got is None:
        return RedirectResponse(f"/login?next={local_path(next)}&error=Wrong+user+name+or+password", status_code=303)
    token, _sess = got
    db.commit()
    resp = RedirectResponse(local_path(next), status_code=303)
    resp.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
        max_age=auth.SESSION_HOURS * 3600,
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout")
async def logout(
    request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> RedirectResponse:
    await check_csrf(request)
    auth.sign_out(db, request.cookies.get(COOKIE))
    db.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    error: str = "",
    before: int | None = None,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> HTMLResponse:
    query = select(Batch).where(Batch.lab_id == user.lab_id)
    if before:
        query = query.where(Batch.id < before)
    rows = list(db.scalars(query.order_by(Batch.id.desc()).limit(PAGE_ROWS)))
    assays = lab_assays(db, user)
    res = watch.latest(db, request.app.state.settings.watch_inputs)
    calls = {bid: s.get("calls", {}) for bid, s in summary.current_summaries(db, rows).items()}
    return page(
        request,
        "batches.html",
        user,
        batches=rows,
        assays={a.id: a for a in assays},
        watch={a.id: watch.for_assay(res, a.watch_assays) for a in assays},
        watch_result=res,
        calls=calls,
        error=error,
        max_mb=uploads.MAX_UPLOAD_BYTES >> 20,
        older=rows[-1].id if len(rows) == PAGE_ROWS else None,
    )


@router.post("/batches")
async def upload_page(
    request: Request,
    assay_id: int = Form(0),
    name: str = Form(""),
    run_file: UploadFile | None = File(None),
    plate_map: UploadFile | None = File(None),
    user: User = Depends(need("upload")),
    db: Session = Depends(get_db),
) -> RedirectResponse:
    await check_csrf(request)
    run_name, run_bytes = await read_upload(run_file)
    map_name, map_bytes = await read_upload(plate_map)
    return await run_in_threadpool(
        form_result,
        db,
        lambda: uploads.create_batch(
            db,
            user,
            assay_id=assay_id,
            name=name,
            run_name=run_name,
            run_bytes=run_bytes,
            map_name=map_name,
            map_bytes=map_bytes or None,
        ),
        "/batches/{result.id}",
        "/",
    )


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request,
    batch_id: int,
    version: int | None = None,
    error: str = "",
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> HTMLResponse:
    b = get_batch(db, user, batch_id)
    assay = db.get(Assay, b.assay_id)
    assert assay is not None  # a foreign key
    v = analysis.version(db, b, version) if b.current_version else None
    res = watch.latest(db, request.app.state.settings.watch_inputs)
    return page(
        request,
        "batch.html",
        user,
        b=b,
        assay=assay,
        v=v,
        versions=analysis.versions(db, b),
        duplicates=uploads.duplicates(db, b),
        held=review.held_groups(v.result["samples"]) if v else [],
        plate=views.plate_grid(v.result) if v else None,
        error=error,
        audit=audit.audit_rows(db, user.lab_id, entity="batch", entity_id=str(b.id)),
        watch=watch.for_assay(res, assay.watch_assays),
        can_review=auth.can(user, "review"),
        calls=rulesets.call_choices(analysis.version_ruleset(db, b, v)) if v else [],
    )


@router.get("/batches/{batch_id}/status")
def batch_status(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> dict:
    b = get_batch(db, user, batch_id)
    return {"status": b.status, "progress": b.progress, "error": b.error, "version": b.current_version}


@router.get("/batches/{batch_id}/sample", response_class=HTMLResponse)
def sample_query_page(
    request: Request,
    batch_id: int,
    id: str,
    version: int | None = None,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> HTMLResponse:
    """A sample's page; the id as a query parameter, so any sample id (with '/', '?', '..') works."""
    return sample_page(request, batch_id, id, version, user, db)


@router.get("/batches/{batch_id}/samples/{sample:path}", response_class=HTMLResponse)
def sample_page(
    request: Request,
    batch_id: int,
    sample: str,
    version: int | None = None,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> HTMLResponse:
    b = get_batch(db, user, batch_id)
    v = get_version(db, b, version)
    s = next((s for s in v.result["samples"] if str(s["sample"]) == sample), None)
    wells = [w for w in v.result["wells"] if str(w["sample"]) == sample]
    if s is None and not wells:
        raise HTTPException(404, "no such sample in this batch")
    return page(
        request,
        "sample.html",
        user,
        b=b,
        v=v,
        s=s,
        wells=wells,
        sample=sample,
        chart=json.dumps(views.curve_chart(v.result, v.curves, wells), allow_nan=False),
        can_review=auth.can(user, "review"),
        calls=rulesets.call_choices(analysis.version_ruleset(db, b, v)),
    )


@router.post("/batches/{batch_id}/correct")
async def correct_page(
    request: Request, batch_id: int, user: User = Depends(need("review")), db: Session = Depends(get_db)
) -> RedirectResponse:
    await check_csrf(request)
    form = await request.form()
    b = get_batch(db, user, batch_id)
    changes: list[dict] = [{"sample": str(name), "accept": True} for name in form.getlist("accept")]
    if form.get("accept_held_for") is not None:
        changes.append({"accept_held_for": str(form["accept_held_for"])})
    if form.get("sample"):
        changes.append({"sample": str(form["sample"]), "call": str(form.get("call", ""))})
    if form.get("well"):
        changes.append(
            {
                "well": str(form["well"]),
                "target": str(form.get("target", "")),
                "amplified": str(form.get("amplified", "")),
            }
        )
    reason = str(form.get("reason", ""))
    return await run_in_threadpool(
        form_result, db, lambda: review.correct(db, user, b, changes, reason), f"/batches/{b.id}", f"/batches/{b.id}"
    )


@router.post("/batches/{batch_id}/sign")
async def sign_page(
    request: Request,
    batch_id: int,
    version: int = Form(0),
    reason: str = Form(""),
    user: User = Depends(need("sign")),
    db: Session = Depends(get_db),
) -> RedirectResponse:
    await check_csrf(request)
    b = get_batch(db, user, batch_id)
    return await run_in_threadpool(
        form_result,
        db,
        lambda: review.sign(db, user, b, version, reason=reason),
        f"/batches/{b.id}",
        f"/batches/{b.id}",
    )


@router.get("/batches/{batch_id}/export.{kind}")
def export_page(
    batch_id: int,
    kind: str,
    version: int | None = None,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
) -> Response:
    return export_response(db, user, batch_id, kind, version)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> HTMLResponse:
    return page(request, "audit.html", user, rows=audit.audit_rows(db, user.lab_id, limit=500))


@router.get("/audit.csv", response_model=None)
def audit_csv(
    batch: int | None = None, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> Response | list[dict]:
    return audit_response(db, user, batch, True)


@router.get("/summary", response_class=HTMLResponse)
def summary_page(
    request: Request, day: str | None = None, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> HTMLResponse:
    return page(request, "summary.html", user, s=summary.daily_summary(db, user.lab_id, parse_day(day)))


@router.get("/guide", response_class=HTMLResponse)
def guide_page(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)) -> HTMLResponse:
    return page(request, "guide.html", user, assays=lab_assays(db, user), files=GUIDE_FILES)


@router.get("/guide/files/{name}")
def guide_file(name: str, user: User = Depends(need("view"))) -> Response:
    if name not in GUIDE_FILES or not (DATA_DIR / GUIDE_FILES[name]).exists():
        raise HTTPException(404, "no such example file")
    return Response(
        (DATA_DIR / GUIDE_FILES[name]).read_bytes(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, error: str = "", done: str = "", user: User = Depends(need("view"))) -> HTMLResponse:
    return page(request, "account.html", user, error=error, done=done)


@router.post("/account/password")
async def account_password(
    request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)
) -> RedirectResponse:
    await check_csrf(request)
    form = await request.form()
    keep = request.state.session.token_sha256
    return await run_in_threadpool(
        form_result,
        db,
        lambda: accounts.change_password(
            db, user, str(form.get("current", "")), str(form.get("new", "")), keep_session=keep
        ),
        "/account?done=1",
        "/account",
    )
