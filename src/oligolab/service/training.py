"""Training: a lab in training mode (marked on every page, results never released or sent) and the guided
exercises a new technician works through on the shipped real runs, each completed when the user has done it
in the service (found in the audit trail) and recorded per user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import i18n
from .audit import record
from .day_db import TrainingCompletion
from .db import AuditEvent, User


@dataclass(frozen=True)
class Exercise:
    key: str
    title: str  #: English; translated where shown
    how: str
    done_when: tuple[str, str]  #: the audit (action, entity) that completes it


N_ = i18n.N_
EXERCISES = (
    Exercise(
        "accession",
        N_("Accession specimens"),
        N_("On Specimens, import the example CSV list (or type one specimen into the form)."),
        ("accession", "specimens"),
    ),
    Exercise(
        "worklist",
        N_("Build a worklist"),
        N_("On Worklists, lay the waiting specimens out on a plate; print the labels and the plate map."),
        ("create", "worklist"),
    ),
    Exercise(
        "upload",
        N_("Upload the run"),
        N_("On the worklist, upload the instrument run file of the plate (the guide has a real one)."),
        ("upload", "batch"),
    ),
    Exercise(
        "review",
        N_("Review the results"),
        N_("On the batch, look at the curves of a held sample, then accept or correct it with a reason."),
        ("correct", "batch"),
    ),
    Exercise("sign", N_("Sign the batch"), N_("As a reviewer, sign the reviewed version."), ("sign", "batch")),
    Exercise(
        "retest",
        N_("Send a specimen for a retest"),
        N_("On a specimen's page, send a measured specimen back to the waiting list with a reason."),
        ("retest", "order"),
    ),
)


def progress(db: Session, user: User) -> list[tuple[Exercise, object]]:
    """Each exercise with the time the user completed it (None: not yet); completions found in the audit
    trail are recorded on the way."""
    have = {
        c.exercise: c.completed_at
        for c in db.scalars(select(TrainingCompletion).where(TrainingCompletion.user_id == user.id))
    }
    missing = [e for e in EXERCISES if e.key not in have]
    if missing:
        done = {
            (a, e): at
            for a, e, at in db.execute(
                select(AuditEvent.action, AuditEvent.entity, AuditEvent.at)
                .where(
                    AuditEvent.lab_id == user.lab_id,
                    AuditEvent.username == user.username,
                    AuditEvent.action.in_({e.done_when[0] for e in missing}),
                )
                .order_by(AuditEvent.id)
            )
        }
        for e in missing:
            at = done.get(e.done_when)
            if at is not None:
                db.add(TrainingCompletion(user_id=user.id, lab_id=user.lab_id, exercise=e.key, completed_at=at))
                record(db, user=user, lab_id=user.lab_id, action="complete", entity="training", entity_id=e.key)
                have[e.key] = at
    return [(e, have.get(e.key)) for e in EXERCISES]
