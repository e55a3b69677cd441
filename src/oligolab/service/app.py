"""The lab service's FastAPI application: wiring only. Routes live in :mod:`.api` (JSON under ``/api``),
:mod:`.pages` (the bench's pages), :mod:`.admin_pages` and :mod:`.day_routes` (the lab's day); what they share
(session, user, permissions, CSRF, rendering) in :mod:`.web`. Every route but ``/api/health`` and the sign-in
needs a signed-in user; browser forms carry a CSRF token; users see only their own lab's data.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .. import __version__, reports
from ..errors import InputError
from . import admin_pages, analysis, api, auth, day_routes, pages, uploads, watch
from .db import User, make_engine, migrate, session_factory
from .web import Forbidden, Unauthenticated, need, page, wants_html
from .worker import Worker, recover

log = logging.getLogger("oligolab.service")
#: environment variable carrying the settings to uvicorn's worker processes (``oligolab serve --web-processes``)
SETTINGS_ENV = "OLIGOLAB_SERVE_SETTINGS"
#: pages: scripts and styles from this site only (plotly draws with inline style attributes), no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
API_DOCS_HTML = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>oligolab lab service API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script><script src="/api/docs/init.js"></script></body></html>"""
_DOCS_INIT = (
    'window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true, '
    'presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});'
)
_STATIC = Path(__file__).with_name("static")


@dataclass
class Settings:
    db_url: str
    worker_threads: int = 1
    start_worker: bool = True
    watch_inputs: watch.WatchInputs | None = field(default_factory=watch.WatchInputs)
    secure_cookies: bool = False
    analysis_processes: int = 0  #: analyses in separate processes (0: in the worker/request thread)
    recover_on_start: bool = True  #: requeue batches a killed service left running (once per service start)
    #: keep what start-up made (modules, routes, templates, catalogues: about 230,000 objects) out of the garbage
    #: collector's full passes for the life of the process (gc.freeze): a full pass over them took 0.1-1 s in
    #: the middle of a request; set by ``oligolab serve`` (an app made and dropped in tests would stay in memory)
    freeze_start: bool = False


def app_from_environment() -> FastAPI:
    """The app of one of several web processes: settings from :data:`SETTINGS_ENV` (JSON); the process dies
    with the ``oligolab serve`` process that started it."""
    import os

    from .process import die_with_parent

    die_with_parent()
    raw = json.loads(os.environ[SETTINGS_ENV])
    # the parent command recovered the queue and runs assay watch, once for all processes
    return create_app(Settings(**raw, watch_inputs=None, recover_on_start=False))


# ------------------------------------------------------------------------------------ static files, docs

static = APIRouter(include_in_schema=False)


@static.get("/static/app.css")
def css() -> Response:
    return Response(
        reports.PAGE_CSS + (_STATIC / "service.css").read_text(encoding="utf-8"),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@static.get("/static/plotly.min.js")
def plotly_js() -> Response:
    return Response(
        reports.plotly_js(), media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@static.get("/static/app.js")
def app_js() -> Response:
    return Response((_STATIC / "app.js").read_text(encoding="utf-8"), media_type="application/javascript")


@static.get("/api/openapi.json")
def openapi_json(request: Request, user: User = Depends(need("view"))) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@static.get("/api/docs", response_class=HTMLResponse)
def api_docs(user: User = Depends(need("view"))) -> HTMLResponse:
    """Swagger UI from the swagger-ui-bundle package (no CDN: the docs work offline), behind sign-in."""
    return HTMLResponse(API_DOCS_HTML)


@static.get("/api/docs/{asset}")
def api_docs_asset(asset: str, user: User = Depends(need("view"))) -> Response:
    if asset == "init.js":
        return Response(_DOCS_INIT, media_type="application/javascript")
    from swagger_ui_bundle import swagger_ui_path

    types = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "application/javascript"}
    if asset not in types:
        raise HTTPException(404, "no such file")
    return Response(
        (Path(swagger_ui_path) / asset).read_bytes(),
        media_type=types[asset],
        headers={"Cache-Control": "public, max-age=86400"},
    )


# ------------------------------------------------------------------------------------------------ errors


def _answer(request: Request, status: int, title: str, message: str) -> Response:
    if wants_html(request):
        return page(request, "message.html", None, status_code=status, title=title, message=message)
    return JSONResponse({"error": message}, status_code=status)


async def _unauthenticated(request: Request, _exc: Exception) -> Response:
    if wants_html(request):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return JSONResponse(
        {"error": "sign in first (POST /api/login gives a bearer token)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _forbidden(request: Request, exc: Exception) -> Response:
    return _answer(request, 403, "Not allowed", str(exc))


async def _bad_input(request: Request, exc: Exception) -> Response:
    return _answer(request, 400, "Not accepted", str(exc))


async def _bad_body(request: Request, exc: Exception) -> Response:
    errors: list[dict] = getattr(exc, "errors", lambda: [])()
    where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:3])
    return _answer(request, 400, "Not accepted", f"request: {where or 'not understood'} (see /api/docs)")


async def _conflict(request: Request, _exc: Exception) -> Response:
    return _answer(
        request,
        409,
        "Changed meanwhile",
        "someone changed this at the same time; nothing was stored by this request. Reload and try again.",
    )


async def _db_down(request: Request, exc: Exception) -> Response:
    log.warning("database error: %s", str(exc).splitlines()[0])
    return _answer(
        request,
        503,
        "Please try again",
        "the database is not reachable right now; nothing was stored by this request. Try again in a minute.",
    )


ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    Unauthenticated: _unauthenticated,
    Forbidden: _forbidden,
    InputError: _bad_input,
    RequestValidationError: _bad_body,
    IntegrityError: _conflict,
    OperationalError: _db_down,
    DBAPIError: _db_down,
    PoolTimeoutError: _db_down,
}


async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Refuse oversized bodies early; security headers on every answer (HSTS behind HTTPS)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > 2 * uploads.MAX_UPLOAD_BYTES + (1 << 20):
        return JSONResponse(
            {"error": f"upload larger than {uploads.MAX_UPLOAD_BYTES >> 20} MiB per file refused"}, status_code=413
        )
    response = await call_next(request)
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CSP),
        ("Referrer-Policy", "same-origin"),
    ):
        response.headers.setdefault(name, value)
    if request.app.state.settings.secure_cookies:  # served over HTTPS (behind a proxy): browsers keep to HTTPS
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


# ----------------------------------------------------------------------------------------------- the app


def create_app(settings: Settings) -> FastAPI:
    """The service on ``settings.db_url``: database, queue worker, analysis processes, routes."""
    engine = make_engine(settings.db_url)
    factory = session_factory(engine)
    worker = Worker(factory, threads=settings.worker_threads, watch_inputs=settings.watch_inputs)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        migrate(settings.db_url)
        auth.prepare()
        if settings.recover_on_start:
            recover(factory)
        analysis.use_analysis_processes(settings.analysis_processes)
        if settings.start_worker:
            worker.start()
        if settings.freeze_start:
            gc.collect()
            gc.freeze()
        yield
        worker.stop()
        analysis.use_analysis_processes(0)
        engine.dispose()

    app = FastAPI(
        title="oligolab lab service",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
    )  # served behind sign-in (static router)
    app.state.settings, app.state.factory, app.state.engine, app.state.worker = settings, factory, engine, worker
    for exc_type, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.middleware("http")(_headers)
    for router in (static, api.router, pages.router, admin_pages.router):
        app.include_router(router)

    day_routes.install(app)
    return app
