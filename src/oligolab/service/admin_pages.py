"""The admin's pages: users (add, role, deactivate, reset a password), assays, lab rule sets, the lab's
settings (four eyes), new labs, and the Integrity page (``oligolab serve verify`` in the browser)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..lab.rules import shipped_rulesets
from . import accounts, auth, rulesets
from .db import Lab, RuleSetRow, User
from .web import check_csrf, form_result, get_db, lab_assays, need, page

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def admin_page(
    request: Request, error: str = "", user: User = Depends(need("admin")), db: Session = Depends(get_db)
) -> HTMLResponse:
    users = list(db.scalars(select(User).where(User.lab_id == user.lab_id).order_by(User.username)))
    own = list(db.scalars(select(RuleSetRow).where(RuleSetRow.lab_id == user.lab_id)))
    return page(
        request,
        "admin.html",
        user,
        users=users,
        assays=lab_assays(db, user),
        rulesets=own,
        lab=db.get(Lab, user.lab_id),
        shipped=shipped_rulesets(),
        roles=auth.ROLES,
        error=error,
    )


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(
    request: Request, user: User = Depends(need("admin")), db: Session = Depends(get_db)
) -> HTMLResponse:
    from .verify import verify

    report = await run_in_threadpool(verify, db)
    return page(request, "verify.html", user, report=report, breaks=report.for_lab(user.lab_id))


def _flag(value: str | None) -> bool | None:
    return None if value in (None, "") else str(value).lower() in ("true", "1", "on", "yes")


#: admin forms: name in /admin/NAME -> what it does with the form fields
FORMS: dict[str, Callable[[Session, User, dict], Any]] = {
    "users": lambda db, u, f: accounts.add_user(
        db, u, f.get("username", ""), f.get("password", ""), f.get("role", ""), f.get("full_name", "")
    ),
    "user": lambda db, u, f: accounts.update_user(
        db,
        u,
        f.get("username", ""),
        role=f.get("role") or None,
        active=_flag(f.get("active")),
        password=f.get("password") or None,
    ),
    "labs": lambda db, u, f: accounts.create_lab(
        db, u, f.get("name", ""), f.get("admin_username", ""), f.get("admin_password", "")
    ),
    "lab": lambda db, u, f: accounts.set_lab_settings(db, u, bool(_flag(f.get("four_eyes", "false")))),
    "assays": lambda db, u, f: rulesets.save_assay(
        db,
        u,
        f.get("name", ""),
        f.get("ruleset", ""),
        f.get("watch_assays", ""),
        f.get("loinc_code", ""),
        f.get("loinc_display", ""),
    ),
    "rulesets": lambda db, u, f: rulesets.save_ruleset(db, u, f.get("name", ""), f.get("yaml", "")),
}


@router.post("/{what}")
async def admin_submit(
    request: Request, what: str, user: User = Depends(need("admin")), db: Session = Depends(get_db)
) -> RedirectResponse:
    await check_csrf(request)
    if what not in FORMS:
        raise HTTPException(404, "unknown admin form")
    form = {k: str(v) for k, v in (await request.form()).items()}
    return await run_in_threadpool(form_result, db, lambda: FORMS[what](db, user, form), "/admin", "/admin")
