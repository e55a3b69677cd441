"""Users, passwords (Argon2id), sign-in sessions, roles and CSRF tokens of the lab service.

A session token is a random 256-bit string handed to the client once (cookie for the browser, bearer token
for API clients); the database keeps only its SHA-256, so a leaked database copy signs nobody in. Browser
forms carry the session's CSRF token; bearer-token requests need none (browsers never send them on their own).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import InputError
from .db import Lab, LoginSession, User, utcnow

ROLES = ("technician", "reviewer", "admin")
#: what each role may do (an admin may do everything a reviewer does)
PERMISSIONS = {
    "technician": {"view", "upload"},
    "reviewer": {"view", "upload", "review", "sign"},
    "admin": {"view", "upload", "review", "sign", "admin"},
}
SESSION_HOURS = 12
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError("password", f"shorter than {MIN_PASSWORD_LENGTH} characters", "choose a longer password")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def can(user: User, permission: str) -> bool:
    return permission in PERMISSIONS.get(user.role, set())


def get_or_create_lab(db: Session, name: str) -> Lab:
    lab = db.scalar(select(Lab).where(Lab.name == name))
    if lab is None:
        lab = Lab(name=name)
        db.add(lab)
        db.flush()
    return lab


def create_user(db: Session, *, lab: Lab, username: str, password: str, role: str, full_name: str = "") -> User:
    """A new user of ``lab``; InputError on an unknown role, a taken name or a short password."""
    username = username.strip()
    if role not in ROLES:
        raise InputError("user", f"unknown role '{role}'", "use one of: " + ", ".join(ROLES))
    if not username or len(username) > 100:
        raise InputError("user", "the user name is empty or too long", "give 1-100 characters")
    if db.scalar(select(User).where(User.username == username)):
        raise InputError("user", f"user '{username}' exists", "choose another user name")
    user = User(lab_id=lab.id, username=username, full_name=full_name.strip(), role=role,
                password_hash=hash_password(password))
    db.add(user)
    db.flush()
    return user


def user_state(user: User) -> dict:
    """What the audit trail records of a user at each change (the password as a hash of its hash), and what
    ``oligolab serve verify`` compares the users table with."""
    return {"username": user.username, "lab_id": user.lab_id, "role": user.role, "active": bool(user.active),
            "full_name": user.full_name, "password_sha256": hashlib.sha256(user.password_hash.encode()).hexdigest()}


def audit_user(db: Session, actor: User | str, user: User, action: str, before: dict | None = None, **extra: object
               ) -> None:
    """Record a user's creation or change with its new state (in the caller's transaction)."""
    from .audit import record

    db.flush()
    record(db, user=actor, lab_id=user.lab_id, action=action, entity="user", entity_id=user.username,
           before=before, after={"state": user_state(user), **extra})


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(db: Session, username: str, password: str) -> tuple[str, LoginSession] | None:
    """A new session for valid credentials: (token for the client, session row); None otherwise."""
    user = db.scalar(select(User).where(User.username == username.strip(), User.active.is_(True)))
    if user is None or not verify_password(user.password_hash, password):
        return None
    token = secrets.token_urlsafe(32)
    row = LoginSession(token_sha256=_sha(token), user_id=user.id, csrf_token=secrets.token_urlsafe(24),
                       expires_at=utcnow() + _dt.timedelta(hours=SESSION_HOURS))
    db.execute(delete(LoginSession).where(LoginSession.expires_at < utcnow()))
    db.add(row)
    return token, row


def session_user(db: Session, token: str | None) -> tuple[User, LoginSession] | None:
    """The signed-in user and session of ``token``, or None when missing, unknown or expired."""
    if not token:
        return None
    row = db.get(LoginSession, _sha(token))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=_dt.timezone.utc)
    if expires < utcnow():
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def sign_out(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(LoginSession).where(LoginSession.token_sha256 == _sha(token)))


def csrf_ok(session: LoginSession, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(session.csrf_token, given)


def bootstrap(db: Session, *, lab_name: str = "Regional laboratory", demo_password: str | None = None
              ) -> list[str]:
    """First start: create the lab with its default assays and an admin (random password), or with
    ``demo_password`` the training accounts tech, reviewer and admin. Returns lines to show the operator."""
    from .rulesets import seed_lab

    if db.scalar(select(User.id).limit(1)) is not None:
        return []
    lab = get_or_create_lab(db, lab_name)
    seed_lab(db, lab.id)
    if demo_password:
        accounts = [("tech", "technician"), ("reviewer", "reviewer"), ("admin", "admin")]
        password = demo_password
    else:
        accounts, password = [("admin", "admin")], secrets.token_urlsafe(12)
    for name, role in accounts:
        audit_user(db, "system", create_user(db, lab=lab, username=name, password=password, role=role), "create")
    names = ", ".join(n for n, _ in accounts)
    return [f"created lab '{lab_name}' with its default assays and the account(s) {names}",
            f"password: {password}  (change it: add your staff on the Admin page, then retire these accounts)"]
