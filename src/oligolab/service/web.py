"""What every route of the service shares: the templates, the database session of a request, the signed-in user
and their permission, CSRF checks, page rendering and the one-line error redirect of page forms.

Everything is read from the request's own app (``request.app.state``: settings, session factory), so the
routers of :mod:`.api`, :mod:`.pages` and :mod:`.admin_pages` are plain module-level ``APIRouter`` objects.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import __version__
from ..errors import InputError
from ..lab.report import CALL_CLASS
from . import analysis, auth, uploads, watch
from .db import Assay, Batch, BatchVersion, LoginSession, User

COOKIE = "oligolab_session"
LOGIN_CSRF_COOKIE = "oligolab_login_csrf"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.globals["call_class"] = CALL_CLASS
TEMPLATES.env.globals["watch_fold"] = watch.fold


class Unauthenticated(Exception):
    """No valid session: pages redirect to the sign-in, the API answers 401."""


class Forbidden(Exception):
    """The user's role may not do this, or a browser form failed its CSRF check (403)."""


def get_db(request: Request) -> Iterator[Session]:
    """A database session for one request (closed afterwards)."""
    db = request.app.state.factory()
    try:
        yield db
    finally:
        db.close()


def current(request: Request, db: Session = Depends(get_db)) -> tuple[User, LoginSession]:
    """The signed-in user and session, from the bearer token or the session cookie."""
    token = request.cookies.get(COOKIE)
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    found = auth.session_user(db, bearer or token)
    if found is None:
        raise Unauthenticated()
    request.state.bearer = bearer is not None
    return found


def need(permission: str) -> Callable[..., User]:
    """A dependency giving the signed-in user if their role has ``permission``; cookie-authenticated API
    changes must carry the session's X-CSRF-Token header."""

    def dep(request: Request, who: tuple[User, LoginSession] = Depends(current)) -> User:
        user, sess = who
        if not auth.can(user, permission):
            raise Forbidden(f"your role ({user.role}) may not {permission}")
        request.state.session = sess
        if (
            request.method not in ("GET", "HEAD")
            and request.url.path.startswith("/api/")
            and not request.state.bearer
            and not auth.csrf_ok(sess, request.headers.get("x-csrf-token"))
        ):
            raise Forbidden("cookie-authenticated API calls need the X-CSRF-Token header")
        return user

    return dep


async def check_csrf(request: Request) -> None:
    """Cookie-authenticated form posts must carry the session's CSRF token."""
    if getattr(request.state, "bearer", False):
        return
    form = await request.form()
    given = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not auth.csrf_ok(request.state.session, str(given or "")):
        raise Forbidden("the form expired or did not come from this site (CSRF check); reload the page")


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") or request.url.path == "/api/docs"


def page(request: Request, name: str, user: User | None, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """A rendered page with the user, the session's CSRF token and the version."""
    sess = getattr(request.state, "session", None)
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": sess.csrf_token if sess else "", "version": __version__, **ctx},
        status_code=status_code,
    )


def get_batch(db: Session, user: User, batch_id: int) -> Batch:
    b = db.get(Batch, batch_id)
    if b is None or b.lab_id != user.lab_id:  # another lab's batch does not exist for this user
        raise HTTPException(404, "no such batch")
    return b


def get_version(db: Session, b: Batch, number: int | None) -> BatchVersion:
    v = analysis.version(db, b, number)
    if v is None:
        raise HTTPException(404, "no result yet: the batch is still " + b.status)
    return v


def form_result(db: Session, action: Callable[[], Any], done: str, back: str) -> RedirectResponse:
    """Run a page form's action: commit and go to ``done``, or roll back and show the one-line error on
    ``back`` (the form's page)."""
    try:
        result = action()
    except InputError as exc:
        db.rollback()
        return RedirectResponse(f"{back}{'&' if '?' in back else '?'}error={q(str(exc))}", status_code=303)
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


def client_address(request: Request) -> str:
    """The client's address (the proxy's own unless uvicorn trusts its X-Forwarded-For)."""
    return request.client.host if request.client else "-"


def q(text: str) -> str:
    """``text`` for a URL query value (at most 500 characters)."""
    return quote(text[:500])


def local_path(url: str) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") else "/"


def parse_day(day: str | None) -> _dt.date:
    if not day:
        return _dt.datetime.now(_dt.UTC).date()
    try:
        return _dt.date.fromisoformat(day)
    except ValueError:
        raise InputError("day", f"'{day}' is not a date", "use YYYY-MM-DD") from None
