"""Release to the clinic: a signed batch's specimen results are released (or sent back for a retest), and each
released result is queued for every active endpoint as an HL7 v2 ORU^R01 message and, per release, one FHIR
transaction bundle; a delivery loop sends them with retries and writes every attempt to the delivery log.

A result is released only from a signed version, never in a lab in training mode, and only with a coded value
(``knowledge/lab-exports.toml``); calls that ask for a repeat (``knowledge/lab-day.toml`` [retest]) and a run the
controls invalidated put the specimen back on the waiting list instead. The payload stored with a delivery is
exactly what is sent, so the log shows what the clinic received.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ..errors import InputError
from ..lab.exports.calls import coding
from ..lab.exports.clinical import SpecimenResult
from ..lab.exports.fhir import Test
from ..lab.exports.fhir_transaction import transaction
from ..lab.exports.hl7v2 import oru_r01
from ..lab.exports.release import CANCELLED, final_call
from . import delivery as wire
from . import i18n, qcview
from .analysis import need_version
from .audit import record
from .day_db import MEASURED, RELEASED, Delivery, DeliveryAttempt, Endpoint, Order, Patient, Specimen
from .db import Assay, Batch, Lab, User, utcnow
from .exports import release_of
from .specimens import accession_of, lab_settings, retest, retest_calls

log = logging.getLogger("oligolab.service.clinic")
_ = i18n.gettext


def save_endpoint(db: Session, user: User, form: dict) -> Endpoint:
    ep = wire.Endpoint(
        str(form.get("name", "")).strip()[:100],
        str(form.get("kind", "")).strip(),
        str(form.get("url", "")).strip()[:500],
    )
    if not ep.name:
        raise InputError("endpoint", _("the endpoint needs a name"), _("give a name"))
    ep.check()
    row = Endpoint(
        lab_id=user.lab_id,
        name=ep.name,
        kind=ep.kind,
        url=ep.url,
        receiving_application=str(form.get("receiving_application", "")).strip()[:100],
        receiving_facility=str(form.get("receiving_facility", "")).strip()[:100],
    )
    db.add(row)
    db.flush()
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="create",
        entity="endpoint",
        entity_id=row.name,
        after={"kind": row.kind, "url": row.url},
    )
    return row


def _wire(row: Endpoint) -> wire.Endpoint:
    return wire.Endpoint(row.name, row.kind, row.url, row.receiving_application, row.receiving_facility)


def specimen_result(db: Session, order: Order, batch: Batch, sample: dict, release, lab: Lab) -> SpecimenResult:
    s, assay = db.get(Specimen, order.specimen_pk), db.get(Assay, order.assay_id)
    assert s is not None and assay is not None  # foreign keys
    p = db.get(Patient, s.patient_pk)
    assert p is not None  # a foreign key
    return SpecimenResult(
        accession_of(s, p, order, assay.name),
        sample,
        release,
        Test(assay.name, assay.loinc_code, assay.loinc_display),
        lab.name,
        f"batch {batch.id} '{batch.name}', version {release.version}"
        + (f", retest of order {order.retest_of}" if order.retest_of else ""),
        f"b{batch.id}",
        batch.created_at,
    )


def release_batch(db: Session, user: User, batch: Batch, qc_reason: str = "") -> dict:
    """Release the signed batch's measured orders: coded results are released and queued for the endpoints,
    the others go back to the waiting list as retests. A batch whose controls break a Westgard rejection rule
    is released only with the reviewer's reason (recorded). Returns counts (the caller commits)."""
    lab_language = lab_settings(db, user.lab_id).language
    if lab_settings(db, user.lab_id).training:
        raise InputError(
            f"batch {batch.id}",
            _("training mode: results are never released"),
            _("switch training mode off in the lab settings for real specimens"),
        )
    v = need_version(db, batch)
    rel = release_of(db, batch, v)
    if not rel.signed:
        raise InputError(f"batch {batch.id}", _("the batch is not signed"), _("review and sign it first"))
    qc_status, flags = qcview.batch_flags(db, batch)
    if qc_status == "reject" and not qc_reason.strip():
        raise InputError(
            f"batch {batch.id}",
            _(
                "the run's controls break the Westgard rules %(rules)s",
                rules=", ".join(sorted({f.rule for f in flags if f.severity == "reject"})),
            ),
            _("investigate the run; to release it anyway, give the reason"),
        )
    orders = list(db.scalars(select(Order).where(Order.batch_id == batch.id, Order.status == MEASURED)))
    if not orders:
        raise InputError(
            f"batch {batch.id}",
            _("nothing to release: no measured specimen of a worklist is on it"),
            _("upload the run from its worklist page"),
        )
    samples = {str(s["sample"]): s for s in v.result["samples"]}
    released: list[Order] = []
    retests: list[Order] = []
    for o in orders:
        specimen = db.get(Specimen, o.specimen_pk)
        assert specimen is not None  # a foreign key
        sid = specimen.specimen_id
        row = samples.get(sid)
        call = final_call(row) if row else ""
        status = rel.status(row) if row else CANCELLED
        if row is None or status == CANCELLED or call in retest_calls() or coding(call) is None:
            with i18n.language(lab_language):  # kept with the order and printed for the patient
                why = _(
                    "%(call)s in batch %(batch)s, version %(version)s",
                    call=_(call or "no result"),
                    batch=batch.id,
                    version=v.version,
                ) + (" — " + _("the run is invalid") if status == CANCELLED else "")
            retests.append(retest(db, user, o, why))
            continue
        o.status, o.version, o.call = RELEASED, v.version, call
        o.released_by, o.released_at = user.username, utcnow()
        released.append(o)
    queued = queue(db, batch.lab_id, released)
    record(
        db,
        user=user,
        lab_id=batch.lab_id,
        action="release",
        entity="batch",
        entity_id=batch.id,
        after={
            "version": v.version,
            "released": len(released),
            "retests": len(retests),
            "deliveries": queued,
            "westgard": qc_status,
            "qc_reason": qc_reason.strip(),
        },
    )
    return {"released": len(released), "retests": len(retests), "deliveries": queued}


def queue(db: Session, lab_id: int, orders: list[Order]) -> int:
    """Queue the released orders for every active endpoint of the lab (one HL7 message per order, one FHIR
    bundle per release); the payloads are made by the delivery loop, off the release request. Returns how many
    deliveries."""
    endpoints = list(db.scalars(select(Endpoint).where(Endpoint.lab_id == lab_id, Endpoint.active.is_(True))))
    now = utcnow()
    n = 0
    for ep in endpoints if orders else []:
        groups = [[o.id] for o in orders] if ep.kind == "mllp" else [[o.id for o in orders]]
        for ids in groups:
            control = f"OL{ids[0]}-{uuid.uuid4().hex[:10]}" if ep.kind == "mllp" else uuid.uuid4().hex
            db.add(
                Delivery(lab_id=lab_id, endpoint_id=ep.id, order_ids=ids, control_id=control, payload="", next_at=now)
            )
            n += 1
    return n


def payload(db: Session, d: Delivery, ep: Endpoint) -> str:
    """What a delivery sends: the ORU^R01 of its order, or the FHIR transaction bundle of its orders, made from
    the released version each order names."""
    results = []
    for oid in d.order_ids:
        o = db.get(Order, oid)
        assert o is not None  # a delivery names existing orders
        batch = db.get(Batch, o.batch_id)
        assert batch is not None  # a delivered order was measured in a batch
        v = need_version(db, batch, o.version)
        specimen = db.get(Specimen, o.specimen_pk)
        assert specimen is not None  # a foreign key
        sid = specimen.specimen_id
        row = next(s for s in v.result["samples"] if str(s["sample"]) == sid)
        lab = db.get(Lab, o.lab_id)
        assert lab is not None  # a foreign key
        results.append(specimen_result(db, o, batch, row, release_of(db, batch, v), lab))
    if ep.kind == "mllp":
        return oru_r01(
            results[0],
            control_id=d.control_id,
            at=utcnow(),
            receiving_application=ep.receiving_application,
            receiving_facility=ep.receiving_facility,
        )
    return json.dumps(transaction(results, timestamp=utcnow().isoformat()), ensure_ascii=False)


# ------------------------------------------------------------------------------------------------- sending


def _claim(factory: sessionmaker) -> int | None:
    """Take one due pending delivery (atomically: two service processes never send the same one)."""
    with factory.begin() as db:
        due = db.scalar(
            select(Delivery.id)
            .where(Delivery.status == "pending", Delivery.next_at <= utcnow())
            .order_by(Delivery.next_at, Delivery.id)
            .limit(1)
        )
        if due is None:
            return None
        done = db.execute(
            update(Delivery)
            .where(Delivery.id == due, Delivery.status == "pending")
            .values(status="sending", attempts=Delivery.attempts + 1)
        )
        return due if done.rowcount == 1 else None


def send_one(factory: sessionmaker, delivery_id: int) -> str:
    """One attempt of a claimed delivery, logged; the delivery becomes delivered, refused, pending again
    (with the backoff) or failed after the endpoint's attempts."""
    with factory.begin() as db:
        d = db.get(Delivery, delivery_id)
        row = db.get(Endpoint, d.endpoint_id)
        if not d.payload:  # made once, kept: the log shows exactly what was sent
            d.payload = payload(db, d, row)
        ep = _wire(row)
        body, control, number = d.payload, d.control_id, d.attempts
    attempt = wire.send(ep, body if ep.kind == "mllp" else json.loads(body), control_id=control, number=number)
    with factory.begin() as db:
        d = db.get(Delivery, delivery_id)
        db.add(
            DeliveryAttempt(
                delivery_id=d.id,
                number=number,
                at=attempt.at,
                delivered=attempt.delivered,
                retry=attempt.retry,
                detail=attempt.detail,
                seconds=attempt.seconds,
            )
        )
        d.detail = attempt.detail
        if attempt.delivered:
            d.status = "delivered"
        elif not attempt.retry:
            d.status = "refused"
        elif number >= ep.attempts:
            d.status = "failed"
        else:
            d.status = "pending"
            d.next_at = utcnow() + _dt.timedelta(seconds=wire.backoff(number, ep.backoff_s))
        return d.status


def resend(db: Session, user: User, delivery: Delivery) -> None:
    """Queue a refused or failed delivery again (after the receiver was fixed)."""
    if delivery.status not in ("refused", "failed"):
        raise InputError(
            f"delivery {delivery.id}",
            f"the delivery is {delivery.status}",
            "only a refused or failed delivery is sent again",
        )
    delivery.status, delivery.attempts, delivery.next_at = "pending", 0, utcnow()
    record(db, user=user, lab_id=delivery.lab_id, action="resend", entity="delivery", entity_id=delivery.id)


def drain(factory: sessionmaker) -> int:
    """Send every due delivery now (tests and the benchmark); returns how many attempts were made."""
    n = 0
    while (due := _claim(factory)) is not None:
        send_one(factory, due)
        n += 1
    return n


class DeliveryLoop:
    """A thread of the service process sending due deliveries (started and stopped with the app)."""

    def __init__(self, factory: sessionmaker, interval_s: float = 1.0):
        self.factory, self.interval_s = factory, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self.factory.begin() as db:  # a killed service left these mid-send: try them again
            db.execute(update(Delivery).where(Delivery.status == "sending").values(status="pending"))
        self._thread = threading.Thread(target=self._run, name="oligolab-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = drain(self.factory)
            except Exception:  # database down: try again next round, never kill the loop
                log.exception("delivery loop")
                sent = 0
            if not sent:
                self._stop.wait(self.interval_s)
