"""Tables of the lab's day (migration 0005): lab and user settings, patients, specimens, orders, worklists,
delivery endpoints, deliveries and their attempts, control limits and training completions.

An *order* is one test ordered for one specimen. It waits, goes on a worklist (a plate), is measured by the
batch uploaded for that worklist, and is then released to the clinic or sent back for a retest: a retest is a
new order of the same specimen, waiting again, whose ``retest_of`` names the order it repeats. A released
order names the batch and version its result comes from.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow

#: order states
WAITING, ON_PLATE, MEASURED, RELEASED, RETEST, CANCELLED = (
    "waiting",
    "on_plate",
    "measured",
    "released",
    "retest",
    "cancelled",
)


class LabSettings(Base):
    """A lab's time zone, language, printout header, training mode (results never released)."""

    __tablename__ = "lab_settings"
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(8), default="en")
    header: Mapped[str] = mapped_column(Text, default="")  #: the printed result's letterhead lines
    training: Mapped[bool] = mapped_column(Boolean, default=False)


class UserSettings(Base):
    """A user's own language ('' = the lab's)."""

    __tablename__ = "user_settings"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), default="")


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("lab_id", "patient_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="", index=True)
    pseudonym: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[_dt.date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str] = mapped_column(String(10), default="unknown")


class Specimen(Base):
    __tablename__ = "specimens"
    __table_args__ = (
        UniqueConstraint("lab_id", "specimen_id"),
        Index("ix_specimens_lab_received", "lab_id", "received_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    specimen_id: Mapped[str] = mapped_column(String(64))
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    collected_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    submitter: Mapped[str] = mapped_column(String(200), default="")
    specimen_type: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(300), default="")  #: form, the CSV file and line, the bundle entry
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(100))


class Worklist(Base):
    """A plate laid out from waiting orders: its plate map, the reagent lot, and the batch uploaded for it."""

    __tablename__ = "worklists"
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id"))
    plate: Mapped[int] = mapped_column(Integer, default=96)
    multiplex: Mapped[bool] = mapped_column(Boolean, default=False)
    dyes: Mapped[dict] = mapped_column(JSON, default=dict)
    reagent_lot: Mapped[str] = mapped_column(String(100), default="")
    plate_map: Mapped[str] = mapped_column(Text)  #: CSV, as downloaded and uploaded
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True, index=True)
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Base):
    """One test of one specimen (see the module docstring for its states)."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_lab_status", "lab_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    specimen_pk: Mapped[int] = mapped_column(ForeignKey("specimens.id"), index=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id"))
    placer: Mapped[str] = mapped_column(String(64), default="")  #: the requester's order number
    status: Mapped[str] = mapped_column(String(20), default=WAITING, index=True)
    retest_of: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")  #: why a retest was ordered
    worklist_id: Mapped[int | None] = mapped_column(ForeignKey("worklists.id"), nullable=True, index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)  #: the batch version released
    call: Mapped[str] = mapped_column(String(50), default="")
    released_by: Mapped[str] = mapped_column(String(100), default="")
    released_at: Mapped[_dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Endpoint(Base):
    """A clinic's receiver of results (HL7 v2 over MLLP, or a FHIR server)."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("lab_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))  #: mllp | fhir
    url: Mapped[str] = mapped_column(String(500))
    receiving_application: Mapped[str] = mapped_column(String(100), default="")
    receiving_facility: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Delivery(Base):
    """One result (or bundle) to one endpoint: the exact payload sent, its state and the next attempt's time."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"))
    order_ids: Mapped[list] = mapped_column(JSON, default=list)
    control_id: Mapped[str] = mapped_column(String(64))  #: MSH-10, or the bundle's id
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(20), default="pending", index=True
    )  # pending|sending|delivered|refused|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryAttempt(Base):
    """The delivery log: every attempt, its answer and how long it took."""

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    retry: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class QcLimit(Base):
    """A lab's own control limits for one series (mean and SD in cycles), e.g. from the lot certificate."""

    __tablename__ = "qc_limits"
    __table_args__ = (UniqueConstraint("lab_id", "assay_id", "control", "target", "lot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id"))
    control: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(50))
    lot: Mapped[str] = mapped_column(String(100), default="")
    mean: Mapped[float] = mapped_column(Float)
    sd: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(200), default="")


class TrainingCompletion(Base):
    """A user has done one guided exercise."""

    __tablename__ = "training_completions"
    __table_args__ = (UniqueConstraint("user_id", "exercise"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"))
    exercise: Mapped[str] = mapped_column(String(50))
    completed_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class QcPoints(Base):
    """The control Cq values and NTC counts of one result version, kept so QC views never reload results."""

    __tablename__ = "qc_points"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id"), index=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id"))
    at: Mapped[_dt.datetime] = mapped_column(UTCDateTime)
    lot: Mapped[str] = mapped_column(String(100), default="")
    points: Mapped[list] = mapped_column(JSON, default=list)  #: [control, target, cq] triples
    ntc_wells: Mapped[int] = mapped_column(Integer, default=0)
    ntc_amplified: Mapped[int] = mapped_column(Integer, default=0)
