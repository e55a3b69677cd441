"""Worklists of the service: waiting orders of one assay and its rule set's controls laid out on a plate
(:func:`oligolab.lab.worklist.build_worklist`), the plate map kept with the worklist, and the run uploaded for
it analysed with exactly that plate map (nobody types a plate map)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InputError
from ..lab.worklist import build_worklist
from . import i18n
from .audit import record
from .day_db import MEASURED, ON_PLATE, Order, Specimen, Worklist
from .db import Assay, Batch, User
from .rulesets import resolve_ruleset
from .specimens import lab_settings, waiting_orders
from .uploads import create_batch

#: dyes of a multiplex plate when the form gives none: target -> dye, in the rule set's target order
DEFAULT_DYES = ("FAM", "HEX", "Cy5", "ROX", "Cy5.5")

_ = i18n.gettext


def parse_dyes(text: str, targets: list[str]) -> dict[str, str]:
    """``N1=FAM, N2=HEX, RP=Cy5`` -> {N1: FAM, ...}; empty text gives the default dyes in target order."""
    if not text.strip():
        return dict(zip(targets, DEFAULT_DYES))
    out = {}
    for part in text.replace(";", ",").split(","):
        target, sep, dye = part.partition("=")
        if not sep or not target.strip() or not dye.strip():
            raise InputError(
                "dyes", _("'%(part)s' is not TARGET=DYE", part=part.strip()), _("write e.g. N1=FAM, N2=HEX, RP=Cy5")
            )
        out[target.strip()] = dye.strip()
    return out


def create(
    db: Session,
    user: User,
    *,
    assay_id: int,
    plate: int,
    multiplex: bool = False,
    dyes: str = "",
    reagent_lot: str = "",
) -> Worklist:
    """A worklist of the assay's waiting orders (retests first, then the oldest); the orders placed go on the
    plate, the others keep waiting (the caller commits)."""
    assay = db.get(Assay, assay_id)
    if assay is None or assay.lab_id != user.lab_id:
        raise InputError("worklist", _("unknown assay"), _("choose one of your lab's assays"))
    waiting = waiting_orders(db, user.lab_id, assay.id)
    if not waiting:
        raise InputError(
            "worklist", _("no specimen waits for %(assay)s", assay=assay.name), _("accession specimens first")
        )
    ruleset = resolve_ruleset(db, user.lab_id, assay.ruleset)
    specimen_ids = dict(
        db.execute(
            select(Specimen.id, Specimen.specimen_id).where(Specimen.id.in_([o.specimen_pk for o in waiting]))
        ).all()
    )
    names = [specimen_ids[o.specimen_pk] for o in waiting]
    layout = build_worklist(
        names,
        ruleset,
        plate=plate,
        multiplex=multiplex,
        dyes=parse_dyes(dyes, list(ruleset.targets)) if multiplex else None,
    )
    wl = Worklist(
        lab_id=user.lab_id,
        assay_id=assay.id,
        plate=plate,
        multiplex=multiplex,
        dyes=parse_dyes(dyes, list(ruleset.targets)) if multiplex else {},
        reagent_lot=reagent_lot.strip()[:100],
        plate_map=layout.plate_map_csv(),
        training=lab_settings(db, user.lab_id).training,
        created_by=user.username,
    )
    db.add(wl)
    db.flush()
    placed = set(layout.placed)
    for o in waiting:
        if specimen_ids[o.specimen_pk] in placed:
            o.status, o.worklist_id = ON_PLATE, wl.id
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="create",
        entity="worklist",
        entity_id=wl.id,
        after={
            "assay": assay.name,
            "plate": plate,
            "multiplex": multiplex,
            "reagent_lot": wl.reagent_lot,
            "specimens": list(layout.placed),
            "still_waiting": len(layout.waiting),
        },
    )
    return wl


def orders_of(db: Session, worklist: Worklist) -> list[Order]:
    return list(db.scalars(select(Order).where(Order.worklist_id == worklist.id).order_by(Order.id)))


def upload_run(db: Session, user: User, worklist: Worklist, run_name: str, run_bytes: bytes, name: str = "") -> Batch:
    """The instrument run of a worklist: stored and queued as a batch analysed with the worklist's plate map;
    the worklist's orders are measured by it (the caller commits)."""
    if worklist.batch_id is not None:
        raise InputError(
            f"worklist {worklist.id}",
            _("a run was uploaded for it already (batch %(batch)s)", batch=worklist.batch_id),
            _("make a new worklist for a new plate"),
        )
    batch = create_batch(
        db,
        user,
        assay_id=worklist.assay_id,
        name=name or _("worklist %(n)s", n=worklist.id),
        run_name=run_name,
        run_bytes=run_bytes,
        map_name=f"worklist-{worklist.id}.csv",
        map_bytes=worklist.plate_map.encode("utf-8"),
    )
    worklist.batch_id = batch.id
    for o in orders_of(db, worklist):
        if o.status == ON_PLATE:
            o.status, o.batch_id = MEASURED, batch.id
    return batch


def for_batch(db: Session, batch_id: int) -> Worklist | None:
    return db.scalar(select(Worklist).where(Worklist.batch_id == batch_id))
