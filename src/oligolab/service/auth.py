"""Users, passwords (Argon2id), sign-in sessions, roles and CSRF tokens of the lab service.

A session token is a random 256-bit string handed to the client once (cookie for the browser, bearer token
for API clients); the database keeps only its SHA-256, so a leaked database copy signs nobody in. Browser
forms carry the session's CSRF token; bearer-token requests need none (browsers never send them on their own).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..errors import InputError
from .db import Lab, LoginSession, SignInAttempt, User, utcnow

ROLES = ("technician", "reviewer", "admin")
#: what each role may do (an admin may do everything a reviewer does)
PERMISSIONS = {
    "technician": {"view", "upload"},
    "reviewer": {"view", "upload", "review", "sign"},
    "admin": {"view", "upload", "review", "sign", "admin"},
}
SESSION_HOURS = 12
MIN_PASSWORD_LENGTH = 10
#: zxcvbn score (0-4) a password needs: 3 = "safely unguessable" (about 10^8 guesses or more)
MIN_PASSWORD_SCORE = 3
#: failed sign-ins (per user name and per address, in the window) before each next try waits: 2^(n - FREE) s,
#: at most MAX_DELAY_S
FREE_ATTEMPTS, WINDOW_MIN, MAX_DELAY_S = 5, 15, 900
_hasher = PasswordHasher()


class Throttled(Exception):
    """Too many failed sign-ins for this user name or address; ``retry_after`` seconds to wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s")
        self.retry_after = retry_after


def check_password(password: str, *related: str) -> None:
    """The password policy: at least 10 characters, and not common or trivial (zxcvbn, with the user's name and
    lab as known words); InputError naming why."""
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError("password", f"shorter than {MIN_PASSWORD_LENGTH} characters", "choose a longer password")
    verdict = zxcvbn(password[:100], user_inputs=[r for r in related if r])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        why = verdict["feedback"]["warning"] or "too easy to guess"
        raise InputError(
            "password",
            f"refused: {why.rstrip('.').lower()}",
            "use a longer phrase of unrelated words (e.g. four words with dashes)",
        )


def hash_password(password: str, *related: str) -> str:
    check_password(password, *related)
    return _hasher.hash(password)


def prepare() -> None:
    """Compute the unknown-user hash once at start, so the first unknown name costs no more than later ones."""
    _dummy_hash()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against for unknown user names, so they cost the same work as known ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


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
    user = User(
        lab_id=lab.id,
        username=username,
        full_name=full_name.strip(),
        role=role,
        password_hash=hash_password(password, username, full_name, lab.name),
    )
    db.add(user)
    db.flush()
    return user


def user_state(user: User) -> dict:
    """What the audit trail records of a user at each change (the password as a hash of its hash), and what
    ``oligolab serve verify`` compares the users table with."""
    return {
        "username": user.username,
        "lab_id": user.lab_id,
        "role": user.role,
        "active": bool(user.active),
        "full_name": user.full_name,
        "password_sha256": hashlib.sha256(user.password_hash.encode()).hexdigest(),
    }


def audit_user(
    db: Session, actor: User | str, user: User, action: str, before: dict | None = None, **extra: object
) -> None:
    """Record a user's creation or change with its new state (in the caller's transaction)."""
    from .audit import record

    db.flush()
    record(
        db,
        user=actor,
        lab_id=user.lab_id,
        action=action,
        entity="user",
        entity_id=user.username,
        before={"state": before} if before else None,
        after={"state": user_state(user), **extra},
    )


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _throttle(db: Session, username: str, address: str) -> None:
    """Raise Throttled while this user name or address must wait after repeated failures (2^(n-5) s after the
    n-th failure within the window, at most 15 minutes)."""
    since = utcnow() - _dt.timedelta(minutes=WINDOW_MIN)
    worst = 0
    for col, value in ((SignInAttempt.username, username), (SignInAttempt.address, address)):
        n, last = db.execute(
            select(func.count(), func.max(SignInAttempt.at)).where(col == value, SignInAttempt.at >= since)
        ).one()
        if n >= FREE_ATTEMPTS and last is not None:
            last = last if last.tzinfo else last.replace(tzinfo=_dt.UTC)
            wait = min(2 ** (n - FREE_ATTEMPTS), MAX_DELAY_S)
            remaining = (last + _dt.timedelta(seconds=wait) - _now()).total_seconds()
            worst = max(worst, math.ceil(remaining))
    if worst > 0:
        raise Throttled(worst)


def _failed(db: Session, username: str, address: str) -> None:
    db.add(SignInAttempt(username=username, address=address, at=_now()))
    since = utcnow() - _dt.timedelta(minutes=WINDOW_MIN)
    n = db.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.username == username, SignInAttempt.at >= since)
    )
    user = db.scalar(select(User).where(User.username == username))
    if n == FREE_ATTEMPTS and user is not None:  # once per window: the account is under attack or forgotten
        from .audit import record

        record(
            db,
            user="system",
            lab_id=user.lab_id,
            action="sign_in_delayed",
            entity="user",
            entity_id=username,
            after={"failed_sign_ins": n, "address": address, "window_min": WINDOW_MIN},
        )
    db.execute(delete(SignInAttempt).where(SignInAttempt.at < utcnow() - _dt.timedelta(days=1)))


def sign_in(db: Session, username: str, password: str, address: str = "") -> tuple[str, LoginSession] | None:
    """A new session for valid credentials: (token for the client, session row); None otherwise (the failure is
    counted, and committed by this call). Raises Throttled while the user name or address must wait. Unknown
    and known user names cost the same work (one Argon2 verification each)."""
    username, address = username.strip()[:100], (address or "-")[:64]
    try:
        _throttle(db, username, address)
    except Throttled:
        _failed(db, username, address)  # a try while waiting counts too: the delay keeps growing
        db.commit()
        raise
    user = db.scalar(select(User).where(User.username == username, User.active.is_(True)))
    ok = verify_password(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not ok:
        _failed(db, username, address)
        db.commit()
        return None
    db.execute(delete(SignInAttempt).where(SignInAttempt.username == username))
    token = secrets.token_urlsafe(32)
    row = LoginSession(
        token_sha256=_sha(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        expires_at=utcnow() + _dt.timedelta(hours=SESSION_HOURS),
    )
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
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=_dt.UTC)
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
    if not given:
        return False
    return secrets.compare_digest(session.csrf_token, given)


def bootstrap(db: Session, *, lab_name: str = "Regional laboratory", demo_password: str | None = None) -> list[str]:
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
    return [
        f"created lab '{lab_name}' with its default assays and the account(s) {names}",
        f"password: {password}  (change it on the Account page; add your staff on the Admin page and "
        "deactivate these accounts there)",
    ]
