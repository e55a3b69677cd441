"""Review and sign-off: a reviewer's corrections (lab-core overrides analysed into a new version) and the
sign-off that releases one version."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..errors import InputError
from .analysis import compute, content_sha256, document_job, job_for, need_version, store_version, version_ruleset
from .audit import record
from .db import Batch, BatchVersion, Lab, Signoff, User, utcnow
from .rulesets import call_choices


def _sample_override(ch: dict, samples: dict, allowed: list[str]) -> tuple[str, str, str, str]:
    if ch["sample"] not in samples:
        raise InputError("correction", f"no sample '{ch['sample']}' in this batch", "pick a sample of the batch")
    old = samples[ch["sample"]].get("final_call", "")
    value = old if ch.get("accept") else str(ch.get("call", "")).strip()
    if not ch.get("accept") and value and value not in allowed:
        raise InputError(
            "correction", f"'{value}' is not a call of this assay's rule set", "use one of: " + ", ".join(allowed)
        )
    return "call", str(ch["sample"]), value, str(old)


def _curve_override(ch: dict, wells: set) -> tuple[str, str, str, str]:
    if (ch.get("well"), ch.get("target")) not in wells:
        raise InputError(
            "correction",
            f"no curve {ch.get('well')}/{ch.get('target')} in this batch",
            "pick a well and target of the batch",
        )
    value = str(ch["amplified"]).lower()
    if value not in ("true", "false"):
        raise InputError("correction", "amplified must be true or false", "choose true or false")
    return "amplified", f"{ch['well']}/{ch['target']}", value, ""


def held_groups(samples: list[dict]) -> list[dict]:
    """Samples held for review grouped by the same reasons (largest group first); ``run_level`` when every
    reason is about the run's controls rather than the sample's own curves."""
    groups: dict[str, list[str]] = {}
    for s in samples:
        if s.get("status") == "review":
            groups.setdefault(str(s.get("review_reasons") or ""), []).append(str(s["sample"]))
    out = [
        {
            "reasons": r,
            "samples": names,
            "run_level": bool(r) and all(p.strip().startswith("control ") for p in r.split("; ")),
        }
        for r, names in groups.items()
    ]
    return sorted(out, key=lambda g: (-len(g["samples"]), g["reasons"]))


def _expand_groups(changes: list[dict], samples: list[dict]) -> list[dict]:
    """``{"accept_held_for": REASONS}`` stands for accepting every sample held for exactly those reasons."""
    out = []
    for ch in changes:
        if "accept_held_for" in ch:
            group = next((g for g in held_groups(samples) if g["reasons"] == ch["accept_held_for"]), None)
            if group is None:
                raise InputError(
                    "correction",
                    "no sample is held for these reasons any more",
                    "reload the page and review the current version",
                )
            out += [{"sample": name, "accept": True} for name in group["samples"]]
        else:
            out.append(ch)
    return out


def overrides_of(user: User, current: BatchVersion, changes: list[dict], reason: str, allowed: list[str]) -> list[dict]:
    """Lab-core override entries for a reviewer's changes to a version (InputError on any bad change)."""
    changes = _expand_groups(changes, current.result["samples"])
    samples = {s["sample"]: s for s in current.result["samples"]}
    wells = {(w["well"], w["target"]) for w in current.result["wells"]}
    new = []
    for ch in changes:
        field, subject, value, old = (
            _sample_override(ch, samples, allowed) if "sample" in ch else _curve_override(ch, wells)
        )
        if not value:
            raise InputError("correction", "the new call is empty", "choose the new call")
        new.append(
            {
                "time": utcnow().isoformat(),
                "user": user.username,
                "subject": subject,
                "field": field,
                "old": old,
                "new": value,
                "reason": reason,
            }
        )
    if not new:
        raise InputError("correction", "nothing to change", "choose a sample and its new call")
    return new


def correct(db: Session, user: User, batch: Batch, changes: list[dict], reason: str) -> BatchVersion:
    """A reviewer's correction: overrides of sample calls (``{"sample", "call"}``; ``{"sample", "accept": True}``
    keeps the shown call and releases a sample held for review) or curve calls
    (``{"well", "target", "amplified"}``) on top of the current version's, analysed with the version's own
    rule set into a new version. A signed version stays as it was; the batch goes back to review until the new
    version is signed."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("correction", "a correction needs a reason", "say why the result is changed")
    if batch.status not in ("analysed", "signed"):
        raise InputError(f"batch {batch.id}", f"the batch is {batch.status}", "wait until the analysis is done")
    current = need_version(db, batch)
    ruleset = version_ruleset(db, batch, current)
    if current.result.get("valid") is False and any("sample" in ch and not ch.get("accept") for ch in changes):
        raise InputError(
            f"batch {batch.id}",
            "the run is invalid: no sample result may be released, so no sample call is changed",
            "repeat the run, or correct the control curve that invalidated it",
        )
    new = overrides_of(user, current, changes, reason, call_choices(ruleset))
    overrides = list(current.overrides or []) + new
    document = compute(document_job, job_for(db, batch, ruleset, overrides), db=db)
    before = {"version": current.version, "signed_by": current.signed_by, "status": batch.status}
    v = store_version(db, batch, document, ruleset, user=user.username, reason=reason, overrides=overrides)
    batch.status = "analysed"
    db.flush()
    record(
        db,
        user=user,
        lab_id=batch.lab_id,
        action="correct",
        entity="batch",
        entity_id=batch.id,
        before=before,
        after={"version": v.version, "changes": new, "status": batch.status, "content_sha256": v.content_sha256},
    )
    return v


def changed_by(db: Session, batch: Batch, v: BatchVersion) -> set[str]:
    """Who changed calls since the last signed version (the overrides ``v`` adds to that release)."""
    from .exports import previous_release

    before = previous_release(db, batch, v)
    released = len(before.overrides or []) if before is not None else 0
    return {o["user"] for o in (v.overrides or [])[released:]}


def _release_checks(db: Session, user: User, batch: Batch, v: BatchVersion, reason: str) -> str:
    """The release rules: four-eyes, an invalid run only with a reason. Returns the invalid-run reason."""
    lab = db.get(Lab, batch.lab_id)
    assert lab is not None  # a foreign key
    if lab.four_eyes and user.username in changed_by(db, batch, v):
        raise InputError(
            f"batch {batch.id}",
            f"{user.username} changed calls in version {v.version} and this lab signs with four eyes",
            "ask another reviewer to sign",
        )
    if v.result.get("valid") is False:
        if not reason:
            raise InputError(
                f"batch {batch.id}",
                "the run is invalid (" + "; ".join(v.result.get("problems", [])[:1]) + ")",
                "give the reason to sign it as an invalid run (no sample result is released)",
            )
        return reason
    return ""


def sign(
    db: Session,
    user: User,
    batch: Batch,
    number: int,
    statement: str = "results reviewed and released",
    reason: str = "",
) -> BatchVersion:
    """Sign the batch's current version (``number`` guards against signing a version the reviewer did not
    see); refused while samples still need review, by the lab's four-eyes rule, and for an invalid run without
    a ``reason`` (it is then released as an invalid run: no sample value goes out). The sign-off carries the
    content hash of the version."""
    reason = (reason or "").strip()
    if batch.status != "analysed":
        raise InputError(f"batch {batch.id}", f"the batch is {batch.status}", "only an analysed batch is signed")
    v = need_version(db, batch)
    if v.version != number:
        raise InputError(
            f"batch {batch.id}",
            f"version {number} is not the current one ({batch.current_version})",
            "reload the page and review the current version",
        )
    pending = [s["sample"] for s in v.result["samples"] if s.get("status") == "review"]
    if pending:
        raise InputError(
            f"batch {batch.id}",
            f"{len(pending)} samples still need review ({', '.join(pending[:5])})",
            "accept or correct each flagged sample first",
        )
    invalid_reason = _release_checks(db, user, batch, v, reason)
    sha = content_sha256(batch, v)
    if v.content_sha256 and sha != v.content_sha256:
        raise InputError(
            f"batch {batch.id}",
            f"version {number} changed after it was stored",
            "do not sign; ask the administrator to run 'oligolab serve verify'",
        )
    v.signoff = Signoff(
        batch_id=batch.id,
        version=v.version,
        lab_id=batch.lab_id,
        signed_by=user.username,
        signed_at=utcnow(),
        statement=statement,
        content_sha256=sha,
        invalid_reason=invalid_reason,
    )
    batch.status = "signed"
    db.flush()
    record(
        db,
        user=user,
        lab_id=batch.lab_id,
        action="sign",
        entity="batch",
        entity_id=batch.id,
        before={"status": "analysed", "version": v.version},
        after={
            "status": "signed",
            "version": v.version,
            "statement": statement,
            "content_sha256": sha,
            **({"released_as_invalid_run": invalid_reason} if invalid_reason else {}),
        },
    )
    return v
