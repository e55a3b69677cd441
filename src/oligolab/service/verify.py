"""``oligolab serve verify`` and the admin page's check: recompute the audit chain, every version's content
hash and every sign-off, and compare users and rule sets with their last audited state; name each break.

What it finds: an event edited, removed, inserted out of chain or reordered (the chain breaks there), events
removed from the end (the chain head disagrees), a version whose stored content no longer gives the hash recorded
when it was made, a sign-off whose content hash, signer or time differs from its audited sign event (or has none),
a batch marked signed without a sign-off, a user whose role, lab, active state or password hash differs from the
last audited change, a lab rule set changed outside the service. See docs/serve.md for what it cannot find.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from .analysis import content_sha256
from .audit import GENESIS, sha_of_event
from .db import AuditEvent, AuditHead, Batch, BatchVersion, RuleSetRow, User


@dataclass(frozen=True)
class Break:
    """One thing that is not as the audit trail says; ``lab_id`` None: the whole database."""

    where: str
    problem: str
    lab_id: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class Report:
    events: int = 0
    versions: int = 0
    signoffs: int = 0
    users: int = 0
    head: tuple[int, str] = (0, "")
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def for_lab(self, lab_id: int) -> list[Break]:
        return [b for b in self.breaks if b.lab_id in (None, lab_id)]


@dataclass
class _Audited:
    """What the audit chain says, collected while walking it."""

    made: dict[tuple[int, int], str] = field(default_factory=dict)  # (batch, version) -> content hash
    signed: dict[tuple[int, int], AuditEvent] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)  # user name -> last audited state
    rulesets: dict[tuple[int, str], str] = field(default_factory=dict)  # (lab, name) -> sha256


def _walk_chain(db: Session, report: Report) -> _Audited:
    seen = _Audited()
    prev, expected = GENESIS, 1
    for ev in db.scalars(select(AuditEvent).order_by(AuditEvent.seq, AuditEvent.id).execution_options(yield_per=500)):
        report.events += 1
        where = f"audit event {ev.seq} (id {ev.id}, {ev.action} {ev.entity} {ev.entity_id} by {ev.username})"
        if ev.seq != expected:
            report.breaks.append(
                Break(
                    where, f"is number {ev.seq} where {expected} was expected: events removed or inserted out of order"
                )
            )
        if ev.prev_sha256 != prev:
            report.breaks.append(
                Break(
                    where,
                    "does not carry the hash of the event before it: an event before it "
                    "was removed, changed or inserted",
                )
            )
        if sha_of_event(ev) != ev.sha256:
            report.breaks.append(
                Break(
                    where,
                    "its content no longer gives its hash: it was edited after it was written (or forged)",
                    ev.lab_id,
                )
            )
        prev, expected = ev.sha256, (ev.seq or expected) + 1
        _collect(seen, ev)
    head = db.get(AuditHead, 1)
    report.head = (head.seq, head.sha256) if head else (0, "")
    if head is not None and (head.seq != expected - 1 or (head.seq and head.sha256 != prev)):
        report.breaks.append(
            Break(
                "audit chain head",
                f"says {head.seq} events ending in {head.sha256[:12]}…, the "
                f"table ends at {expected - 1} ({prev[:12]}…): events were removed or added "
                "outside the service",
            )
        )
    return seen


def _collect(seen: _Audited, ev: AuditEvent) -> None:
    after = ev.after if isinstance(ev.after, dict) else {}
    if ev.entity == "batch" and ev.action in ("analyse", "correct") and after.get("content_sha256"):
        seen.made[(int(ev.entity_id), int(after["version"]))] = after["content_sha256"]
    elif ev.entity == "batch" and ev.action == "sign":
        seen.signed[(int(ev.entity_id), int(after.get("version", 0)))] = ev
    elif ev.entity == "user" and (after.get("state") or after.get("role")):
        # events written before states were recorded (schema 0001) carry the role only
        seen.users[ev.entity_id] = after.get("state") or {"username": ev.entity_id, "role": after["role"]}
    elif ev.entity == "ruleset" and after.get("sha256") and ev.lab_id is not None:
        seen.rulesets[(ev.lab_id, ev.entity_id)] = after["sha256"]


def _check_versions(db: Session, report: Report, seen: _Audited) -> None:
    batches = {b.id: b for b in db.scalars(select(Batch))}
    q = (
        select(BatchVersion)
        .options(
            undefer(BatchVersion.result),
            undefer(BatchVersion.curves),
            undefer(BatchVersion.report_html),
            undefer(BatchVersion.ruleset_text),
        )
        .order_by(BatchVersion.id)
        .execution_options(yield_per=20)
    )
    for v in db.scalars(q):
        report.versions += 1
        b = batches.get(v.batch_id)
        where = f"batch {v.batch_id} version {v.version}"
        if b is None:
            report.breaks.append(Break(where, "belongs to no batch"))
            continue
        sha = content_sha256(b, v) if v.content_sha256 else ""
        audited = seen.made.get((v.batch_id, v.version))
        if v.content_sha256 and sha != v.content_sha256:
            report.breaks.append(
                Break(
                    where,
                    "its stored content no longer gives the hash stored with it: results, "
                    "curves, report or rule set were changed",
                    b.lab_id,
                )
            )
        if audited and audited != v.content_sha256:
            report.breaks.append(
                Break(where, "its hash differs from the one the audit trail recorded when it was made", b.lab_id)
            )
        _check_signoff(report, seen, b, v, sha)
        db.expunge(v)


def _check_signoff(report: Report, seen: _Audited, b: Batch, v: BatchVersion, sha: str) -> None:
    where = f"batch {b.id} version {v.version}"
    event = seen.signed.pop((b.id, v.version), None)
    s = v.signoff
    if s is None:
        if event is not None:
            report.breaks.append(
                Break(where, f"the audit trail says {event.username} signed it, but its sign-off is gone", b.lab_id)
            )
        if b.status == "signed" and b.current_version == v.version:
            report.breaks.append(
                Break(f"batch {b.id}", "is marked signed but its current version has no sign-off", b.lab_id)
            )
        return
    report.signoffs += 1
    after = (event.after or {}) if event is not None else {}  # an event without a record: a break, not a crash
    if event is None:
        report.breaks.append(
            Break(where, f"carries a sign-off by {s.signed_by} that the audit trail does not record", b.lab_id)
        )
    elif event.username != s.signed_by or (after.get("content_sha256") or "") != s.content_sha256:
        report.breaks.append(
            Break(
                where,
                f"its sign-off (by {s.signed_by}) differs from the audited sign event (by {event.username})",
                b.lab_id,
            )
        )
    if v.content_sha256 and s.content_sha256 != sha:
        report.breaks.append(
            Break(
                where,
                "the signed content hash is not the hash of the content stored now: the signed results were changed",
                b.lab_id,
            )
        )


def _check_users(db: Session, report: Report, seen: _Audited) -> None:
    from .auth import user_state

    for u in db.scalars(select(User)):
        report.users += 1
        audited = seen.users.get(u.username)
        if audited is None:
            report.breaks.append(
                Break(f"user {u.username}", "has no audited creation or change: added outside the service", u.lab_id)
            )
        elif any(audited[k] != v for k, v in user_state(u).items() if k in audited):
            diff = ", ".join(
                f"{k} {audited.get(k)!r} -> {v!r}" for k, v in user_state(u).items() if k in audited and audited[k] != v
            )
            report.breaks.append(Break(f"user {u.username}", f"differs from its last audited state ({diff})", u.lab_id))


def _check_rulesets(db: Session, report: Report, seen: _Audited) -> None:
    for row in db.scalars(select(RuleSetRow)):
        audited = seen.rulesets.get((row.lab_id, row.name))
        actual = hashlib.sha256(row.yaml_text.encode()).hexdigest()
        if audited != actual or row.sha256 != actual:
            report.breaks.append(Break(f"rule set {row.name}", "differs from its last audited version", row.lab_id))


def verify(db: Session) -> Report:
    """Walk the whole database; every break found, each named (one line each)."""
    report = Report()
    seen = _walk_chain(db, report)
    _check_versions(db, report, seen)
    for (batch_id, number), event in seen.signed.items():
        report.breaks.append(
            Break(
                f"batch {batch_id} version {number}",
                f"the audit trail says {event.username} signed it, but the version is gone",
                event.lab_id,
            )
        )
    _check_users(db, report, seen)
    _check_rulesets(db, report, seen)
    return report
