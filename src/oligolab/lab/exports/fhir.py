"""HL7 FHIR R4 export: a Bundle (collection) of one laboratory Observation per patient sample, validated with
``fhir.resources`` before it leaves.

Each Observation keeps one id across the versions of a result (``meta.versionId`` is the version), carries the
test's LOINC code, the final call's coded value (:mod:`.calls`) or a ``dataAbsentReason`` for calls that are not
values, the report text and action as notes, and its release state (:mod:`.release`): ``preliminary`` until
signed, ``final``, ``corrected`` / ``amended`` with the value it replaces (note and extension), ``cancelled``
for an invalid run released without results.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ... import knowledge
from .calls import coding
from .release import CANCELLED, Release, final_call

#: extension carrying the coded value a corrected result replaces
PREVIOUS_VALUE_URL = "urn:oligolab:fhir:previous-value"


@dataclass(frozen=True)
class Test:
    """The test the Observations report (LOINC code and display; an empty code gives ``code.text`` only)."""

    name: str
    loinc_code: str = ""
    loinc_display: str = ""

    @classmethod
    def for_ruleset(cls, ruleset_id: str, name: str = "") -> Test:
        """The LOINC code knowledge/lab-exports.toml gives a shipped rule set (none for other rule sets)."""
        spec = knowledge.lab_exports().get("rulesets", {}).get(ruleset_id, {})
        return cls(name or ruleset_id, spec.get("loinc_code", ""), spec.get("loinc_display", ""))


def observation_id(prefix: str, sample: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) for one sample, the same in every version, unique for any sample name."""
    slug = "".join(c if c.isalnum() or c in "-." else "-" for c in str(sample))[:36]
    return f"{prefix[:16]}-{slug}-{hashlib.sha256(str(sample).encode()).hexdigest()[:8]}"


def _value(obs: dict, call: str, status: str) -> None:
    code = coding(call)
    if code is not None and status != CANCELLED:
        obs["valueCodeableConcept"] = {"coding": [code.as_fhir()], "text": call}
        return
    cfg = knowledge.lab_exports()["fhir"]
    obs["dataAbsentReason"] = {
        "coding": [{"system": cfg["data_absent_system"], "code": "error", "display": "Error"}],
        "text": call or "no call",
    }


def observation(sample: Mapping, *, release: Release, test: Test, performer: str, prefix: str, context: str) -> dict:
    """One sample row of a stored result as a FHIR Observation (a plain dict)."""
    cfg = knowledge.lab_exports()["fhir"]
    name, call, status = str(sample["sample"]), final_call(sample), release.status(sample)
    notes = [str(sample.get("report") or ""), str(sample.get("action") or ""), release.change_note(sample)]
    if status == CANCELLED:
        notes.insert(0, f"Run invalid, released without sample results: {release.invalid_reason}")
    obs: dict = {
        "resourceType": "Observation",
        "id": observation_id(prefix, name),
        "meta": {"versionId": str(release.version)},
        "identifier": [{"system": cfg["sample_identifier_system"], "value": f"{prefix}/{name}"}],
        "status": status,
        "category": [{"coding": [{"system": cfg["category_system"], "code": "laboratory", "display": "Laboratory"}]}],
        "code": (
            {
                "coding": [{"system": "http://loinc.org", "code": test.loinc_code, "display": test.loinc_display}],
                "text": test.name,
            }
            if test.loinc_code
            else {"text": test.name}
        ),
        "specimen": {"display": name},
        "performer": [{"display": performer}],
        "note": [{"text": f"{n} ({context})" if i == 0 else n} for i, n in enumerate(x for x in notes if x)],
    }
    if release.signed_at:
        obs["issued"] = release.signed_at
    _value(obs, call, status)
    prev = release.previous.get(name)
    if release.change_note(sample) and prev is not None:
        old = coding(prev.call)
        obs["extension"] = [
            {
                "url": PREVIOUS_VALUE_URL,
                "valueCodeableConcept": {
                    "coding": [old.as_fhir()] if old else [],
                    "text": f"{prev.call} (version {prev.version})",
                },
            }
        ]
    return obs


def bundle(
    samples: Iterable[Mapping],
    *,
    release: Release,
    test: Test,
    performer: str,
    prefix: str,
    context: str,
    timestamp: str,
) -> dict:
    """A validated FHIR R4 Bundle (type collection) of one Observation per sample row."""
    from fhir.resources.R4B.bundle import Bundle

    entries = []
    for s in samples:
        obs = observation(s, release=release, test=test, performer=performer, prefix=prefix, context=context)
        key = f"oligolab:{obs['id']}:{release.version}"
        url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"
        entries.append({"fullUrl": url, "resource": obs})
    doc = {"resourceType": "Bundle", "type": "collection", "entry": entries, "timestamp": timestamp}
    return json.loads(Bundle.model_validate(doc).model_dump_json(exclude_none=True))
