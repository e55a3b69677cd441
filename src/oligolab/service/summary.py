"""The daily summary and the per-batch summaries of batch lists (from each version's small summary, without
loading results)."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Assay, Batch, BatchVersion


def current_summaries(db: Session, rows: list[Batch]) -> dict[int, dict]:
    """Batch id -> summary of its current version, without loading the versions' results."""
    current = {(b.id, b.current_version) for b in rows if b.current_version}
    if not current:
        return {}
    q = select(BatchVersion.batch_id, BatchVersion.version, BatchVersion.summary).where(
        BatchVersion.batch_id.in_([bid for bid, _ in current])
    )
    return {bid: summary for bid, ver, summary in db.execute(q) if (bid, ver) in current}


def daily_summary(db: Session, lab_id: int, day: _dt.date) -> dict:
    """Batches uploaded on ``day`` (UTC) with their status, and the final calls of their current versions."""
    start = _dt.datetime.combine(day, _dt.time(0), _dt.UTC)
    rows = list(
        db.scalars(
            select(Batch)
            .where(Batch.lab_id == lab_id, Batch.created_at >= start, Batch.created_at < start + _dt.timedelta(days=1))
            .order_by(Batch.id)
        )
    )
    assays = {a.id: a.name for a in db.scalars(select(Assay).where(Assay.lab_id == lab_id))}
    per_assay: dict[str, dict] = {}
    status: dict[str, int] = {}
    summaries = current_summaries(db, rows)
    for b in rows:
        status[b.status] = status.get(b.status, 0) + 1
        if b.id not in summaries:
            continue
        counts = per_assay.setdefault(assays.get(b.assay_id, "?"), {"batches": 0, "samples": 0, "calls": {}})
        counts["batches"] += 1
        counts["samples"] += summaries[b.id].get("samples", 0)
        for call, n in summaries[b.id].get("calls", {}).items():
            counts["calls"][call] = counts["calls"].get(call, 0) + n
    return {"date": day.isoformat(), "batches": len(rows), "status": status, "assays": per_assay}
