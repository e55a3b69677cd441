"""Append-only, tamper-evident audit log of manual overrides and sign-offs (JSON lines).

Every entry records who, when (UTC), what (run, sample or curve, field), the old and new value and the
reason. Entries are chained: each carries the SHA-256 of the previous entry and its own, so an edited,
removed or reordered line is detected by :func:`verify`. Writers append one line under an exclusive file lock
and fsync it, so concurrent writers (the web service) never interleave or lose entries. Nothing ever rewrites
the log.

Overrides are applied on top of the automatic analysis, never in place of it: the per-sample table keeps the
automatic call beside the final one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reports import append_line

#: fields an override may change, with the values allowed (None = free text)
FIELDS = {"call": None, "amplified": ("true", "false")}
KINDS = ("override", "sign")
_GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One audit entry as read back from the log."""

    seq: int
    kind: str
    time: str
    user: str
    run_id: str
    subject: str  # sample name (call) or "WELL/TARGET" (amplified); "" for sign-off
    field: str
    old: str
    new: str
    reason: str
    prev: str
    hash: str
    files: dict = dataclasses.field(default_factory=dict, hash=False)  # sign-off: SHA-256 of each signed table

    def record(self) -> dict:
        """The entry as stored (``files`` only on sign-offs that carry it)."""
        rec = dict(self.__dict__)
        if not rec["files"]:
            del rec["files"]
        return rec


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read(path: str | Path) -> list[Entry]:
    """All entries of a log (empty list if the file does not exist); malformed lines raise InputError."""
    path = Path(path)
    if not path.exists():
        return []
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            entries.append(
                Entry(
                    **{k: rec[k] for k in Entry.__dataclass_fields__ if k != "files"},
                    files=dict(rec.get("files") or {}),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(
                path, "audit log line is not a valid entry", "restore the log from backup", line=n
            ) from None
    return entries


def verify(path: str | Path) -> int:
    """Check the hash chain of a log; returns the number of entries or raises InputError at the first break."""
    prev = _GENESIS
    entries = read(path)
    for n, e in enumerate(entries, start=1):
        rec = e.record()
        if e.prev != prev or _digest(rec) != e.hash or e.seq != n:
            raise InputError(
                path,
                f"audit log entry {n} was altered, removed or reordered",
                "restore the log from backup; report the incident",
                line=n,
            )
        prev = e.hash
    return len(entries)


def _append(
    path: Path,
    kind: str,
    user: str,
    run_id: str,
    subject: str,
    field: str,
    old: str,
    new: str,
    reason: str,
    files: dict | None = None,
) -> Entry:
    user, reason = user.strip(), reason.strip()
    if not user:
        raise InputError(path, "an audit entry needs the user's name", "give --user")
    if not reason:
        raise InputError(path, "an audit entry needs a reason", "give --reason")

    def build(existing: str) -> str:
        lines = [ln for ln in existing.splitlines() if ln.strip()]
        prev, seq = _GENESIS, 1
        if lines:
            last = json.loads(lines[-1])
            prev, seq = last["hash"], int(last["seq"]) + 1
        rec = {
            "seq": seq,
            "kind": kind,
            "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "user": user,
            "run_id": run_id,
            "subject": subject,
            "field": field,
            "old": old,
            "new": new,
            "reason": reason,
            "prev": prev,
        }
        if files:
            rec["files"] = dict(sorted(files.items()))
        rec["hash"] = _digest(rec)
        return json.dumps(rec, ensure_ascii=False, sort_keys=True)

    line = append_line(path, build)
    rec = json.loads(line)
    return Entry(**{k: rec[k] for k in Entry.__dataclass_fields__ if k != "files"}, files=rec.get("files") or {})


def record_override(
    path: str | Path, *, run_id: str, subject: str, field: str, old: object, new: object, user: str, reason: str
) -> Entry:
    """Append a manual override: ``field`` of ``subject`` changed from ``old`` to ``new`` by ``user``."""
    path = Path(path)
    if field not in FIELDS:
        raise InputError(path, f"field '{field}' cannot be overridden", "use one of: " + ", ".join(FIELDS))
    choices = FIELDS[field]
    new_s = str(new).strip().lower() if choices else str(new).strip()
    if choices and new_s not in choices:
        raise InputError(path, f"'{new}' is not a value of {field}", "use one of: " + ", ".join(choices))
    if not new_s:
        raise InputError(path, "the new value is empty", "give the new value")
    return _append(path, "override", user, run_id, subject, field, str(old), new_s, reason)


def record_signoff(
    path: str | Path,
    *,
    run_id: str,
    results_sha256: str,
    user: str,
    reason: str = "results reviewed and released",
    files: dict | None = None,
) -> Entry:
    """Append a sign-off of the per-sample results whose file has SHA-256 ``results_sha256`` (``files``: the
    SHA-256 of every signed table, checked by ``oligolab lab audit``)."""
    return _append(Path(path), "sign", user, run_id, "", "results_sha256", "", results_sha256, reason, files)


def overrides_for(entries: Iterable[Entry], run_id: str) -> list[Entry]:
    """The override entries of one run, in log order (later entries win)."""
    return [e for e in entries if e.kind == "override" and e.run_id == run_id]


def apply_curve_overrides(table: pd.DataFrame, entries: Iterable[Entry]) -> pd.DataFrame:
    """Curves with their ``amplified`` call replaced where a specialist overrode it (subject 'WELL/TARGET')."""
    table = table.copy()
    for e in entries:
        if e.field != "amplified":
            continue
        well, _, target = e.subject.partition("/")
        hit = (table["well"] == well) & (table["target"] == target)
        if not hit.any():
            continue
        value = e.new == "true"
        table.loc[hit, "amplified"] = value
        table.loc[hit, "cq_td0"] = table.loc[hit, "td0"] if value else np.nan
        table.loc[hit, "cq_threshold"] = table.loc[hit, "cq_threshold_raw"] if value else np.nan
        table.loc[hit, "cq_sdm"] = table.loc[hit, "cq_sdm_raw"] if value else np.nan
        table.loc[hit, "flags"] = table.loc[hit, "flags"].map(
            lambda f, user=e.user: ";".join(filter(None, [f, f"overridden:{user}"]))
        )
    return table


def apply_call_overrides(samples: pd.DataFrame, entries: Iterable[Entry]) -> pd.DataFrame:
    """Samples with ``final_call`` / ``status`` after call overrides; the automatic ``call`` stays beside them."""
    samples = samples.copy()
    if samples.empty:
        return samples
    samples["final_call"] = samples["call"]
    samples["override"] = ""
    for e in entries:
        if e.field != "call":
            continue
        hit = samples["sample"] == e.subject
        samples.loc[hit, "final_call"] = e.new
        samples.loc[hit, "status"] = "release"
        samples.loc[hit, "override"] = f"{e.user} {e.time}: {e.old} -> {e.new} ({e.reason})"
    return samples


def latest_signoff(entries: Iterable[Entry], run_id: str) -> Entry | None:
    """The last sign-off of a run, if any."""
    signs = [e for e in entries if e.kind == "sign" and e.run_id == run_id]
    return signs[-1] if signs else None
