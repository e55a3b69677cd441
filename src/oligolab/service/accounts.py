"""Account changes, every one audited with the user's new state: a user changes their own password; an admin
adds users, changes a role, resets a password, deactivates or reactivates an account, and creates a lab with
its first admin. Deactivation and password changes end the user's other sessions."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..errors import InputError
from . import auth
from .audit import record
from .db import Lab, LoginSession, User
from .rulesets import seed_lab


def _end_sessions(db: Session, user: User, keep: str | None = None) -> None:
    q = delete(LoginSession).where(LoginSession.user_id == user.id)
    if keep:
        q = q.where(LoginSession.token_sha256 != keep)
    db.execute(q)


def change_password(db: Session, user: User, current: str, new: str, keep_session: str | None = None) -> None:
    """The user's own password change (the current password proves it is them)."""
    if not auth.verify_password(user.password_hash, current):
        raise InputError("password", "the current password is wrong", "type your current password")
    if new == current:
        raise InputError("password", "the new password is the old one", "choose a new password")
    before = auth.user_state(user)
    lab = db.get(Lab, user.lab_id)
    assert lab is not None  # a foreign key
    user.password_hash = auth.hash_password(new, user.username, user.full_name, lab.name)
    _end_sessions(db, user, keep_session)
    auth.audit_user(db, user, user, "change_password", before=before)


def _lab_user(db: Session, admin: User, username: str) -> User:
    u = db.scalar(select(User).where(User.username == username.strip()))
    if u is None or u.lab_id != admin.lab_id:
        raise InputError("user", f"no user '{username}' in your lab", "pick one of the lab's users")
    return u


def _last_admin(db: Session, u: User) -> bool:
    others = db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.lab_id == u.lab_id, User.role == "admin", User.active.is_(True), User.id != u.id)
    )
    return u.role == "admin" and not others


def update_user(
    db: Session,
    admin: User,
    username: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """An admin changes a user of their lab: role, active state, or a new password (all audited)."""
    u = _lab_user(db, admin, username)
    before = auth.user_state(u)
    if role is not None and role != u.role:
        if role not in auth.ROLES:
            raise InputError("user", f"unknown role '{role}'", "use one of: " + ", ".join(auth.ROLES))
        if _last_admin(db, u):
            raise InputError("user", f"{u.username} is the lab's last admin", "make another user admin first")
        u.role = role
    if active is not None and active != u.active:
        if u.id == admin.id or (not active and _last_admin(db, u)):
            raise InputError(
                "user", "an admin cannot deactivate their own or the last admin account", "ask another admin"
            )
        u.active = active
        if not active:
            _end_sessions(db, u)
    if password:
        lab = db.get(Lab, u.lab_id)
        assert lab is not None  # a foreign key
        u.password_hash = auth.hash_password(password, u.username, u.full_name, lab.name)
        _end_sessions(db, u)
    if auth.user_state(u) == before:
        raise InputError("user", "nothing to change", "choose a new role, state or password")
    action = (
        "deactivate"
        if before["active"] and not u.active
        else ("reactivate" if not before["active"] and u.active else "update")
    )
    auth.audit_user(db, admin, u, action, before=before)
    return u


def add_user(db: Session, admin: User, username: str, password: str, role: str, full_name: str = "") -> User:
    lab = db.get(Lab, admin.lab_id)
    assert lab is not None  # a foreign key
    u = auth.create_user(db, lab=lab, username=username, password=password, role=role, full_name=full_name)
    auth.audit_user(db, admin, u, "create")
    return u


def create_lab(db: Session, admin: User, name: str, admin_username: str, admin_password: str) -> Lab:
    """A new lab with the default assays and its first admin; audited in both labs."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("lab", "the lab needs a name (1-200 characters)", "give the lab's name")
    if db.scalar(select(Lab).where(Lab.name == name)):
        raise InputError("lab", f"a lab '{name}' exists", "choose another name")
    lab = auth.get_or_create_lab(db, name)
    seed_lab(db, lab.id, admin.username)
    first = auth.create_user(db, lab=lab, username=admin_username, password=admin_password, role="admin")
    auth.audit_user(db, admin, first, "create")
    for lab_id in (admin.lab_id, lab.id):
        record(
            db,
            user=admin,
            lab_id=lab_id,
            action="create",
            entity="lab",
            entity_id=lab.id,
            after={"name": lab.name, "first_admin": first.username, "created_from_lab": admin.lab_id},
        )
    return lab


def set_lab_settings(db: Session, admin: User, four_eyes: bool) -> Lab:
    """An admin changes the lab's settings (four-eyes sign-off), audited."""
    lab = db.get(Lab, admin.lab_id)
    assert lab is not None  # a foreign key
    before = {"four_eyes": lab.four_eyes}
    lab.four_eyes = bool(four_eyes)
    record(
        db,
        user=admin,
        lab_id=lab.id,
        action="update",
        entity="lab",
        entity_id=lab.id,
        before=before,
        after={"four_eyes": lab.four_eyes},
    )
    return lab
