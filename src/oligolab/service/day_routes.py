"""Pages of the lab's day: specimens (accessioning, search, labels, retests), worklists, release to the clinic
with the delivery log, the per-patient printout, QC over time, training and the lab/user settings.

The pages use the service's shared plumbing (:mod:`.web`: sign-in, roles, CSRF, page rendering);
:func:`install` adds them to the app, gives every template the translations and the lab's time zone,
and runs the delivery loop with the
app. Page texts go through :mod:`.i18n`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InputError
from ..lab import qc_trend as qt
from . import auth, clinic, i18n, labels, labtext, qcview, specimens, training, worklists
from .day_db import Delivery, DeliveryAttempt, Endpoint, Order, Patient, QcLimit, Specimen, Worklist
from .db import Assay, Batch, LoginSession, User
from .web import TEMPLATES, check_csrf, form_result, get_batch, get_db, need, page, read_upload

router = APIRouter(include_in_schema=False)

_ = i18n.gettext


@dataclass(frozen=True)
class Here:
    """The request's lab settings as pages use them."""

    zone: str
    language: str
    training: bool


def here(db: Session, user: User | None, accept: str = "", cookie: str = "") -> Here:
    """The lab's zone and training mode and the user's language, activated for this request."""
    if user is None:
        lang = i18n.choose_language(cookie or None, None, accept)
        i18n.activate(lang)
        return Here(i18n.DEFAULT_ZONE, lang, False)
    lab = specimens.lab_settings(db, user.lab_id)
    lang = i18n.choose_language(specimens.user_language(db, user.id) or None, lab.language, accept)
    i18n.activate(lang)
    return Here(lab.timezone, lang, lab.training)


def page_context(request: Request) -> dict:
    """Template context of every page: language (activated), lab zone and training mode of the signed-in user
    (a Jinja2 context processor; the request's own app's database)."""
    with request.app.state.factory() as db:
        user_id = session_user_id(db, getattr(request.state, "session", None))
        user = db.get(User, user_id) if user_id is not None else None
        h = here(db, user, request.headers.get("accept-language", ""), request.cookies.get(LANG_COOKIE, ""))
    return {"zone": h.zone, "lang": h.language, "training_mode": h.training}


def session_user_id(db: Session, sess: LoginSession | None) -> int | None:
    """The user of a request's sign-in session, also when the request's own database session was rolled back
    and closed (an error page after a failed write): looked up again by the session's key."""
    if sess is None:
        return None
    from sqlalchemy import inspect
    from sqlalchemy.orm.exc import DetachedInstanceError

    try:
        return sess.user_id
    except DetachedInstanceError:
        key = inspect(sess).identity
        row = db.get(LoginSession, key[0]) if key else None
        return row.user_id if row is not None else None


LANG_COOKIE = "oligolab_lang"


def _lifespan_with_deliveries(app: FastAPI, factory) -> None:
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI):
        async with inner(a) as state:
            loop = clinic.DeliveryLoop(factory)
            if a.state.settings.start_worker:
                loop.start()
            try:
                yield state
            finally:
                loop.stop()

    app.router.lifespan_context = lifespan


def install(app: FastAPI) -> None:
    """Add the day's pages to ``app``, translations to the templates and the delivery loop to its lifespan."""
    templates = TEMPLATES
    if page_context not in templates.context_processors:  # the templates are shared by every app
        i18n.install(templates.env)
        templates.context_processors.append(page_context)
        templates.env.globals["day_batch_panel"] = lambda request, b: batch_panel(request.app.state.factory, b)
        templates.env.globals["day_summary_panel"] = summary_panel
        templates.env.globals["rule_text"] = labtext.shown
        templates.env.globals["lab_text"] = labtext.translate
        templates.env.globals["flags_text"] = labtext.flags_text
    _lifespan_with_deliveries(app, app.state.factory)
    app.include_router(router)


def batch_panel(factory, b: Batch) -> dict:
    """Westgard flags and the worklist of a batch, for its page."""
    with factory() as db:
        status, flags = qcview.batch_flags(db, b) if b.current_version else ("ok", [])
        wl = worklists.for_batch(db, b.id)
        return {
            "status": status,
            "flags": [(f.rule, qcview.rule_text(f.rule), qcview.flag_text(f)) for f in flags],
            "worklist": wl.id if wl else None,
            "lot": wl.reagent_lot if wl else "",
        }


def summary_panel(request: Request, day: str) -> list[tuple[Batch, str, list[str]]]:
    """The Westgard status and rules of each analysed batch of the summary's day (UTC, as the summary counts)."""
    import datetime as _dt

    start = _dt.datetime.combine(_dt.date.fromisoformat(day), _dt.time(0), _dt.UTC)
    with request.app.state.factory() as db:
        user_id = session_user_id(db, getattr(request.state, "session", None))
        if user_id is None:
            return []
        user = db.get(User, user_id)
        batches = list(
            db.scalars(
                select(Batch)
                .where(
                    Batch.lab_id == user.lab_id,
                    Batch.current_version > 0,
                    Batch.created_at >= start,
                    Batch.created_at < start + _dt.timedelta(days=1),
                )
                .order_by(Batch.id)
            )
        )
        data = {a: qcview.qc_data(db, user.lab_id, a) for a in {b.assay_id for b in batches}}  # once per assay
        out = []
        for b in batches:
            mine = [f for f in data[b.assay_id].flags if f.run == str(b.id)]
            out.append((b, qt.run_status(mine, str(b.id)), sorted({f.rule for f in mine})))
        return out


def _assays(db: Session, user: User) -> list[Assay]:
    return list(db.scalars(select(Assay).where(Assay.lab_id == user.lab_id, Assay.active.is_(True)).order_by(Assay.id)))


# ------------------------------------------------------------------------------------------------ specimens


@router.get("/specimens", response_class=HTMLResponse)
def specimens_page(
    request: Request,
    q: str = "",
    error: str = "",
    done: int = 0,
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
):
    h = here(db, user, request.headers.get("accept-language", ""))
    found = specimens.search(db, user.lab_id, q, limit=50)
    waiting = specimens.waiting_count(db, user.lab_id)
    return page(
        request,
        "specimens.html",
        user,
        found=found,
        q=q,
        error=error,
        done=done,
        here=h,
        assays=_assays(db, user),
        waiting=waiting,
        sexes=("unknown", "female", "male", "other"),
    )


@router.post("/specimens/import")
async def import_page(
    request: Request,
    assay_id: int = Form(0),
    file: UploadFile | None = File(None),
    user: User = Depends(need("upload")),
    db: Session = Depends(get_db),
):
    await check_csrf(request)
    name, data = await read_upload(file)

    def act():
        here(db, user, request.headers.get("accept-language", ""))
        if not data:
            raise InputError(name or "file", _("no file was chosen"), _("choose the CSV list or FHIR bundle"))
        return len(specimens.accession_file(db, user, name, data, default_assay=assay_id or None))

    return await run_in_threadpool(form_result, db, act, "/specimens?done={result}", "/specimens")


@router.post("/specimens/new")
async def new_specimen(request: Request, user: User = Depends(need("upload")), db: Session = Depends(get_db)):
    await check_csrf(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    return await run_in_threadpool(
        form_result, db, lambda: len(specimens.accession_form(db, user, form)), "/specimens?done={result}", "/specimens"
    )


@router.get("/specimen", response_class=HTMLResponse)
def specimen_page(
    request: Request, id: str, error: str = "", user: User = Depends(need("view")), db: Session = Depends(get_db)
):
    h = here(db, user, request.headers.get("accept-language", ""))
    found = specimens.get_specimen(db, user.lab_id, id)
    if found is None:
        raise HTTPException(404, "no such specimen")
    rows = []
    versions: dict = {}
    for o in found.orders:
        b, sample = specimens.sample_of(db, o, found.specimen.specimen_id, versions)
        rows.append({"order": o, "batch": b, "sample": sample, "worklist": o.worklist_id})
    return page(
        request,
        "specimen.html",
        user,
        f=found,
        rows=rows,
        here=h,
        error=error,
        assays={a.id: a for a in _assays(db, user)},
        can_review=auth.can(user, "review"),
    )


@router.post("/orders/{order_id}/retest")
async def retest_page(
    request: Request,
    order_id: int,
    reason: str = Form(""),
    user: User = Depends(need("review")),
    db: Session = Depends(get_db),
):
    await check_csrf(request)
    o = db.get(Order, order_id)
    if o is None or o.lab_id != user.lab_id:
        raise HTTPException(404, "no such order")
    specimen = db.get(Specimen, o.specimen_pk)
    assert specimen is not None  # a foreign key
    sid = specimen.specimen_id
    back = f"/specimen?id={i18n_quote(sid)}"
    return await run_in_threadpool(form_result, db, lambda: specimens.retest(db, user, o, reason), back, back)


@router.get("/labels", response_class=HTMLResponse)
def labels_page(
    request: Request,
    worklist: int | None = None,
    ids: str = "",
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
):
    h = here(db, user, request.headers.get("accept-language", ""))
    q = (
        select(Specimen, Patient, Order)
        .join(Patient, Patient.id == Specimen.patient_pk)
        .join(Order, Order.specimen_pk == Specimen.id)
        .where(Specimen.lab_id == user.lab_id)
    )
    if worklist:
        q = q.where(Order.worklist_id == worklist)
    else:
        wanted = [x.strip() for x in ids.split(",") if x.strip()]
        q = q.where(Specimen.specimen_id.in_(wanted)) if wanted else q.where(Order.status == "waiting")
    assays = {a.id: a.name for a in _assays(db, user)}
    seen, items = set(), []
    for s, pt, o in db.execute(q.order_by(Specimen.collected_at, Specimen.id)):
        if s.id not in seen:
            seen.add(s.id)
            items.append(
                labels.Label(
                    s.specimen_id,
                    pt.name or pt.pseudonym or pt.patient_id,
                    i18n.format_datetime(s.collected_at, h.zone),
                    assays.get(o.assay_id, ""),
                    labels.code128_svg(s.specimen_id),
                )
            )
    return page(
        request,
        "labels.html",
        user,
        pages=labels.sheets(items),
        n=len(items),
        sheet=labels.SHEET,
        worklist=worklist,
        here=h,
    )


def specimens_now():
    from .db import utcnow

    return utcnow()


def i18n_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


# ------------------------------------------------------------------------------------------------ worklists


@router.get("/worklists", response_class=HTMLResponse)
def worklists_page(
    request: Request, error: str = "", user: User = Depends(need("view")), db: Session = Depends(get_db)
):
    h = here(db, user, request.headers.get("accept-language", ""))
    assays = _assays(db, user)
    waiting = {a.id: specimens.waiting_count(db, user.lab_id, a.id) for a in assays}
    recent = list(
        db.scalars(select(Worklist).where(Worklist.lab_id == user.lab_id).order_by(Worklist.id.desc()).limit(30))
    )
    return page(
        request,
        "worklists.html",
        user,
        assays=assays,
        waiting=waiting,
        recent=recent,
        error=error,
        here=h,
        names={a.id: a.name for a in assays},
    )


@router.post("/worklists")
async def new_worklist(
    request: Request,
    assay_id: int = Form(0),
    plate: int = Form(96),
    multiplex: str = Form(""),
    dyes: str = Form(""),
    reagent_lot: str = Form(""),
    user: User = Depends(need("upload")),
    db: Session = Depends(get_db),
):
    await check_csrf(request)
    return await run_in_threadpool(
        form_result,
        db,
        lambda: (
            worklists.create(
                db, user, assay_id=assay_id, plate=plate, multiplex=bool(multiplex), dyes=dyes, reagent_lot=reagent_lot
            ).id
        ),
        "/worklists/{result}",
        "/worklists",
    )


def get_worklist(db: Session, user: User, worklist_id: int) -> Worklist:
    wl = db.get(Worklist, worklist_id)
    if wl is None or wl.lab_id != user.lab_id:
        raise HTTPException(404, "no such worklist")
    return wl


@router.get("/worklists/{worklist_id}", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    worklist_id: int,
    error: str = "",
    user: User = Depends(need("view")),
    db: Session = Depends(get_db),
):
    h = here(db, user, request.headers.get("accept-language", ""))
    wl = get_worklist(db, user, worklist_id)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(wl.plate_map)))
    return page(
        request,
        "worklist.html",
        user,
        wl=wl,
        grid=_grid(rows, wl.plate),
        here=h,
        error=error,
        orders=worklists.orders_of(db, wl),
        assay=db.get(Assay, wl.assay_id),
        batch=db.get(Batch, wl.batch_id) if wl.batch_id else None,
    )


@router.get("/worklists/{worklist_id}/platemap.csv")
def worklist_map(worklist_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)):
    wl = get_worklist(db, user, worklist_id)
    return Response(
        wl.plate_map,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="worklist-{wl.id}-platemap.csv"'},
    )


@router.post("/worklists/{worklist_id}/run")
async def worklist_run(
    request: Request,
    worklist_id: int,
    run_file: UploadFile | None = File(None),
    name: str = Form(""),
    user: User = Depends(need("upload")),
    db: Session = Depends(get_db),
):
    await check_csrf(request)
    wl = get_worklist(db, user, worklist_id)
    run_name, run_bytes = await read_upload(run_file)
    accept = request.headers.get("accept-language", "")

    def act():
        here(db, user, accept)  # the default batch name is in the user's language
        return worklists.upload_run(db, user, wl, run_name, run_bytes, name).id

    return await run_in_threadpool(form_result, db, act, "/batches/{result}", f"/worklists/{wl.id}")


def _grid(rows: list[dict], plate: int) -> dict:
    """The worklist's plate as rows x columns of (sample, role) for its page."""
    from ..lab.worklist import PLATES

    n_rows, n_cols = PLATES[plate]
    cells: dict[str, dict] = {}
    for r in rows:
        if r["role"] != "empty":
            c = cells.setdefault(r["well"], {"sample": r["sample"], "role": r["role"], "targets": []})
            c["targets"].append(r["target"])
    letters = "ABCDEFGHIJKLMNOP"[:n_rows]
    return {
        "columns": list(range(1, n_cols + 1)),
        "rows": [
            {
                "row": x,
                "cells": [
                    {"well": f"{x}{c}", **cells.get(f"{x}{c}", {"sample": "", "role": "empty", "targets": []})}
                    for c in range(1, n_cols + 1)
                ],
            }
            for x in letters
        ],
    }


# -------------------------------------------------------------------------------------------------- release


@router.get("/release", response_class=HTMLResponse)
def release_page(
    request: Request, error: str = "", done: str = "", user: User = Depends(need("view")), db: Session = Depends(get_db)
):
    h = here(db, user, request.headers.get("accept-language", ""))
    pending = db.execute(
        select(Order.batch_id, Order.id).where(Order.lab_id == user.lab_id, Order.status == "measured")
    ).all()
    per_batch: dict[int, int] = {}
    for bid, _oid in pending:
        assert bid is not None  # a measured order names its batch
        per_batch[bid] = per_batch.get(bid, 0) + 1
    batches = [db.get(Batch, bid) for bid in sorted(per_batch)]
    deliveries = list(
        db.scalars(select(Delivery).where(Delivery.lab_id == user.lab_id).order_by(Delivery.id.desc()).limit(100))
    )
    attempts: dict[int, list] = {}
    if deliveries:
        for a in db.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.id)
        ):
            attempts.setdefault(a.delivery_id, []).append(a)
    endpoints = {e.id: e for e in db.scalars(select(Endpoint).where(Endpoint.lab_id == user.lab_id))}
    return page(
        request,
        "release.html",
        user,
        batches=batches,
        per_batch=per_batch,
        deliveries=deliveries,
        attempts=attempts,
        endpoints=endpoints,
        error=error,
        done=done,
        here=h,
    )


@router.post("/release/{batch_id}")
async def release_submit(
    request: Request,
    batch_id: int,
    qc_reason: str = Form(""),
    user: User = Depends(need("sign")),
    db: Session = Depends(get_db),
):
    await check_csrf(request)
    b = get_batch(db, user, batch_id)

    def act():
        here(db, user, request.headers.get("accept-language", ""))
        n = clinic.release_batch(db, user, b, qc_reason)
        return f"{n['released']}-{n['retests']}-{n['deliveries']}"

    return await run_in_threadpool(form_result, db, act, "/release?done={result}", "/release")


@router.post("/deliveries/{delivery_id}/resend")
async def resend(request: Request, delivery_id: int, user: User = Depends(need("sign")), db: Session = Depends(get_db)):
    await check_csrf(request)
    d = db.get(Delivery, delivery_id)
    if d is None or d.lab_id != user.lab_id:
        raise HTTPException(404, "no such delivery")
    return await run_in_threadpool(form_result, db, lambda: clinic.resend(db, user, d), "/release", "/release")


@router.get("/patients/{patient_pk}/report", response_class=HTMLResponse)
def patient_report(
    request: Request, patient_pk: int, user: User = Depends(need("view")), db: Session = Depends(get_db)
):
    pt = db.get(Patient, patient_pk)
    if pt is None or pt.lab_id != user.lab_id:
        raise HTTPException(404, "no such patient")
    lab = specimens.lab_settings(db, user.lab_id)
    i18n.activate(lab.language)  # the printout is in the lab's language, whoever prints it
    h = Here(lab.timezone, lab.language, lab.training)
    rows: list[dict] = []
    versions: dict = {}
    taken = list(db.scalars(select(Specimen).where(Specimen.patient_pk == pt.id).order_by(Specimen.collected_at)))
    orders: dict[int, list[Order]] = {}
    for o in db.scalars(select(Order).where(Order.specimen_pk.in_([s.id for s in taken])).order_by(Order.id)):
        orders.setdefault(o.specimen_pk, []).append(o)
    batch_ids = {o.batch_id for os in orders.values() for o in os if o.batch_id}
    _loaded = list(db.scalars(select(Batch).where(Batch.id.in_(batch_ids))))  # one read; sample_of finds them
    assays = {a.id: a for a in db.scalars(select(Assay).where(Assay.lab_id == pt.lab_id))}
    for s in taken:
        for o in orders.get(s.id, []):
            b, sample = specimens.sample_of(db, o, s.specimen_id, versions)
            rows.append({"specimen": s, "order": o, "batch": b, "sample": sample, "assay": assays.get(o.assay_id)})
    from .db import Lab

    return page(
        request,
        "patient_report.html",
        user,
        pt=pt,
        rows=rows,
        here=h,
        lab=db.get(Lab, pt.lab_id),
        settings=lab,
        now=specimens_now(),
    )


# --------------------------------------------------------------------------------------------- QC, training


@router.get("/qc", response_class=HTMLResponse)
def qc_page(request: Request, assay: int = 0, user: User = Depends(need("view")), db: Session = Depends(get_db)):
    h = here(db, user, request.headers.get("accept-language", ""))
    assays = _assays(db, user)
    chosen = next((a for a in assays if a.id == assay), assays[0] if assays else None)
    data = qcview.qc_data(db, user.lab_id, chosen.id if chosen else None)
    keys = sorted({pt.key for pt in data.points}, key=lambda k: (k not in data.limits, k))  # judged first
    charts = [
        (qcview.series_label(k), json.dumps(qcview.lj_chart(data, k, h.zone), default=str, allow_nan=False))
        for k in keys
    ]
    flags = [(f, qcview.rule_text(f.rule), qcview.flag_text(f)) for f in reversed(data.flags)]
    from ..lab.qc_trend import ntc_weekly

    return page(
        request,
        "qc.html",
        user,
        assays=assays,
        chosen=chosen,
        charts=charts,
        flags=flags,
        weeks=ntc_weekly(data.ntc, h.zone),
        here=h,
    )


@router.get("/training", response_class=HTMLResponse)
def training_page(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)):
    h = here(db, user, request.headers.get("accept-language", ""))
    rows = training.progress(db, user)
    db.commit()
    return page(request, "training.html", user, rows=rows, here=h)


# ------------------------------------------------------------------------------------------------- settings


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, error: str = "", user: User = Depends(need("view")), db: Session = Depends(get_db)):
    h = here(db, user, request.headers.get("accept-language", ""))
    return page(
        request,
        "settings.html",
        user,
        here=h,
        error=error,
        lab=specimens.lab_settings(db, user.lab_id),
        mine=specimens.user_language(db, user.id),
        endpoints=list(db.scalars(select(Endpoint).where(Endpoint.lab_id == user.lab_id))),
        limits=list(db.scalars(select(QcLimit).where(QcLimit.lab_id == user.lab_id))),
        assays=_assays(db, user),
        zones=i18n.zones(),
        is_admin=user.role == "admin",
    )


@router.post("/settings/language")
async def my_language(
    request: Request, language: str = Form(""), user: User = Depends(need("view")), db: Session = Depends(get_db)
):
    await check_csrf(request)
    resp = await run_in_threadpool(
        form_result, db, lambda: specimens.save_user_language(db, user, language), "/settings", "/settings"
    )
    resp.set_cookie(LANG_COOKIE, language, samesite="lax", max_age=365 * 86400)
    return resp


@router.post("/settings/{what}")
async def admin_settings(
    request: Request, what: str, user: User = Depends(need("admin")), db: Session = Depends(get_db)
):
    await check_csrf(request)
    form = {k: str(v) for k, v in (await request.form()).items()}

    def act():
        here(db, user, request.headers.get("accept-language", ""))
        if what == "lab":
            specimens.save_lab_settings(
                db,
                user,
                timezone=form.get("timezone", "UTC"),
                language=form.get("language", "en"),
                header=form.get("header", ""),
                training=bool(form.get("training")),
            )
        elif what == "endpoints":
            clinic.save_endpoint(db, user, form)
        elif what == "limits":
            qcview.save_limit(db, user, form)
        else:
            raise HTTPException(404, "unknown settings form")

    return await run_in_threadpool(form_result, db, act, "/settings", "/settings")
