"""The service's audit trail: who did what, when, with the record before and after.

Events are appended in the transaction of the change they describe (they commit together or not at all); the
database refuses UPDATE and DELETE of them (triggers of the migrations).
"""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..reports import to_json
from .db import AuditEvent, User, utcnow


def plain(obj: object) -> object:
    """``obj`` as plain JSON values (what a JSON column stores and gives back)."""
    return None if obj is None else json.loads(to_json(obj))


def record(db: Session, *, user: User | str, lab_id: int | None, action: str, entity: str, entity_id: object,
           before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Append one audit event in the caller's transaction (it commits with the change it describes)."""
    name = user.username if isinstance(user, User) else user
    ev = AuditEvent(lab_id=lab_id, at=utcnow(), username=name, action=action, entity=entity,
                    entity_id=str(entity_id), before=plain(before), after=plain(after))
    db.add(ev)
    return ev


def audit_rows(db: Session, lab_id: int, *, entity: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[AuditEvent]:
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
        w.writerow([neutralise(x) for x in (
            r.id, r.at.isoformat(), r.username, r.action, r.entity, r.entity_id,
            json.dumps(r.before, sort_keys=True) if r.before is not None else "",
            json.dumps(r.after, sort_keys=True) if r.after is not None else "")])
    return buf.getvalue()
