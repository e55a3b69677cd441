"""The queue the service owns: batches waiting in the database are analysed one at a time by worker threads.

A batch row is the job. A worker claims it (queued -> running, attempts + 1) in one transaction, analyses it
with the lab core, and stores the version and the new status in one transaction, so a result is never half
written. A database outage makes the worker wait and retry; a service killed mid-analysis leaves the batch
'running', and :func:`recover` puts it back in the queue on the next start (or marks it failed after
``MAX_ATTEMPTS``). Nothing is lost: the upload is in the database since the upload request committed.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker

from ..errors import InputError
from . import analysis, watch
from .audit import record
from .db import Batch

log = logging.getLogger("oligolab.service.worker")
MAX_ATTEMPTS = 3


def recover(factory: sessionmaker) -> int:
    """On start: batches left 'running' by a killed service go back to the queue (or fail after too many
    attempts). Returns how many were recovered."""
    with factory.begin() as db:
        stuck = list(db.scalars(select(Batch).where(Batch.status == "running")))
        for b in stuck:
            if b.attempts >= MAX_ATTEMPTS:
                b.status, b.progress = "failed", "failed"
                b.error = f"the analysis was interrupted {b.attempts} times; upload the run again"
            else:
                b.status, b.progress = "queued", "queued again after a service restart"
        db.flush()  # every batch row first, then the audit chain's head (one lock order everywhere)
        for b in stuck:
            record(
                db,
                user="system",
                lab_id=b.lab_id,
                action="recover",
                entity="batch",
                entity_id=b.id,
                before={"status": "running"},
                after={"status": b.status},
            )
    return len(stuck)


def claim(factory: sessionmaker) -> tuple[int, int] | None:
    """Take the oldest queued batch (atomically: two workers never take the same one); returns its id and
    attempt number, which only this claim may store a result under."""
    with factory.begin() as db:
        q = select(Batch.id).where(Batch.status == "queued").order_by(Batch.id).limit(1)
        if db.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        batch_id = db.scalar(q)
        if batch_id is None:
            return None
        done = db.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == "queued")
            .values(status="running", progress="starting", attempts=Batch.attempts + 1)
        )
        if done.rowcount != 1:
            return None
        return batch_id, db.scalar(select(Batch.attempts).where(Batch.id == batch_id))


def _progress(factory: sessionmaker, batch_id: int, message: str) -> None:
    with factory.begin() as db:
        db.execute(update(Batch).where(Batch.id == batch_id).values(progress=message[:300]))


def process(factory: sessionmaker, batch_id: int, attempt: int) -> str:
    """Analyse one claimed batch; returns its final status."""
    with factory() as db:
        batch = db.get(Batch, batch_id)
        _progress(factory, batch_id, f"analysing {batch.run_filename}")
        try:
            ruleset = analysis.batch_ruleset(db, batch)
            document = analysis.compute(analysis.document_job, analysis.job_for(db, batch, ruleset))
        except InputError as exc:
            error = str(exc)
            document = None
        except (OperationalError, DBAPIError):
            raise
        except Exception as exc:  # a fault in the analysis fails the batch, never the service
            log.exception("analysis of batch %s failed", batch_id)
            error = f"analysis failed ({type(exc).__name__}: {exc}); contact the lab's administrator"
            document = None
    with factory.begin() as db:
        batch = db.get(Batch, batch_id)
        if batch.status != "running" or batch.attempts != attempt:  # recovered and re-claimed meanwhile
            return batch.status
        if document is None:
            batch.status, batch.progress, batch.error = "failed", "failed", error
            record(
                db,
                user="system",
                lab_id=batch.lab_id,
                action="analysis_failed",
                entity="batch",
                entity_id=batch.id,
                after={"error": error},
            )
            return "failed"
        v = analysis.store_version(
            db, batch, document, ruleset, user="system", reason="automatic analysis", overrides=[]
        )
        batch.status, batch.progress, batch.error = "analysed", "done", ""
        s = v.result["summary"]
        record(
            db,
            user="system",
            lab_id=batch.lab_id,
            action="analyse",
            entity="batch",
            entity_id=batch.id,
            before={"status": "running"},
            after={
                "status": "analysed",
                "version": v.version,
                "valid": s.get("valid"),
                "calls": s.get("calls", {}),
                "rules": v.result["provenance"].get("rules"),
                "content_sha256": v.content_sha256,
            },
        )
        return "analysed"


def run_once(factory: sessionmaker) -> bool:
    """Process one queued batch if there is one; True if one was processed."""
    claimed = claim(factory)
    if claimed is None:
        return False
    process(factory, *claimed)
    return True


def drain(factory: sessionmaker) -> int:
    """Process every queued batch now (tests, the walkthrough); returns how many."""
    n = 0
    while run_once(factory):
        n += 1
    return n


class Worker:
    """Background threads that poll the queue; the service starts them and stops them on shutdown."""

    def __init__(
        self,
        factory: sessionmaker,
        *,
        threads: int = 1,
        poll_s: float = 0.5,
        watch_inputs: watch.WatchInputs | None = None,
    ):
        self.factory, self.threads, self.poll_s = factory, threads, poll_s
        self.watch_inputs = watch_inputs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"oligolab-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.watch_inputs is not None:
            t = threading.Thread(target=self._watch, name="oligolab-assay-watch", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        backoff = self.poll_s
        while not self._stop.is_set():
            claimed = None
            try:
                claimed = claim(self.factory)
                if claimed is not None:
                    process(self.factory, *claimed)
                    backoff = self.poll_s
                    continue
                backoff = self.poll_s
            except (OperationalError, DBAPIError) as exc:  # database restarting: wait, then try again
                log.warning("database unavailable (%s); retrying", str(exc).splitlines()[0])
                backoff = min(backoff * 2, 5.0)
                if claimed is not None:
                    self._requeue(claimed[0])
            self._stop.wait(backoff)

    def _requeue(self, batch_id: int) -> None:
        """Put a batch whose result could not be stored during an outage back in the queue, once the database
        answers again (its upload is safe in the database; the analysis is simply repeated)."""
        while not self._stop.is_set():
            try:
                with self.factory.begin() as db:
                    db.execute(
                        update(Batch)
                        .where(Batch.id == batch_id, Batch.status == "running")
                        .values(status="queued", progress="queued again after a database outage")
                    )
                return
            except (OperationalError, DBAPIError):
                self._stop.wait(1.0)

    def _watch(self) -> None:
        """Run assay watch once at start if no result exists for the bundled data (outside the batch queue)."""
        try:
            with self.factory() as db:
                if watch.latest(db, self.watch_inputs) is not None:
                    return
            with self.factory.begin() as db:
                watch.run_watch(db, self.watch_inputs)
        except Exception:  # assay watch is advisory: never take the service down
            log.exception("assay watch failed")
