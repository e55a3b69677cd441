"""Uploads: a run file and its plate map are checked the way the analysis will read them, then stored whole with
the batch, with the rule set the batch will be analysed with (resolved once, here)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InputError
from ..lab.analysis import load_runs
from ..lab.platemap import apply_plate_map, read_plate_map
from ..lab.rules import RuleSet
from ..lab.run import Run
from .analysis import compute
from .audit import record
from .db import Assay, Batch, User, utcnow
from .rulesets import frozen, resolve_ruleset

#: largest run file or plate map accepted (bytes)
MAX_UPLOAD_BYTES = 32 << 20
#: largest total a zip upload (RDML) may unpack to, and the largest unpacked/packed ratio (zip-bomb guard)
MAX_UNPACKED_BYTES = 256 << 20
MAX_ZIP_RATIO = 200
RUN_SUFFIXES = (".rdml", ".rdm", ".xml", ".csv", ".tsv", ".txt", ".xlsx", ".xls")
MAP_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")


def _check_size(data: bytes, filename: str, what: str) -> None:
    if not data:
        raise InputError(filename or what, f"the {what} is empty", f"choose the {what} file again")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            filename, f"the {what} is larger than {MAX_UPLOAD_BYTES >> 20} MiB", "upload one instrument run per batch"
        )


def _check_zip(data: bytes, filename: str) -> None:
    """Refuse zip bombs before any reader unpacks the upload."""
    if not data.startswith(b"PK"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise InputError(filename, "a damaged zip archive", "export the run from the instrument again") from None
    total = sum(i.file_size for i in infos)
    if len(infos) > 100 or total > MAX_UNPACKED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise InputError(
            filename,
            f"the archive unpacks to {total >> 20} MiB in {len(infos)} files (refused as a possible zip bomb)",
            "upload the run file exported by the instrument",
        )


def _safe_name(filename: str, suffixes: tuple[str, ...], what: str) -> str:
    name = Path((filename or "").replace("\\", "/")).name.strip()[:200]
    if not name:
        raise InputError(what, "no file was chosen", f"choose the {what} file")
    if Path(name).suffix.lower() not in suffixes:
        raise InputError(name, f"not a {what} file type", "use one of: " + ", ".join(suffixes))
    return name


@contextlib.contextmanager
def upload_files(
    run_name: str, run_bytes: bytes, map_name: str = "", map_bytes: bytes | None = None
) -> Iterator[tuple[Path, Path | None]]:
    """The upload as files in a private temporary folder, removed afterwards whatever happens."""
    with tempfile.TemporaryDirectory(prefix="oligolab-batch-") as tmp:
        run_path = Path(tmp) / run_name
        run_path.write_bytes(run_bytes)
        map_path = None
        if map_bytes:
            map_path = Path(tmp) / ("map-" + map_name)
            map_path.write_bytes(map_bytes)
        yield run_path, map_path


def one_run(run_path: Path, *, validate: bool = True) -> Run:
    """The single run of an uploaded file (InputError when it holds several)."""
    runs = load_runs(run_path, validate=validate)
    if len(runs) != 1:
        raise InputError(
            run_path.name,
            f"the file holds {len(runs)} runs",
            "export one run per file and upload each as its own batch",
        )
    return runs[0]


def _read_named(name: str, read: Callable[[], Run]) -> Run:
    """Run a reader on an uploaded file; its errors name the uploaded file, never the temporary copy, and a
    reader failing on hostile bytes gives a one-line refusal, not a server fault."""
    try:
        return read()
    except InputError as exc:
        raise InputError(name, exc.problem, exc.fix, line=exc.line, record=exc.record) from None
    except Exception as exc:
        raise InputError(
            name,
            f"could not be read ({type(exc).__name__})",
            "upload the file exported by the instrument (RDML or a supported table)",
        ) from None


def _check_targets(run: Run, ruleset: RuleSet, where: str) -> None:
    used = sorted(set(run.layout.loc[run.layout["role"] != "empty", "target"].astype(str)))
    if not any(ruleset.target_of(t) for t in used):
        raise InputError(
            where,
            f"none of the plate's targets ({', '.join(used[:6])}{'…' if len(used) > 6 else ''}) "
            f"belongs to the assay's rule set ({', '.join(ruleset.targets)})",
            "choose the right assay, or upload the plate map that names the targets",
        )


def validate_upload(
    run_name: str, run_bytes: bytes, map_name: str, map_bytes: bytes | None, ruleset: RuleSet | None = None
) -> str:
    """Check an upload the way the analysis will read it; returns a one-line description of the run.

    InputError (naming the uploaded file, line or well, and the fix) on anything the analysis would refuse.
    """
    run_name = _safe_name(run_name, RUN_SUFFIXES, "run")
    _check_size(run_bytes, run_name, "run file")
    _check_zip(run_bytes, run_name)
    if map_bytes:
        map_name = _safe_name(map_name, MAP_SUFFIXES, "plate map")
        _check_size(map_bytes, map_name, "plate map")
        _check_zip(map_bytes, map_name)
    with upload_files(run_name, run_bytes, map_name, map_bytes) as (run_path, map_path):
        run = _read_named(run_name, lambda: one_run(run_path))
        if map_path is not None:
            run = _read_named(map_name, lambda: apply_plate_map(run, read_plate_map(map_path), map_name))
        if (run.layout["role"] == "empty").all():
            raise InputError(
                run_name,
                "the run has no plate layout (samples, targets, roles)",
                "upload the plate map with it (columns well, sample, role, target)",
            )
        if ruleset is not None:
            _check_targets(run, ruleset, map_name if map_bytes else run_name)
        return run.describe()


def duplicates(db: Session, batch: Batch, limit: int = 10) -> list[int]:
    """Other batches of the same lab with the same run file (same SHA-256), the first ``limit`` of them."""
    return list(
        db.scalars(
            select(Batch.id)
            .where(Batch.lab_id == batch.lab_id, Batch.run_sha256 == batch.run_sha256, Batch.id != batch.id)
            .order_by(Batch.id)
            .limit(limit)
        )
    )


def create_batch(
    db: Session,
    user: User,
    *,
    assay_id: int,
    name: str,
    run_name: str,
    run_bytes: bytes,
    map_name: str = "",
    map_bytes: bytes | None = None,
) -> Batch:
    """Validate and store an upload as a queued batch (in the caller's transaction, with its audit event); the
    rule set is resolved once here and kept with the batch."""
    assay = db.get(Assay, assay_id)
    if assay is None or assay.lab_id != user.lab_id or not assay.active:
        raise InputError("assay", "unknown assay", "choose one of your lab's assays")
    ruleset = resolve_ruleset(db, user.lab_id, assay.ruleset)
    description = compute(validate_upload, run_name, run_bytes, map_name, map_bytes, ruleset, db=db)
    batch = Batch(
        lab_id=user.lab_id,
        assay_id=assay.id,
        name=(name or Path(run_name).stem).strip()[:200],
        run_filename=Path(run_name).name,
        run_bytes=run_bytes,
        run_sha256=hashlib.sha256(run_bytes).hexdigest(),
        map_filename=Path(map_name).name if map_bytes else "",
        map_bytes=map_bytes or None,
        ruleset_text=frozen(ruleset),
        ruleset_sha256=ruleset.sha256,
        status="queued",
        progress="waiting in the queue",
        created_by=user.username,
        created_at=utcnow(),
    )
    db.add(batch)
    db.flush()
    same = duplicates(db, batch)
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="upload",
        entity="batch",
        entity_id=batch.id,
        after={
            "name": batch.name,
            "assay": assay.name,
            "run_file": batch.run_filename,
            "run_sha256": batch.run_sha256,
            "plate_map": batch.map_filename,
            "run": description,
            "rules": ruleset.label(),
            "rules_sha256": ruleset.sha256,
            "same_run_file_as": same,
        },
    )
    return batch
