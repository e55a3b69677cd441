"""Specimens and orders of the lab's day: lab and user settings, accessioning (form, CSV, FHIR bundle), search
across batches, retests, and each specimen's results with the run they came from.

Accessioning stores every specimen of a file or none (one transaction); a specimen id already received by the
lab is refused, naming the line. Each accession is one audit event naming its specimens.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import knowledge
from ..errors import InputError
from ..lab.accessioning import (
    Accession,
    check_id,
    parse_accession_csv,
    parse_date,
    parse_fhir_orders,
    parse_sex,
    parse_time,
)
from . import i18n
from .audit import record
from .day_db import MEASURED, ON_PLATE, RETEST, WAITING, LabSettings, Order, Patient, Specimen, UserSettings
from .db import Assay, Batch, BatchVersion, User

#: most specimens one search page lists
SEARCH_ROWS = 100

_ = i18n.gettext


# ------------------------------------------------------------------------------------------------ settings


def lab_settings(db: Session, lab_id: int) -> LabSettings:
    """The lab's settings (defaults until an admin saves them)."""
    row = db.get(LabSettings, lab_id)
    return (
        row
        if row is not None
        else LabSettings(
            lab_id=lab_id, timezone=i18n.DEFAULT_ZONE, language=i18n.DEFAULT_LANGUAGE, header="", training=False
        )
    )


def save_lab_settings(
    db: Session, user: User, *, timezone: str, language: str, header: str, training: bool
) -> LabSettings:
    row = db.get(LabSettings, user.lab_id)
    before = None
    if row is None:
        row = LabSettings(lab_id=user.lab_id)
        db.add(row)
    else:
        before = {"timezone": row.timezone, "language": row.language, "training": row.training}
    row.timezone, row.language = i18n.check_zone(timezone.strip()), i18n.check_language(language.strip())
    row.header, row.training = header.strip()[:2000], bool(training)
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="update",
        entity="lab_settings",
        entity_id=user.lab_id,
        before=before,
        after={"timezone": row.timezone, "language": row.language, "training": row.training},
    )
    return row


def user_language(db: Session, user_id: int) -> str:
    row = db.get(UserSettings, user_id)
    return row.language if row is not None else ""


def save_user_language(db: Session, user: User, language: str) -> None:
    if language:
        i18n.check_language(language)
    row = db.get(UserSettings, user.id)
    if row is None:
        db.add(UserSettings(user_id=user.id, language=language))
    else:
        row.language = language


# ------------------------------------------------------------------------------------------- accessioning


def _assay_by_test(db: Session, lab_id: int, test: str, default_assay: int | None) -> Assay:
    assays = list(db.scalars(select(Assay).where(Assay.lab_id == lab_id, Assay.active.is_(True))))
    key = test.strip().lower()
    for a in assays:
        if key and key in (a.name.lower(), a.ruleset.lower(), a.loinc_code.lower()):
            return a
    chosen = next((a for a in assays if a.id == default_assay), None)
    if chosen is None:
        raise InputError(
            "accessioning",
            _("no assay of the lab is called '%(test)s'", test=test),
            _("name one of: %(names)s (or choose the assay)", names="; ".join(a.name for a in assays)),
        )
    return chosen


def _patient(db: Session, lab_id: int, a: Accession) -> Patient:
    find = select(Patient).where(Patient.lab_id == lab_id, Patient.patient_id == a.patient_id)
    p = db.scalar(find)
    if p is None:
        p = Patient(
            lab_id=lab_id,
            patient_id=a.patient_id,
            name=a.patient_name,
            pseudonym=a.pseudonym,
            birth_date=a.birth_date,
            sex=a.sex,
        )
        try:
            with db.begin_nested():  # another list may register the same patient at the same moment
                db.add(p)
        except IntegrityError:
            p = db.scalar(find)
            assert p is not None  # the registration that won the race
    return p


def store_accessions(
    db: Session, user: User, records: list[Accession], *, default_assay: int | None = None, source: str = "form"
) -> list[Order]:
    """Store received specimens and their orders (all or none; the caller commits)."""
    training = lab_settings(db, user.lab_id).training
    ids = [r.specimen_id for r in records]
    known = set(
        db.scalars(select(Specimen.specimen_id).where(Specimen.lab_id == user.lab_id, Specimen.specimen_id.in_(ids)))
    )
    orders = []
    for r in records:
        if r.specimen_id in known:
            raise InputError(
                r.where,
                _("specimen '%(id)s' was received before", id=r.specimen_id),
                _("relabel the tube or search for the earlier specimen"),
            )
        assay = _assay_by_test(db, user.lab_id, r.test, default_assay)
        p = _patient(db, user.lab_id, r)
        s = Specimen(
            lab_id=user.lab_id,
            specimen_id=r.specimen_id,
            patient_pk=p.id,
            collected_at=r.collected_at,
            submitter=r.submitter,
            specimen_type=r.specimen_type,
            source=r.where or source,
            training=training,
            created_by=user.username,
        )
        db.add(s)
        db.flush()
        o = Order(
            lab_id=user.lab_id,
            specimen_pk=s.id,
            assay_id=assay.id,
            placer=r.order_id,
            status=WAITING,
            created_by=user.username,
        )
        db.add(o)
        orders.append(o)
    db.flush()
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="accession",
        entity="specimens",
        entity_id=source[:100],
        after={"specimens": ids, "count": len(ids)},
    )
    return orders


def accession_file(db: Session, user: User, filename: str, data: bytes, *, default_assay: int | None) -> list[Order]:
    """Accession a CSV list or a FHIR bundle (told apart by content: a bundle is JSON)."""
    zone = lab_settings(db, user.lab_id).timezone
    name = filename or "upload"
    chosen = db.get(Assay, default_assay) if default_assay else None
    default_test = chosen.name if chosen is not None and chosen.lab_id == user.lab_id else ""
    if data.lstrip()[:1] == b"{":
        records = parse_fhir_orders(data, name, tz=zone, default_test=default_test)
    else:
        records = parse_accession_csv(data, name, tz=zone, default_test=default_test)
    return store_accessions(db, user, records, default_assay=default_assay, source=name)


def accession_form(db: Session, user: User, form: dict) -> list[Order]:
    """Accession one specimen typed into the form (times in the lab's zone)."""
    zone = i18n.ZoneInfo(lab_settings(db, user.lab_id).timezone)
    where = "form"
    sid = check_id(str(form.get("specimen_id", "")), "specimen id", where)
    name, pseudonym = str(form.get("patient_name", "")).strip(), str(form.get("pseudonym", "")).strip()
    if not name and not pseudonym:
        raise InputError(
            where, _("the patient has neither a name nor a pseudonymous code"), _("fill one of them"), record=sid
        )
    rec = Accession(
        specimen_id=sid,
        patient_id=check_id(str(form.get("patient_id", "")), "patient id", where),
        collected_at=parse_time(str(form.get("collected_at", "")), zone, where, record=sid),
        patient_name=name[:200],
        pseudonym=pseudonym[:200],
        birth_date=parse_date(str(form.get("birth_date", "")), where, record=sid),
        sex=parse_sex(str(form.get("sex", "")), where, record=sid),
        submitter=str(form.get("submitter", "")).strip()[:200],
        test="",
        specimen_type=str(form.get("specimen_type", "")).strip()[:200],
        order_id=str(form.get("order_id", "")).strip()[:64] or sid,
        where=f"form, {sid}",
    )
    return store_accessions(db, user, [rec], default_assay=int(form.get("assay_id") or 0) or None, source="form")


# -------------------------------------------------------------------------------------------------- orders


def waiting_orders(db: Session, lab_id: int, assay_id: int | None = None) -> list[Order]:
    """Orders waiting for a plate: retests first, then by collection time (oldest first)."""
    q = (
        select(Order)
        .join(Specimen, Specimen.id == Order.specimen_pk)
        .where(Order.lab_id == lab_id, Order.status == WAITING)
    )
    if assay_id:
        q = q.where(Order.assay_id == assay_id)
    return list(db.scalars(q.order_by(Order.retest_of.is_(None), Specimen.collected_at, Order.id)))


def waiting_count(db: Session, lab_id: int, assay_id: int | None = None) -> int:
    """How many orders wait for a plate (counted by the database: a morning's list is hundreds)."""
    q = select(func.count(Order.id)).where(Order.lab_id == lab_id, Order.status == WAITING)
    if assay_id:
        q = q.where(Order.assay_id == assay_id)
    return int(db.scalar(q) or 0)


def retest(db: Session, user: User | str, order: Order, reason: str) -> Order:
    """Send a measured specimen back to the waiting list: the order is closed as ``retest`` and a new order of
    the same specimen and assay, linked to it, waits (the caller commits)."""
    if order.status not in (ON_PLATE, MEASURED):
        raise InputError(
            f"order {order.id}",
            _("the order is %(state)s", state=_(order.status)),
            _("only a measured order is retested"),
        )
    reason = (reason or "").strip()
    if not reason:
        raise InputError(f"order {order.id}", _("a retest needs a reason"), _("say why the specimen is tested again"))
    order.status, order.reason = RETEST, reason
    name = user.username if isinstance(user, User) else user
    new = Order(
        lab_id=order.lab_id,
        specimen_pk=order.specimen_pk,
        assay_id=order.assay_id,
        placer=order.placer,
        status=WAITING,
        retest_of=order.id,
        reason=reason,
        created_by=name,
    )
    db.add(new)
    db.flush()
    record(
        db,
        user=user,
        lab_id=order.lab_id,
        action="retest",
        entity="order",
        entity_id=order.id,
        after={"new_order": new.id, "batch": order.batch_id, "reason": reason},
    )
    return new


def retest_calls() -> set[str]:
    return set(knowledge.lab_day()["retest"]["calls"])


# ------------------------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Found:
    specimen: Specimen
    patient: Patient
    orders: list[Order]


def search(db: Session, lab_id: int, query: str, *, limit: int = SEARCH_ROWS) -> list[Found]:
    """Specimens whose id, or whose patient's id, name or code, contains ``query`` (case-insensitive), newest
    first, with all their orders (every batch they were on)."""
    q = select(Specimen, Patient).join(Patient, Patient.id == Specimen.patient_pk).where(Specimen.lab_id == lab_id)
    text = query.strip()
    if text:
        like = f"%{text.lower()}%"
        q = q.where(
            or_(
                func.lower(Specimen.specimen_id).like(like),
                func.lower(Patient.patient_id).like(like),
                func.lower(Patient.name).like(like),
                func.lower(Patient.pseudonym).like(like),
            )
        )
    rows = list(db.execute(q.order_by(Specimen.received_at.desc(), Specimen.id.desc()).limit(limit)))
    by_specimen: dict[int, list[Order]] = {}
    if rows:
        for o in db.scalars(select(Order).where(Order.specimen_pk.in_([s.id for s, _ in rows])).order_by(Order.id)):
            by_specimen.setdefault(o.specimen_pk, []).append(o)
    return [Found(s, p, by_specimen.get(s.id, [])) for s, p in rows]


def get_specimen(db: Session, lab_id: int, specimen_id: str) -> Found | None:
    s = db.scalar(select(Specimen).where(Specimen.lab_id == lab_id, Specimen.specimen_id == specimen_id))
    if s is None:
        return None
    orders = list(db.scalars(select(Order).where(Order.specimen_pk == s.id).order_by(Order.id)))
    patient = db.get(Patient, s.patient_pk)
    assert patient is not None  # a foreign key
    return Found(s, patient, orders)


def accession_of(specimen: Specimen, patient: Patient, order: Order, test: str = "") -> Accession:
    """The accessioning record of an order (what the clinic's messages say about patient and specimen)."""
    return Accession(
        specimen_id=specimen.specimen_id,
        patient_id=patient.patient_id,
        collected_at=specimen.collected_at,
        patient_name=patient.name,
        pseudonym=patient.pseudonym,
        birth_date=patient.birth_date,
        sex=patient.sex,
        submitter=specimen.submitter,
        test=test,
        specimen_type=specimen.specimen_type,
        order_id=order.placer or specimen.specimen_id,
        where=specimen.source,
    )


def sample_of(
    db: Session, order: Order, specimen_id: str, cache: dict | None = None
) -> tuple[Batch | None, dict | None]:
    """The batch an order was measured in and its sample row in the version released (or the current one);
    ``cache`` keeps each version's rows for the next order of the same page."""
    if not order.batch_id:
        return None, None
    b = db.get(Batch, order.batch_id)
    if b is None or not b.current_version:
        return b, None
    key = (b.id, order.version or b.current_version)
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = version_samples(db, *key)
    return b, cache[key].get(specimen_id)


#: sample rows of stored versions kept per process (about 0.3 MB a 125-specimen version)
SAMPLES_KEPT = 64
_SAMPLES: OrderedDict[str, dict[str, dict]] = OrderedDict()
_SAMPLES_LOCK = threading.Lock()


def version_samples(db: Session, batch_id: int, number: int) -> dict[str, dict]:
    """Sample id -> sample row of one stored version. Only the result's samples are read (the database
    extracts them: a result is mostly wells and controls), and the rows are kept per process under the
    version's content hash, since a stored version never changes."""
    where = (BatchVersion.batch_id == batch_id, BatchVersion.version == number)
    content = db.scalar(select(BatchVersion.content_sha256).where(*where))
    if content is None:
        return {}
    with _SAMPLES_LOCK:
        if content and content in _SAMPLES:
            _SAMPLES.move_to_end(content)
            return _SAMPLES[content]
    rows = {str(s["sample"]): s for s in db.scalar(select(BatchVersion.result["samples"]).where(*where)) or []}
    if content:
        with _SAMPLES_LOCK:
            _SAMPLES[content] = rows
            while len(_SAMPLES) > SAMPLES_KEPT:
                _SAMPLES.popitem(last=False)
    return rows
