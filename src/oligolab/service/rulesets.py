"""Assays and rule sets of a lab: the shipped rule sets by id, the lab's own (YAML, may extend a shipped one),
and the frozen form a batch and each result version keep of the rule set they were analysed with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import knowledge
from ..errors import InputError
from ..lab.rules import RuleSet, load_ruleset, ruleset_from_dict, ruleset_from_yaml, shipped_rulesets
from .audit import record
from .db import Assay, RuleSetRow, User


def seed_lab(db: Session, lab_id: int, user: str = "system") -> None:
    """Give a new lab the default assays of knowledge/lab-service.toml (once)."""
    if db.scalar(select(func.count()).select_from(Assay).where(Assay.lab_id == lab_id)):
        return
    for spec in knowledge.lab_service()["assays"]:
        a = Assay(
            lab_id=lab_id,
            name=spec["name"],
            ruleset=spec["ruleset"],
            watch_assays=spec["watch_assays"],
            loinc_code=spec.get("loinc_code", ""),
            loinc_display=spec.get("loinc_display", ""),
        )
        db.add(a)
        db.flush()
        record(db, user=user, lab_id=lab_id, action="create", entity="assay", entity_id=a.id, after=assay_dict(a))


def assay_dict(a: Assay) -> dict:
    return {
        "id": a.id,
        "name": a.name,
        "ruleset": a.ruleset,
        "watch_assays": list(a.watch_assays or []),
        "loinc_code": a.loinc_code,
        "active": a.active,
    }


def resolve_ruleset(db: Session, lab_id: int, name: str) -> RuleSet:
    """A shipped rule set by id, or the lab's own by name (stored YAML, may extend a shipped one)."""
    row = db.scalar(select(RuleSetRow).where(RuleSetRow.lab_id == lab_id, RuleSetRow.name == name))
    if row is None:
        return load_ruleset(name)
    return dataclasses.replace(
        ruleset_from_yaml(row.yaml_text, f"rule set {name}"), path=f"lab rule set '{name}' (sha256 {row.sha256[:12]})"
    )


def frozen(ruleset: RuleSet) -> str:
    """The rule set as a batch and a version keep it: its resolved content (``extends`` applied), as JSON."""
    return json.dumps({"path": ruleset.path, "data": ruleset.data}, sort_keys=True, default=str)


def thaw(text: str) -> RuleSet:
    """The rule set of :func:`frozen` text (the same content hash)."""
    doc = json.loads(text)
    return ruleset_from_dict(doc["data"], doc["path"])


def save_ruleset(db: Session, user: User, name: str, yaml_text: str) -> RuleSetRow:
    """Store a lab rule set after validating it with the lab core; InputError (one line) when invalid.
    Batches already uploaded keep the rule set they were uploaded with."""
    name = name.strip()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InputError("rule set", "the name must be letters, digits, - or _", "choose a plain name")
    if name in shipped_rulesets():
        raise InputError("rule set", f"'{name}' is a shipped rule set", "choose another name (extends: it)")
    ruleset_from_yaml(yaml_text, f"rule set {name}")  # InputError (file, line, fix) when invalid
    sha = hashlib.sha256(yaml_text.encode()).hexdigest()
    row = db.scalar(select(RuleSetRow).where(RuleSetRow.lab_id == user.lab_id, RuleSetRow.name == name))
    before = {"name": row.name, "sha256": row.sha256, "yaml": row.yaml_text} if row else None
    if row is None:
        row = RuleSetRow(lab_id=user.lab_id, name=name, yaml_text=yaml_text, sha256=sha, created_by=user.username)
        db.add(row)
    else:
        row.yaml_text, row.sha256 = yaml_text, sha
    db.flush()
    record(
        db,
        user=user,
        lab_id=user.lab_id,
        action="update" if before else "create",
        entity="ruleset",
        entity_id=name,
        before=before,
        after={"name": name, "sha256": sha, "yaml": yaml_text},
    )
    return row


def call_choices(ruleset: RuleSet) -> list[str]:
    """The calls a reviewer may give a sample: the rule set's own (its table and default), 'review' excepted."""
    return sorted(({c.call for c in ruleset.calls} | {ruleset.default.call}) - {"review"})


def save_assay(
    db: Session,
    user: User,
    name: str,
    ruleset: str,
    watch_assays: Sequence[str] | str = (),
    loinc_code: str = "",
    loinc_display: str = "",
) -> Assay:
    """An admin adds an assay of the lab (its rule set must resolve), audited."""
    name, ruleset = name.strip(), ruleset.strip()
    if not name:
        raise InputError("assay", "the assay needs a name", "give a name")
    resolve_ruleset(db, user.lab_id, ruleset)  # InputError if unknown
    if db.scalar(select(Assay).where(Assay.lab_id == user.lab_id, Assay.name == name)):
        raise InputError("assay", f"an assay '{name}' exists", "choose another name")
    if isinstance(watch_assays, str):
        watch_assays = [w.strip() for w in watch_assays.split(";") if w.strip()]
    a = Assay(
        lab_id=user.lab_id,
        name=name,
        ruleset=ruleset,
        watch_assays=list(watch_assays),
        loinc_code=loinc_code.strip(),
        loinc_display=loinc_display.strip(),
    )
    db.add(a)
    db.flush()
    record(db, user=user, lab_id=user.lab_id, action="create", entity="assay", entity_id=a.id, after=assay_dict(a))
    return a
