"""A plate's result folder, written so that a kill at any moment leaves results and audit log consistent.

* ``audit.jsonl`` (:mod:`.audit`) is the **commit point**: an override or a sign-off exists once its line is
  appended (locked, fsynced); nothing ever rewrites or drops it.
* Everything else (samples.csv, wells.csv, controls.csv, result.json, report.html) is **derived** from the run
  file and the log. It is written as one transaction (:func:`oligolab.reports.output_folder`: a temporary
  folder swapped in whole, the audit log carried into it), and ``result.json`` records the log state it was
  derived from (``derived_from``: entries and last hash) and the SHA-256 of each table (``files``).
* Derived files older than the log (a kill between an append and the rewrite) are **stale**: every command
  that reads the folder (:func:`current`) regenerates them from the run and the log first.
* A sign-off records the SHA-256 of samples.csv, wells.csv and controls.csv; :func:`check` (``oligolab lab
  audit``) compares the files with it, so a table edited after sign-off is reported, never papered over.
* Signing again what is already signed writes no second sign-off (:func:`sign` is idempotent).

Writers of one folder are serialised by an exclusive lock on its parent directory (re-entrant within a
process), so the audit log is never appended to while the folder is being swapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import reports
from ..errors import InputError
from . import audit
from .analysis import PlateResult, analyze_run, file_sha256, reanalyze
from .report import derived_tables, write_outputs

LOG = "audit.jsonl"
#: the tables a sign-off covers (result.json and report.html carry the sign-off itself and timestamps)
SIGNED_FILES = ("samples.csv", "wells.csv", "controls.csv")
#: every file an analysis derives from the run and the log (rewritten, never carried over)
DERIVED = frozenset(SIGNED_FILES + ("result.json", "report.html", reports.MANIFEST))

_held: dict[str, tuple[int, int]] = {}  # parent directory -> (fd, depth) of the locks this process holds


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[None]:
    """Exclusive lock of a result folder (on its parent directory; re-entrant within this process)."""
    parent = Path(folder).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    key = str(parent)
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    fd = os.open(key, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[key] = (fd, 1)
        yield
    finally:
        _held.pop(key, None)
        os.close(fd)  # closing releases the lock


def log_state(folder: str | Path) -> dict:
    """The audit log's state: number of entries and the last entry's hash (what derived files record)."""
    entries = audit.read(Path(folder) / LOG)
    return {"entries": len(entries), "head": entries[-1].hash if entries else ""}


def write(result: PlateResult, folder: str | Path, *, html: bool = True) -> dict[str, Path]:
    """Write a plate's derived files into ``folder`` as one transaction, carrying its audit log (and any export
    written beside the results) into the new folder; ``result.json`` records the log state."""
    folder = Path(folder)
    with locked(folder):
        state = log_state(folder)
        with reports.output_folder(folder) as tmp:
            written = write_outputs(result, tmp, html=html, derived_from=state)
            _carry(folder, tmp)
    return {k: folder / p.name for k, p in written.items()}


def _carry(folder: Path, tmp: Path) -> None:
    """Copy into the new folder what the old one holds and the analysis does not derive: the audit log above
    all, and exports made from the results. Derived files of the old folder are never carried (a report
    written by an earlier analysis would describe other results)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and path.name not in DERIVED:
            reports.write_bytes(tmp / path.name, path.read_bytes())


def is_stale(folder: str | Path) -> bool:
    """True when the derived files do not reflect the audit log (an interrupted override or sign-off)."""
    doc = _result_doc(Path(folder))
    return doc.get("derived_from") != log_state(folder)


def current(folder: str | Path) -> PlateResult:
    """The plate as its run file and audit log say now; stale derived files are regenerated first."""
    folder = Path(folder)
    with locked(folder):
        audit.verify(folder / LOG)
        result = reanalyze(folder)
        if is_stale(folder):
            write(result, folder, html=(folder / "report.html").exists())
        return result


def override(
    folder: str | Path, changes: Callable[[PlateResult], list[dict]], *, user: str, reason: str
) -> list[audit.Entry]:
    """Record overrides and rewrite the derived files. ``changes`` turns the plate as it is now into the
    overrides to record (each ``{"subject", "field", "old", "new"}``), under the folder's lock."""
    folder = Path(folder)
    with locked(folder):
        before = current(folder)
        entries = [
            audit.record_override(folder / LOG, run_id=before.run_id, user=user, reason=reason, **c)
            for c in changes(before)
        ]  # the commit point
        write(reanalyze(folder), folder, html=(folder / "report.html").exists())
    return entries


@dataclass
class Signed:
    """The outcome of :func:`sign`."""

    entry: audit.Entry
    files: dict[str, str] = field(default_factory=dict)
    already: bool = False  # the same results were signed before: no second sign-off written


def sign(folder: str | Path, *, user: str, reason: str, force: bool = False) -> Signed:
    """Sign the plate's results (their SHA-256 recorded in the log) and rewrite the derived files.

    Refused, naming the real reason, while the run is invalid or samples are held (``force`` signs anyway: the
    web service records why). Signing results that the latest entry already signs writes nothing new.
    """
    folder = Path(folder)
    with locked(folder):
        res = current(folder)
        _refuse_unsignable(res, folder, force)
        digests = {
            name: hashlib.sha256(text.encode()).hexdigest()
            for name, text in derived_tables(res).items()
            if name in SIGNED_FILES
        }
        entries = audit.read(folder / LOG)
        last = entries[-1] if entries else None
        if (
            last is not None
            and last.kind == "sign"
            and last.run_id == res.run_id
            and last.new == digests["samples.csv"]
        ):
            return Signed(last, digests, already=True)
        entry = audit.record_signoff(
            folder / LOG,
            run_id=res.run_id,
            results_sha256=digests["samples.csv"],
            user=user,
            reason=reason,
            files=digests,
        )  # the commit point
        write(reanalyze(folder), folder, html=(folder / "report.html").exists())
    return Signed(entry, digests)


def _refuse_unsignable(res: PlateResult, folder: Path, force: bool) -> None:
    if force:
        return
    if res.valid is False:
        raise InputError(
            folder / "result.json",
            f"the run is invalid: {res.problems[0]}",
            "repeat the run; an invalid run is not signed",
        )
    held = res.samples[res.samples["status"] != "release"] if not res.samples.empty else res.samples
    if held.empty:
        return
    first = held.iloc[0]
    why = res.holds[0] if res.holds else str(first.get("review_reasons", "")).split("; ")[0]
    raise InputError(
        folder / "samples.csv",
        f"{len(held)} sample(s) still held ({', '.join(held['sample'][:5])}): {why}",
        "review them with 'oligolab lab override', or sign with --force",
        record=str(first["sample"]),
    )


@dataclass
class Finding:
    """One thing ``oligolab lab audit`` reports about a result folder."""

    severity: str  # "error": tampering or a broken chain; "fixed": stale files regenerated; "info"
    text: str


def check(folder: str | Path) -> list[Finding]:
    """Audit a result folder: the log's hash chain, derived files that lag the log (regenerated), and tables
    that differ from what the latest sign-off signed (edited afterwards, or changed by a later override)."""
    folder = Path(folder)
    with locked(folder):
        n = audit.verify(folder / LOG)
        findings = [Finding("info", f"audit log: {n} entries, hash chain intact")]
        doc = _result_doc(folder)
        edited = [
            name
            for name, sha in (doc.get("files") or {}).items()
            if not (folder / name).is_file() or file_sha256(folder / name) != sha
        ]
        findings += [
            Finding("error", f"{name} was changed after oligolab wrote it (its SHA-256 differs from result.json)")
            for name in edited
        ]
        findings += _signoff_findings(folder, doc)
        if not edited and is_stale(folder):
            current(folder)
            findings.append(
                Finding(
                    "fixed",
                    "the results lagged the audit log (an interrupted override or "
                    "sign-off): regenerated from the run file and the log",
                )
            )
    return findings


def _signoff_findings(folder: Path, doc: dict) -> list[Finding]:
    entries = [e for e in audit.read(folder / LOG) if e.run_id == doc.get("run_id")]
    signs = [e for e in entries if e.kind == "sign"]
    if not signs:
        return [Finding("info", "not signed")]
    sign = signs[-1]
    signed = sign.files or {"samples.csv": sign.new}
    changed = [
        name for name, sha in signed.items() if not (folder / name).is_file() or file_sha256(folder / name) != sha
    ]
    later = [e for e in entries if e.seq > sign.seq and e.kind == "override"]
    if not changed:
        return [
            Finding(
                "info",
                f"signed by {sign.user} at {sign.time} (entry #{sign.seq}): "
                + ", ".join(signed)
                + " match the signed SHA-256",
            )
        ]
    if later:
        return [
            Finding(
                "info",
                f"{', '.join(changed)} changed by override #{later[0].seq} after the sign-off "
                f"#{sign.seq}: the results are no longer signed; review and sign again",
            )
        ]
    return [
        Finding(
            "error",
            f"{name} differs from the version signed by {sign.user} at {sign.time} (entry "
            f"#{sign.seq}): edited after sign-off",
        )
        for name in changed
    ]


def _result_doc(folder: Path) -> dict:
    path = folder / "result.json"
    if not path.is_file():
        raise InputError(folder, "no result.json here", "give the output folder of 'oligolab lab analyze'")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"not valid JSON ({exc.msg})", "run 'oligolab lab analyze' again", line=exc.lineno
        ) from None


def rederive(result: PlateResult, folder: str | Path) -> PlateResult:
    """The same analysis with the folder's audit log as it is now (overrides recorded since it was read)."""
    p = result.provenance
    settings = p.get("settings") or {}
    again = analyze_run(
        result.run,
        result.ruleset,
        gaps=p.get("gaps", "refuse"),
        thresholds=settings.get("thresholds") or None,
        audit_log=Path(folder) / LOG,
        input_sha256=p.get("input_sha256", ""),
    )
    again.provenance["settings"] = settings
    return again
