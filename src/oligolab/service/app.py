"""FastAPI application of the lab service: a JSON API under ``/api`` and server-rendered pages, both thin
shells over :mod:`.batches`. Every route but ``/api/health`` needs a signed-in user; browser forms carry a
CSRF token; users see only their own lab's data.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from .. import __version__, reports
from ..errors import InputError
from ..lab.report import CALL_CLASS
from ..lab.rules import shipped_rulesets
from . import auth, watch
from . import accounts, analysis, audit, exports, review, rulesets, summary, uploads
from .db import Assay, Batch, Lab, RuleSetRow, User, make_engine, migrate, session_factory
from .worker import Worker, recover

log = logging.getLogger("oligolab.service")
COOKIE = "oligolab_session"
LOGIN_CSRF_COOKIE = "oligolab_login_csrf"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.globals["call_class"] = CALL_CLASS
TEMPLATES.env.globals["watch_fold"] = watch.fold
#: batches per page of the batch list (a busy lab runs a few dozen plates a day)
PAGE_ROWS = 50
#: shipped real runs offered by the walkthrough (file, plate map, assay)
GUIDE_FILES = {
    "eva_green_b.rdml": "qpcr/eva_green_b.rdml",
    "eva_green_b_cdc_platemap.csv": "qpcr/exports/eva_green_b_cdc_platemap.csv",
}
DATA_DIR = Path(__file__).resolve().parents[3] / "data"


#: pages: scripts and styles from this site only (plotly draws with inline style attributes), no framing
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
#: the printable report: a self-contained file with its own inline scripts, opened in a sandbox (its own
#: origin: no cookies, no requests to the service)
REPORT_CSP = ("sandbox allow-scripts allow-popups allow-modals; default-src 'none'; script-src 'unsafe-inline' "
              "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:")
API_DOCS_HTML = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>oligolab lab service API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script><script src="/api/docs/init.js"></script></body></html>"""
_DOCS_INIT = ('window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true, '
              'presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});')
_DOCS_TYPES = {".css": "text/css", ".js": "application/javascript"}


def docs_asset(name: str) -> Response:
    """Swagger UI's files from the swagger-ui-bundle package (the docs work offline), and their start script."""
    if name == "init.js":
        return Response(_DOCS_INIT, media_type="application/javascript")
    from swagger_ui_bundle import swagger_ui_path

    if name not in ("swagger-ui.css", "swagger-ui-bundle.js"):
        raise HTTPException(404, "no such file")
    return Response((Path(swagger_ui_path) / name).read_bytes(), media_type=_DOCS_TYPES[Path(name).suffix],
                    headers={"Cache-Control": "public, max-age=86400"})


@dataclass
class Settings:
    db_url: str
    worker_threads: int = 1
    start_worker: bool = True
    watch_inputs: watch.WatchInputs | None = field(default_factory=watch.WatchInputs)
    secure_cookies: bool = False
    analysis_processes: int = 0      #: analyses in separate processes (0: in the worker/request thread)
    recover_on_start: bool = True    #: requeue batches a killed service left running (once per service start)


class Unauthenticated(Exception):
    pass


class Forbidden(Exception):
    pass


#: environment variable carrying the settings to uvicorn's worker processes (``oligolab serve --web-processes``)
SETTINGS_ENV = "OLIGOLAB_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one of several web processes: settings from :data:`SETTINGS_ENV` (JSON)."""
    import os

    from .process import die_with_parent

    die_with_parent()
    raw = json.loads(os.environ[SETTINGS_ENV])
    # the parent command recovered the queue and runs assay watch, once for all processes
    return create_app(Settings(**raw, watch_inputs=None, recover_on_start=False))


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.db_url)
    factory = session_factory(engine)
    worker = Worker(factory, threads=settings.worker_threads, watch_inputs=settings.watch_inputs)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        migrate(settings.db_url)
        auth.prepare()
        if settings.recover_on_start:
            recover(factory)
        analysis.use_analysis_processes(settings.analysis_processes)
        if settings.start_worker:
            worker.start()
        yield
        worker.stop()
        analysis.use_analysis_processes(0)
        engine.dispose()

    app = FastAPI(title="oligolab lab service", version=__version__, lifespan=lifespan,
                  docs_url=None, openapi_url=None, redoc_url=None)   # served behind sign-in below
    app.state.settings, app.state.factory, app.state.engine, app.state.worker = settings, factory, engine, worker

    # ------------------------------------------------------------------------------------ plumbing

    def get_db():
        db = factory()
        try:
            yield db
        finally:
            db.close()

    def current(request: Request, db: Session = Depends(get_db)) -> tuple[User, Any]:
        token = request.cookies.get(COOKIE)
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        found = auth.session_user(db, bearer or token)
        if found is None:
            raise Unauthenticated()
        request.state.bearer = bearer is not None
        return found

    def need(permission: str):
        def dep(request: Request, who=Depends(current)) -> User:
            user, sess = who
            if not auth.can(user, permission):
                raise Forbidden(f"your role ({user.role}) may not {permission}")
            request.state.session = sess
            if (request.method not in ("GET", "HEAD") and request.url.path.startswith("/api/")
                    and not request.state.bearer
                    and not auth.csrf_ok(sess, request.headers.get("x-csrf-token"))):
                raise Forbidden("cookie-authenticated API calls need the X-CSRF-Token header")
            return user
        return dep

    async def check_csrf(request: Request) -> None:
        """Cookie-authenticated form posts must carry the session's CSRF token."""
        if getattr(request.state, "bearer", False):
            return
        form = await request.form()
        given = form.get("csrf_token") or request.headers.get("x-csrf-token")
        if not auth.csrf_ok(request.state.session, given):
            raise Forbidden("the form expired or did not come from this site (CSRF check); reload the page")

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api/") or request.url.path == "/api/docs"

    @app.exception_handler(Unauthenticated)
    async def _unauth(request: Request, _exc):
        if wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"error": "sign in first (POST /api/login gives a bearer token)"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc):
        if wants_html(request):
            return page(request, "message.html", None, status_code=403, title="Not allowed", message=str(exc))
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError):
        if wants_html(request):
            return page(request, "message.html", None, status_code=400, title="Not accepted", message=str(exc))
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc):
        msg = "someone changed this at the same time; nothing was stored by this request. Reload and try again."
        if wants_html(request):
            return page(request, "message.html", None, status_code=409, title="Changed meanwhile", message=msg)
        return JSONResponse({"error": msg}, status_code=409)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _db_down(request: Request, exc):
        log.warning("database error: %s", str(exc).splitlines()[0])
        msg = ("the database is not reachable right now; nothing was stored by this request. "
               "Try again in a minute.")
        if wants_html(request):
            return page(request, "message.html", None, status_code=503, title="Please try again", message=msg)
        return JSONResponse({"error": msg}, status_code=503)

    def page(request: Request, name: str, user: User | None, status_code: int = 200, **ctx) -> HTMLResponse:
        sess = getattr(request.state, "session", None)
        return TEMPLATES.TemplateResponse(request, name, {"user": user, "csrf": sess.csrf_token if sess else "",
                                                          "version": __version__, **ctx}, status_code=status_code)

    def get_batch(db: Session, user: User, batch_id: int) -> Batch:
        b = db.get(Batch, batch_id)
        if b is None or b.lab_id != user.lab_id:     # another lab's batch does not exist for this user
            raise HTTPException(404, "no such batch")
        return b

    def get_version(db: Session, b: Batch, number: int | None):
        v = analysis.version(db, b, number)
        if v is None:
            raise HTTPException(404, "no result yet: the batch is still " + b.status)
        return v

    def form_result(db: Session, action, done: str, back: str) -> RedirectResponse:
        """Run a page form's action: commit and go to ``done``, or roll back and show the one-line error on
        ``back`` (the form's page)."""
        try:
            result = action()
        except InputError as exc:
            db.rollback()
            return RedirectResponse(f"{back}{'&' if '?' in back else '?'}error={_q(str(exc))}", status_code=303)
        db.commit()
        return RedirectResponse(done.format(result=result), status_code=303)

    def lab_assays(db: Session, user: User) -> list[Assay]:
        return list(db.scalars(select(Assay).where(Assay.lab_id == user.lab_id).order_by(Assay.id)))

    async def read_upload(upload: UploadFile | None) -> tuple[str, bytes]:
        """The uploaded file's name and bytes, read no further than the size limit."""
        if upload is None or not upload.filename:
            return "", b""
        data = await upload.read(uploads.MAX_UPLOAD_BYTES + 1)
        return upload.filename, data

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 2 * uploads.MAX_UPLOAD_BYTES + (1 << 20):
            return JSONResponse({"error": f"upload larger than {uploads.MAX_UPLOAD_BYTES >> 20} MiB per file refused"},
                                status_code=413)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CSP)
        if settings.secure_cookies:      # served over HTTPS (behind a proxy): browsers keep to HTTPS
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    # ------------------------------------------------------------------------------------- static

    @app.get("/static/app.css", include_in_schema=False)
    def css():
        extra = (Path(__file__).with_name("static") / "service.css").read_text(encoding="utf-8")
        return Response(reports._PAGE_CSS + extra, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js():
        return Response(reports._plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/app.js", include_in_schema=False)
    def app_js():
        return Response((Path(__file__).with_name("static") / "app.js").read_text(encoding="utf-8"),
                        media_type="application/javascript")

    # ---------------------------------------------------------------------- API docs (behind sign-in)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_json(user: User = Depends(need("view"))):
        return JSONResponse(app.openapi())

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs(user: User = Depends(need("view"))):
        return HTMLResponse(API_DOCS_HTML)

    @app.get("/api/docs/{asset}", include_in_schema=False)
    def api_docs_asset(asset: str, user: User = Depends(need("view"))):
        return docs_asset(asset)

    # -------------------------------------------------------------------------------------- API

    @app.get("/api/health")
    def health(db: Session = Depends(get_db)):
        db.execute(text("SELECT 1"))
        queued = db.scalar(select(func.count()).select_from(Batch).where(Batch.status.in_(("queued", "running"))))
        return {"status": "ok", "database": engine.dialect.name, "queue": queued, "version": __version__}

    @app.post("/api/login")
    def api_login(request: Request, body: dict, db: Session = Depends(get_db)):
        try:
            got = auth.sign_in(db, str(body.get("username", "")), str(body.get("password", "")), client_address(request))
        except auth.Throttled as exc:
            return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})
        if got is None:
            return JSONResponse({"error": "wrong user name or password"}, status_code=401)
        token, sess = got
        db.commit()
        return {"token": token, "expires_at": sess.expires_at.isoformat()}

    @app.post("/api/logout")
    def api_logout(request: Request, who=Depends(current), db: Session = Depends(get_db)):
        header = request.headers.get("authorization", "")
        auth.sign_out(db, header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE))
        db.commit()
        return {"signed_out": True}

    @app.get("/api/me")
    def api_me(user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return {"username": user.username, "role": user.role, "lab": db.get(Lab, user.lab_id).name}

    @app.get("/api/assays")
    def api_assays(user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return [rulesets.assay_dict(a) for a in lab_assays(db, user)]

    @app.post("/api/batches", status_code=201)
    async def api_upload(request: Request, assay_id: int = Form(...), name: str = Form(""),
                         run_file: UploadFile | None = File(None), plate_map: UploadFile | None = File(None),
                         user: User = Depends(need("upload")), db: Session = Depends(get_db)):
        run_name, run_bytes = await read_upload(run_file)
        map_name, map_bytes = await read_upload(plate_map)
        b = await run_in_threadpool(uploads.create_batch, db, user, assay_id=assay_id, name=name, run_name=run_name,
                                    run_bytes=run_bytes, map_name=map_name, map_bytes=map_bytes or None)
        await run_in_threadpool(db.commit)
        same = uploads.duplicates(db, b)
        out = {"id": b.id, "status": b.status, "url": f"/batches/{b.id}", "duplicate_of": same}
        if same:
            out["warning"] = (f"the same run file (SHA-256 {b.run_sha256[:12]}…) was uploaded before as batch "
                              + ", ".join(map(str, same)))
        return out

    def batch_json(db: Session, b: Batch, detail: bool = False) -> dict:
        out = {"id": b.id, "name": b.name, "assay_id": b.assay_id, "status": b.status, "progress": b.progress,
               "error": b.error, "version": b.current_version, "created_by": b.created_by,
               "created_at": b.created_at.isoformat(), "run_file": b.run_filename, "run_sha256": b.run_sha256}
        if detail and b.current_version:
            v = analysis.version(db, b)
            out["result"] = {k: v.result[k] for k in ("summary", "valid", "problems", "samples", "controls")}
            out["signed_by"], out["signed_at"] = v.signed_by, v.signed_at.isoformat() if v.signed_at else None
        return out

    @app.get("/api/batches")
    def api_batches(limit: int = 100, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        rows = db.scalars(select(Batch).where(Batch.lab_id == user.lab_id).order_by(Batch.id.desc())
                          .limit(min(max(limit, 1), 1000)))
        return [batch_json(db, b) for b in rows]

    @app.get("/api/batches/{batch_id}")
    def api_batch(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return batch_json(db, get_batch(db, user, batch_id), detail=True)

    @app.get("/api/batches/{batch_id}/versions")
    def api_versions(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        return [{"version": v.version, "created_by": v.created_by, "created_at": v.created_at.isoformat(),
                 "reason": v.reason, "signed_by": v.signed_by,
                 "signed_at": v.signed_at.isoformat() if v.signed_at else None, "overrides": v.overrides,
                 "ruleset_sha256": v.ruleset_sha256, "content_sha256": v.content_sha256,
                 "calls": v.summary.get("calls", {})} for v in analysis.versions(db, b)]

    @app.post("/api/batches/{batch_id}/corrections")
    def api_correct(batch_id: int, body: dict, user: User = Depends(need("review")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        v = review.correct(db, user, b, list(body.get("changes") or []), str(body.get("reason", "")))
        db.commit()
        return {"version": v.version, "status": b.status}

    @app.post("/api/batches/{batch_id}/sign")
    def api_sign(batch_id: int, body: dict, user: User = Depends(need("sign")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        v = review.sign(db, user, b, int(body.get("version", 0)), reason=str(body.get("reason", "")))
        db.commit()
        return {"version": v.version, "status": b.status, "signed_by": v.signed_by}

    def export(db: Session, user: User, batch_id: int, kind: str, number: int | None) -> Response:
        b = get_batch(db, user, batch_id)
        v = get_version(db, b, number)
        stem = f"batch-{b.id}-v{v.version}"
        if kind == "csv":
            return Response(exports.samples_csv(db, b, v), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'})
        if kind == "html":
            return HTMLResponse(exports.report_html(db, b, v),
                                headers={"Content-Security-Policy": REPORT_CSP, "Content-Disposition": f'inline; filename="{stem}.html"'})
        return Response(exports.fhir_json(db, b, v), media_type="application/fhir+json",
                        headers={"Content-Disposition": f'attachment; filename="{stem}-fhir.json"'})

    @app.get("/api/batches/{batch_id}/export.{kind}")
    @app.get("/batches/{batch_id}/export.{kind}", include_in_schema=False)
    def api_export(batch_id: int, kind: str, version: int | None = None, user: User = Depends(need("view")),
                   db: Session = Depends(get_db)):
        if kind not in ("csv", "html", "fhir.json", "fhir"):
            raise HTTPException(404, "exports: csv, html, fhir.json")
        return export(db, user, batch_id, kind.split(".")[0], version)

    @app.get("/api/audit")
    @app.get("/audit.csv", include_in_schema=False)
    def api_audit(request: Request, format: str = "json", batch: int | None = None,
                  user: User = Depends(need("view")), db: Session = Depends(get_db)):
        rows = audit.audit_rows(db, user.lab_id, entity="batch" if batch else None,
                              entity_id=str(batch) if batch else None)
        if format == "csv" or request.url.path.endswith(".csv"):
            return PlainTextResponse(audit.audit_csv(rows), media_type="text/csv",
                                     headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
        return [{"id": r.id, "at": r.at.isoformat(), "user": r.username, "action": r.action, "entity": r.entity,
                 "entity_id": r.entity_id, "before": r.before, "after": r.after} for r in rows]

    @app.get("/api/summary/daily")
    def api_daily(day: str | None = None, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return summary.daily_summary(db, user.lab_id, _parse_day(day))

    @app.get("/api/watch")
    def api_watch(user: User = Depends(need("view")), db: Session = Depends(get_db)):
        res = watch.latest(db, settings.watch_inputs)
        return {"checked_at": res.created_at.isoformat() if res else None, "genomes": res.genomes if res else None,
                "assays": {a.name: watch.for_assay(res, a.watch_assays) for a in lab_assays(db, user)}}

    @app.post("/api/users", status_code=201)
    def api_add_user(body: dict, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        u = _add_user(db, user, body)
        db.commit()
        return {"username": u.username, "role": u.role}

    @app.post("/api/assays", status_code=201)
    def api_add_assay(body: dict, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        a = _save_assay(db, user, body)
        db.commit()
        return rulesets.assay_dict(a)

    @app.post("/api/lab")
    def api_lab_settings(body: dict, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        lab = set_lab_settings(db, user, body)
        db.commit()
        return {"name": lab.name, "four_eyes": lab.four_eyes}

    @app.post("/api/rulesets", status_code=201)
    def api_add_ruleset(body: dict, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        row = rulesets.save_ruleset(db, user, str(body.get("name", "")), str(body.get("yaml", "")))
        db.commit()
        return {"name": row.name, "sha256": row.sha256}

    def _add_user(db: Session, admin: User, body: dict) -> User:
        return accounts.add_user(db, admin, str(body.get("username", "")), str(body.get("password", "")),
                                 str(body.get("role", "")), str(body.get("full_name", "")))

    @app.post("/api/users/{username}")
    def api_update_user(username: str, body: dict, user: User = Depends(need("admin")),
                        db: Session = Depends(get_db)):
        u = _update_user(db, user, username, body)
        db.commit()
        return {"username": u.username, "role": u.role, "active": u.active}

    def _update_user(db: Session, admin: User, username: str, body: dict) -> User:
        active = body.get("active")
        return accounts.update_user(db, admin, username, role=body.get("role") or None,
                                    active=None if active in (None, "") else str(active).lower() in ("true", "1", "on"),
                                    password=body.get("password") or None)

    @app.post("/api/labs", status_code=201)
    def api_create_lab(body: dict, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        lab = accounts.create_lab(db, user, str(body.get("name", "")), str(body.get("admin_username", "")),
                                  str(body.get("admin_password", "")))
        db.commit()
        return {"id": lab.id, "name": lab.name}

    @app.post("/api/me/password")
    def api_change_password(request: Request, body: dict, user: User = Depends(need("view")),
                            db: Session = Depends(get_db)):
        accounts.change_password(db, user, str(body.get("current", "")), str(body.get("new", "")),
                                 keep_session=request.state.session.token_sha256)
        db.commit()
        return {"changed": True}

    def _save_assay(db: Session, user: User, body: dict) -> Assay:
        name, ruleset = str(body.get("name", "")).strip(), str(body.get("ruleset", "")).strip()
        if not name:
            raise InputError("assay", "the assay needs a name", "give a name")
        rulesets.resolve_ruleset(db, user.lab_id, ruleset)       # InputError if unknown
        if db.scalar(select(Assay).where(Assay.lab_id == user.lab_id, Assay.name == name)):
            raise InputError("assay", f"an assay '{name}' exists", "choose another name")
        watch_names = body.get("watch_assays") or []
        if isinstance(watch_names, str):
            watch_names = [w.strip() for w in watch_names.split(";") if w.strip()]
        a = Assay(lab_id=user.lab_id, name=name, ruleset=ruleset, watch_assays=list(watch_names),
                  loinc_code=str(body.get("loinc_code", "")).strip(),
                  loinc_display=str(body.get("loinc_display", "")).strip())
        db.add(a)
        db.flush()
        audit.record(db, user=user, lab_id=user.lab_id, action="create", entity="assay", entity_id=a.id,
                   after=rulesets.assay_dict(a))
        return a

    # ------------------------------------------------------------------------------------- pages

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/", error: str = ""):
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", None, next=_local(next), login_csrf=token, error=error)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies)
        return resp

    @app.post("/login", include_in_schema=False)
    def login_submit(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/"),
                     login_csrf: str = Form(""), db: Session = Depends(get_db)):
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, login_csrf):
            return RedirectResponse("/login?error=The+sign-in+form+expired%2C+please+try+again", status_code=303)
        try:
            got = auth.sign_in(db, username, password, client_address(request))
        except auth.Throttled as exc:
            return RedirectResponse(f"/login?next={_local(next)}&error={_q(str(exc).capitalize())}", status_code=303)
        if got is None:
            return RedirectResponse(f"/login?next={_local(next)}&error=Wrong+user+name+or+password",
                                    status_code=303)
        token, sess = got
        db.commit()
        resp = RedirectResponse(_local(next), status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=auth.SESSION_HOURS * 3600)
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        await check_csrf(request)
        auth.sign_out(db, request.cookies.get(COOKIE))
        db.commit()
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, error: str = "", before: int | None = None, user: User = Depends(need("view")),
             db: Session = Depends(get_db)):
        q = select(Batch).where(Batch.lab_id == user.lab_id)
        if before:
            q = q.where(Batch.id < before)
        rows = list(db.scalars(q.order_by(Batch.id.desc()).limit(PAGE_ROWS)))
        assays = lab_assays(db, user)
        res = watch.latest(db, settings.watch_inputs)
        watch_lines = {a.id: watch.for_assay(res, a.watch_assays) for a in assays}
        calls = {bid: s.get("calls", {}) for bid, s in summary.current_summaries(db, rows).items()}
        return page(request, "batches.html", user, batches=rows, assays={a.id: a for a in assays},
                    watch=watch_lines, watch_result=res, calls=calls, error=error,
                    max_mb=uploads.MAX_UPLOAD_BYTES >> 20,
                    older=rows[-1].id if len(rows) == PAGE_ROWS else None)

    @app.post("/batches", include_in_schema=False)
    async def upload_page(request: Request, assay_id: int = Form(0), name: str = Form(""),
                          run_file: UploadFile | None = File(None), plate_map: UploadFile | None = File(None),
                          user: User = Depends(need("upload")), db: Session = Depends(get_db)):
        await check_csrf(request)
        run_name, run_bytes = await read_upload(run_file)
        map_name, map_bytes = await read_upload(plate_map)
        return await run_in_threadpool(form_result, db, lambda: uploads.create_batch(db, user, assay_id=assay_id, name=name, run_name=run_name,
                                                        run_bytes=run_bytes, map_name=map_name,
                                                        map_bytes=map_bytes or None),
                           "/batches/{result.id}", "/")

    @app.get("/batches/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
    def batch_page(request: Request, batch_id: int, version: int | None = None, error: str = "",
                   user: User = Depends(need("view")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        assay = db.get(Assay, b.assay_id)
        v = analysis.version(db, b, version) if b.current_version else None
        res = watch.latest(db, settings.watch_inputs)
        return page(request, "batch.html", user, b=b, assay=assay, v=v, versions=analysis.versions(db, b),
                    duplicates=uploads.duplicates(db, b),
                    held=review.held_groups(v.result["samples"]) if v else [],
                    plate=_plate_grid(v.result) if v else None, error=error,
                    audit=audit.audit_rows(db, user.lab_id, entity="batch", entity_id=str(b.id)),
                    watch=watch.for_assay(res, assay.watch_assays), can_review=auth.can(user, "review"),
                    calls=rulesets.call_choices(analysis.version_ruleset(db, b, v)) if v else [])

    @app.get("/batches/{batch_id}/status", include_in_schema=False)
    def batch_status(batch_id: int, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        return {"status": b.status, "progress": b.progress, "error": b.error, "version": b.current_version}

    @app.get("/batches/{batch_id}/sample", response_class=HTMLResponse, include_in_schema=False)
    def sample_query_page(request: Request, batch_id: int, id: str, version: int | None = None,
                          user: User = Depends(need("view")), db: Session = Depends(get_db)):
        """A sample's page; the id as a query parameter, so any sample id (with '/', '?', '..') works."""
        return sample_page(request, batch_id, id, version, user, db)

    @app.get("/batches/{batch_id}/samples/{sample:path}", response_class=HTMLResponse, include_in_schema=False)
    def sample_page(request: Request, batch_id: int, sample: str, version: int | None = None,
                    user: User = Depends(need("view")), db: Session = Depends(get_db)):
        b = get_batch(db, user, batch_id)
        v = get_version(db, b, version)
        s = next((s for s in v.result["samples"] if str(s["sample"]) == sample), None)
        wells = [w for w in v.result["wells"] if str(w["sample"]) == sample]
        if s is None and not wells:
            raise HTTPException(404, "no such sample in this batch")
        return page(request, "sample.html", user, b=b, v=v, s=s, wells=wells, sample=sample,
                    chart=json.dumps(_curve_chart(v.result, v.curves, wells), allow_nan=False),
                    can_review=auth.can(user, "review"),
                    calls=rulesets.call_choices(analysis.version_ruleset(db, b, v)))

    @app.post("/batches/{batch_id}/correct", include_in_schema=False)
    async def correct_page(request: Request, batch_id: int, user: User = Depends(need("review")),
                           db: Session = Depends(get_db)):
        await check_csrf(request)
        form = await request.form()
        b = get_batch(db, user, batch_id)
        changes = [{"sample": str(name), "accept": True} for name in form.getlist("accept")]
        if form.get("accept_held_for") is not None:
            changes.append({"accept_held_for": str(form["accept_held_for"])})
        if form.get("sample"):
            changes.append({"sample": str(form["sample"]), "call": str(form.get("call", ""))})
        if form.get("well"):
            changes.append({"well": str(form["well"]), "target": str(form.get("target", "")),
                            "amplified": str(form.get("amplified", ""))})
        return await run_in_threadpool(form_result, db, lambda: review.correct(db, user, b, changes, str(form.get("reason", ""))),
                           f"/batches/{b.id}", f"/batches/{b.id}")

    @app.post("/batches/{batch_id}/sign", include_in_schema=False)
    async def sign_page(request: Request, batch_id: int, version: int = Form(0), reason: str = Form(""),
                        user: User = Depends(need("sign")), db: Session = Depends(get_db)):
        await check_csrf(request)
        b = get_batch(db, user, batch_id)
        return await run_in_threadpool(form_result, db, lambda: review.sign(db, user, b, version, reason=reason), f"/batches/{b.id}",
                                       f"/batches/{b.id}")

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return page(request, "audit.html", user, rows=audit.audit_rows(db, user.lab_id, limit=500))

    @app.get("/summary", response_class=HTMLResponse, include_in_schema=False)
    def summary_page(request: Request, day: str | None = None, user: User = Depends(need("view")),
                     db: Session = Depends(get_db)):
        return page(request, "summary.html", user, s=summary.daily_summary(db, user.lab_id, _parse_day(day)))

    @app.get("/guide", response_class=HTMLResponse, include_in_schema=False)
    def guide_page(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        return page(request, "guide.html", user, assays=lab_assays(db, user), files=GUIDE_FILES)

    @app.get("/guide/files/{name}", include_in_schema=False)
    def guide_file(name: str, user: User = Depends(need("view"))):
        if name not in GUIDE_FILES or not (DATA_DIR / GUIDE_FILES[name]).exists():
            raise HTTPException(404, "no such example file")
        return Response((DATA_DIR / GUIDE_FILES[name]).read_bytes(), media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(request: Request, error: str = "", user: User = Depends(need("admin")),
                   db: Session = Depends(get_db)):
        users = list(db.scalars(select(User).where(User.lab_id == user.lab_id).order_by(User.username)))
        rulesets = list(db.scalars(select(RuleSetRow).where(RuleSetRow.lab_id == user.lab_id)))
        return page(request, "admin.html", user, users=users, assays=lab_assays(db, user), rulesets=rulesets,
                    lab=db.get(Lab, user.lab_id),
                    shipped=shipped_rulesets(), roles=auth.ROLES, error=error)

    @app.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account_page(request: Request, error: str = "", done: str = "", user: User = Depends(need("view"))):
        return page(request, "account.html", user, error=error, done=done)

    @app.post("/account/password", include_in_schema=False)
    async def account_password(request: Request, user: User = Depends(need("view")), db: Session = Depends(get_db)):
        await check_csrf(request)
        form = await request.form()
        keep = request.state.session.token_sha256
        return await run_in_threadpool(form_result, db, lambda: accounts.change_password(
            db, user, str(form.get("current", "")), str(form.get("new", "")), keep_session=keep),
            "/account?done=1", "/account")

    @app.get("/admin/verify", response_class=HTMLResponse, include_in_schema=False)
    async def verify_page(request: Request, user: User = Depends(need("admin")), db: Session = Depends(get_db)):
        from .verify import verify

        report = await run_in_threadpool(verify, db)
        return page(request, "verify.html", user, report=report, breaks=report.for_lab(user.lab_id))

    @app.post("/admin/{what}", include_in_schema=False)
    async def admin_submit(request: Request, what: str, user: User = Depends(need("admin")),
                           db: Session = Depends(get_db)):
        await check_csrf(request)
        form = {k: str(v) for k, v in (await request.form()).items()}

        def act():
            if what == "users":
                _add_user(db, user, form)
            elif what == "user":
                _update_user(db, user, form.get("username", ""), form)
            elif what == "labs":
                accounts.create_lab(db, user, form.get("name", ""), form.get("admin_username", ""),
                                    form.get("admin_password", ""))
            elif what == "lab":
                set_lab_settings(db, user, {"four_eyes": form.get("four_eyes", "false")})
            elif what == "assays":
                _save_assay(db, user, form)
            elif what == "rulesets":
                rulesets.save_ruleset(db, user, form.get("name", ""), form.get("yaml", ""))
            else:
                raise HTTPException(404, "unknown admin form")
        return await run_in_threadpool(form_result, db, act, "/admin", "/admin")

    from .day_routes import Plumbing, install as install_day

    install_day(app, TEMPLATES, Plumbing(need=need, page=page, get_db=get_db, check_csrf=check_csrf,
                                         form_result=form_result, get_batch=get_batch, read_upload=read_upload))
    return app


# ---------------------------------------------------------------------------------------------- helpers

def set_lab_settings(db: Session, admin: User, body: dict) -> Lab:
    """An admin changes the lab's settings (four-eyes sign-off), audited."""
    lab = db.get(Lab, admin.lab_id)
    before = {"four_eyes": lab.four_eyes}
    value = body.get("four_eyes")
    lab.four_eyes = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes")
    audit.record(db, user=admin, lab_id=lab.id, action="update", entity="lab", entity_id=lab.id, before=before,
                 after={"four_eyes": lab.four_eyes})
    return lab


def client_address(request: Request) -> str:
    """The client's address (the proxy's own unless uvicorn trusts its X-Forwarded-For)."""
    return request.client.host if request.client else "-"


def _q(text_: str) -> str:
    from urllib.parse import quote

    return quote(text_[:500])


def _local(url: str) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") else "/"


def _parse_day(day: str | None) -> _dt.date:
    if not day:
        return _dt.datetime.now(_dt.timezone.utc).date()
    try:
        return _dt.date.fromisoformat(day)
    except ValueError:
        raise InputError("day", f"'{day}' is not a date", "use YYYY-MM-DD") from None


def _plate_grid(result: dict) -> dict:
    """Rows x columns of the plate with each used well's sample, role and the sample's final call."""
    calls = {str(s["sample"]): s.get("final_call") or s.get("call") or "" for s in result["samples"]}
    wells: dict[str, dict] = {}
    for w in result["wells"]:
        if w["role"] == "empty":          # read by the instrument but not used by the plate map
            continue
        cell = wells.setdefault(w["well"], {"sample": str(w["sample"]), "role": w["role"], "targets": [],
                                            "review": False})
        cell["targets"].append(w["target"])
        cell["review"] = cell["review"] or bool(w.get("review"))
    rows_n = result["plate"]["rows"] or (16 if len(wells) > 96 else 8)
    cols_n = result["plate"]["columns"] or (24 if len(wells) > 96 else 12)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:rows_n]
    grid = []
    for r in letters:
        row = []
        for c in range(1, cols_n + 1):
            cell = wells.get(f"{r}{c}")
            if cell:
                call = calls.get(cell["sample"], "") if cell["role"] == "sample" else cell["role"]
                row.append({"well": f"{r}{c}", **cell, "call": call,
                            "cls": CALL_CLASS.get(call, "na") if cell["role"] == "sample" else "ctl"})
            else:
                row.append({"well": f"{r}{c}", "sample": "", "role": "empty", "call": "", "cls": "empty"})
        grid.append({"row": r, "cells": row})
    return {"columns": list(range(1, cols_n + 1)), "rows": grid}


def _curve_chart(result: dict, curves: dict, wells: list[dict]) -> dict:
    """Baseline-corrected amplification curves of a sample's wells (log scale), with each target's threshold."""
    cycles = result["cycles"]
    data, layout_shapes = [], []
    for w in wells:
        y = curves.get(f"{w['well']}/{w['target']}")
        if y is None:
            continue
        data.append({"type": "scatter", "mode": "lines+markers", "x": cycles,
                     "y": [v if v is not None and v > 0 else None for v in y],
                     "name": f"{w['target']} ({w['well']}) Cq "
                             + (f"{w['cq_threshold']:.2f}" if w.get("cq_threshold") is not None else "-"),
                     "marker": {"size": 4}})
    for target, thr in (result.get("thresholds") or {}).items():
        if thr and any(w["target"] == target for w in wells):
            layout_shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": thr, "y1": thr,
                                  "line": {"dash": "dot", "width": 1}})
    layout = {"xaxis": {"title": {"text": "cycle"}}, "yaxis": {"title": {"text": "baseline-corrected fluorescence"},
                                                             "type": "log"},
              "shapes": layout_shapes, "margin": {"t": 20}, "legend": {"orientation": "h", "y": -0.25}}
    layout["height"] = 420
    return {"data": data, "layout": layout}
