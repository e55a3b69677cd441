"""The service's audit trail: who did what, when, with the record before and after, as a hash chain.

Events are appended in the transaction of the change they describe (they commit together or not at all); the
database refuses UPDATE and DELETE of them (triggers of the migrations). Each event carries its number
(``seq``), the SHA-256 of the event before it and its own SHA-256 over both (:func:`event_sha256`), so an
edited, removed, reordered or inserted event breaks the chain where it happened; the one-row ``audit_head``
table holds the end of the chain, so removed last events are found too (``oligolab serve verify``).

The hash is frozen: changing :func:`event_sha256` would break every stored chain.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..reports import to_json
from .db import AuditEvent, AuditHead, User, utcnow


def plain(obj: object) -> object:
    """``obj`` as plain JSON values (what a JSON column stores and gives back)."""
    return None if obj is None else json.loads(to_json(obj))


GENESIS = "0" * 64


def event_sha256(
    seq: int,
    lab_id: int | None,
    at: _dt.datetime,
    username: str,
    action: str,
    entity: str,
    entity_id: str,
    before: object,
    after: object,
    prev_sha256: str,
) -> str:
    """SHA-256 of one event and the hash of the event before it (canonical JSON; times in UTC)."""
    body = {
        "seq": seq,
        "lab_id": lab_id,
        "at": at.astimezone(_dt.UTC).isoformat(),
        "user": username,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before,
        "after": after,
        "prev": prev_sha256,
    }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def sha_of_event(ev: AuditEvent) -> str:
    return event_sha256(
        ev.seq or 0,
        ev.lab_id,
        ev.at,
        ev.username,
        ev.action,
        ev.entity,
        ev.entity_id,
        ev.before,
        ev.after,
        ev.prev_sha256,
    )


def record(
    db: Session,
    *,
    user: User | str,
    lab_id: int | None,
    action: str,
    entity: str,
    entity_id: object,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction (it commits with the change it describes), chained
    to the event before it. Taking the chain head's row lock serialises appends until commit."""
    name = user.username if isinstance(user, User) else user
    seq, prev = db.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.sha256)
    ).one()
    ev = AuditEvent(
        seq=seq,
        prev_sha256=prev,
        lab_id=lab_id,
        at=utcnow(),
        username=name,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=plain(before),
        after=plain(after),
    )
    ev.sha256 = sha_of_event(ev)
    db.add(ev)
    db.execute(update(AuditHead).where(AuditHead.id == 1).values(sha256=ev.sha256))
    return ev


def audit_rows(
    db: Session, lab_id: int, *, entity: str | None = None, entity_id: str | None = None, limit: int | None = None
) -> list[AuditEvent]:
    """A lab's events, newest first (optionally of one entity)."""
    q = select(AuditEvent).where(AuditEvent.lab_id == lab_id)
    if entity:
        q = q.where(AuditEvent.entity == entity)
    if entity_id:
        q = q.where(AuditEvent.entity_id == entity_id)
    q = q.order_by(AuditEvent.id.desc())
    return list(db.scalars(q.limit(limit) if limit else q))


def audit_csv(rows: list[AuditEvent]) -> str:
    """Events as CSV, oldest first (spreadsheet-safe cells)."""
    from ..lab.exports.csv import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "time_utc", "user", "action", "entity", "entity_id", "before", "after"])
    for r in sorted(rows, key=lambda r: r.id):
        w.writerow(
            [
                neutralise(x)
                for x in (
                    r.id,
                    r.at.isoformat(),
                    r.username,
                    r.action,
                    r.entity,
                    r.entity_id,
                    json.dumps(r.before, sort_keys=True) if r.before is not None else "",
                    json.dumps(r.after, sort_keys=True) if r.after is not None else "",
                )
            ]
        )
    return buf.getvalue()
