"""HL7 FHIR R4 transaction Bundle of released results: per specimen a Patient, Specimen, ServiceRequest,
Observation and DiagnosticReport, validated with ``fhir.resources`` before it leaves.

The Observation is the one :func:`oligolab.lab.exports.fhir.observation` makes for the collection export (the
same coded value, notes, release status and previous value of a correction), linked here to its patient,
specimen and order. Resources are written so that sending the same result again, or a correction, updates the
clinic's copy instead of duplicating it: Patient, Specimen and ServiceRequest are conditional creates
(``ifNoneExist`` on their identifier), Observation and DiagnosticReport conditional updates (``PUT
Type?identifier=...``) on the specimen's result id, which stays the same across reruns and corrections.
Identifier systems and codes are data: ``knowledge/lab-day.toml``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from ... import knowledge
from .calls import coding
from .clinical import SpecimenResult
from .fhir import observation
from .release import CANCELLED


def _ref(kind: str, system: str, value: str) -> str:
    """A stable urn:uuid for a resource of the clinic's copy (the same for the same identifier)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'oligolab:{kind}:{system}|{value}')}"


def _ident(system: str, value: str) -> list[dict]:
    return [{"system": system, "value": value}]


def _patient(r: SpecimenResult, ids: dict) -> dict:
    a = r.accession
    res: dict = {"resourceType": "Patient", "identifier": _ident(ids["patient"], a.patient_id), "gender": a.sex}
    if a.patient_name:
        family, _, given = a.patient_name.partition(" ")
        res["name"] = [
            {"use": "official", "family": family, **({"given": given.split()} if given else {}), "text": a.patient_name}
        ]
    else:  # a pseudonymous code stands for the name
        res["name"] = [{"use": "anonymous", "text": a.pseudonym or a.patient_id}]
    if a.birth_date:
        res["birthDate"] = a.birth_date.isoformat()
    return res


def _test_code(r: SpecimenResult) -> dict:
    t = r.test
    if t.loinc_code:
        return {
            "coding": [{"system": "http://loinc.org", "code": t.loinc_code, "display": t.loinc_display}],
            "text": t.name,
        }
    return {"text": t.name}


def _specimen(r: SpecimenResult, ids: dict, refs: dict) -> dict:
    a = r.accession
    res: dict = {
        "resourceType": "Specimen",
        "identifier": _ident(ids["specimen"], a.specimen_id),
        "accessionIdentifier": {"system": ids["specimen"], "value": a.specimen_id},
        "status": "available",
        "subject": {"reference": refs["patient"]},
        "request": [{"reference": refs["order"]}],
        "collection": {"collectedDateTime": a.collected_at.isoformat()},
    }
    stype = r.specimen_type
    if stype is not None:
        res["type"] = {"coding": [stype.coding().as_fhir()], "text": a.specimen_type}
    elif a.specimen_type:
        res["type"] = {"text": a.specimen_type}
    return res


def _order(r: SpecimenResult, ids: dict, refs: dict) -> dict:
    a = r.accession
    res: dict = {
        "resourceType": "ServiceRequest",
        "identifier": _ident(ids["order"], a.order_id),
        "status": "completed",
        "intent": "order",
        "code": _test_code(r),
        "subject": {"reference": refs["patient"]},
        "specimen": [{"reference": refs["specimen"]}],
    }
    if a.submitter:
        res["requester"] = {"display": a.submitter}
    return res


def _observation(r: SpecimenResult, ids: dict, refs: dict) -> dict:
    obs = observation(r.sample, release=r.release, test=r.test, performer=r.lab, prefix=r.prefix, context=r.source)
    obs.pop("id", None)
    obs.pop("meta", None)  # server-managed on the clinic's side
    obs["identifier"] = _ident(ids["result"], r.result_id) + obs["identifier"]
    obs.update(
        subject={"reference": refs["patient"]},
        specimen={"reference": refs["specimen"]},
        basedOn=[{"reference": refs["order"]}],
        effectiveDateTime=r.accession.collected_at.isoformat(),
    )
    return obs


def _report(r: SpecimenResult, ids: dict, refs: dict) -> dict:
    cfg = knowledge.lab_day()["fhir"]
    status = r.status
    res: dict = {
        "resourceType": "DiagnosticReport",
        "identifier": _ident(ids["result"], r.result_id),
        "status": status if status != CANCELLED else "cancelled",
        "category": [
            {
                "coding": [
                    {
                        "system": cfg["report_category_system"],
                        "code": cfg["report_category_code"],
                        "display": cfg["report_category_display"],
                    }
                ]
            }
        ],
        "code": _test_code(r),
        "subject": {"reference": refs["patient"]},
        "specimen": [{"reference": refs["specimen"]}],
        "basedOn": [{"reference": refs["order"]}],
        "effectiveDateTime": r.accession.collected_at.isoformat(),
        "performer": [{"display": r.lab}],
        "result": [{"reference": refs["observation"]}],
        "conclusion": " ".join(x for x in (str(r.sample.get("report") or ""), r.release.change_note(r.sample)) if x)
        or r.call,
    }
    if r.release.signed_at:
        res["issued"] = r.release.signed_at
    if r.release.signed_by:
        res["resultsInterpreter"] = [{"display": r.release.signed_by}]
    code = coding(r.call)
    if code is not None and status != CANCELLED:
        res["conclusionCode"] = [{"coding": [code.as_fhir()], "text": r.call}]
    return res


def _entries(r: SpecimenResult, ids: dict) -> list[dict]:
    a = r.accession
    keys = {
        "patient": ("Patient", ids["patient"], a.patient_id),
        "specimen": ("Specimen", ids["specimen"], a.specimen_id),
        "order": ("ServiceRequest", ids["order"], a.order_id),
        "observation": ("Observation", ids["result"], r.result_id),
        "report": ("DiagnosticReport", ids["result"], r.result_id),
    }
    refs = {k: _ref(*v) for k, v in keys.items()}
    made = {
        "patient": _patient(r, ids),
        "specimen": _specimen(r, ids, refs),
        "order": _order(r, ids, refs),
        "observation": _observation(r, ids, refs),
        "report": _report(r, ids, refs),
    }
    out = []
    for k, res in made.items():
        kind, system, value = keys[k]
        query = f"identifier={system}|{value}"
        request = (
            {"method": "POST", "url": kind, "ifNoneExist": query}
            if k in ("patient", "specimen")
            else {"method": "PUT", "url": f"{kind}?{query}"}
        )
        out.append({"fullUrl": refs[k], "resource": res, "request": request})
    return out


def transaction(results: Iterable[SpecimenResult], *, timestamp: str) -> dict:
    """A validated FHIR R4 transaction Bundle of the given released results (a patient with several
    specimens appears once)."""
    from fhir.resources.R4B.bundle import Bundle

    ids = knowledge.lab_day()["identifiers"]
    entries: dict[str, dict] = {}
    for r in results:
        for e in _entries(r, ids):
            entries.setdefault(e["fullUrl"], e)
    doc = {"resourceType": "Bundle", "type": "transaction", "timestamp": timestamp, "entry": list(entries.values())}
    return json.loads(Bundle.model_validate(doc).model_dump_json(exclude_none=True))
