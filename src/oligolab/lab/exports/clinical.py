"""What the clinic receives about one specimen: the patient and the order (accessioning), the released sample
row of the result version it comes from, that version's release state, the test and the run it came from.

The HL7 v2 message (:mod:`.hl7v2`) and the FHIR transaction bundle (:mod:`.fhir_transaction`) are both made
from a :class:`SpecimenResult`; codes are data (``knowledge/lab-day.toml``, ``knowledge/lab-exports.toml``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import knowledge
from ..accessioning import Accession
from .calls import Coding
from .fhir import Test
from .release import Release, final_call


@dataclass(frozen=True)
class SpecimenType:
    """A specimen type and its SNOMED CT code."""

    key: str
    code: str
    display: str
    ru: str

    def coding(self) -> Coding:
        return Coding(knowledge.lab_day()["fhir"]["snomed_system"], self.code, self.display)


def specimen_type(text: str) -> SpecimenType | None:
    """The coded specimen type a requisition's words name (``knowledge/lab-day.toml`` names), else None."""
    key = text.strip().lower()
    for name, spec in knowledge.lab_day()["specimen_types"].items():
        if key == name.replace("_", " ") or key in spec.get("names", []):
            return SpecimenType(name, spec["code"], spec["display"], spec.get("ru", ""))
    return None


@dataclass(frozen=True)
class SpecimenResult:
    """One specimen's released result and everything a clinic's system needs to file it."""

    accession: Accession
    sample: Mapping[str, Any]  #: the stored sample row (final_call, report, action) of the version
    release: Release  #: that version's release state
    test: Test
    lab: str  #: the performing laboratory
    source: str  #: which run and version the result comes from, in words
    prefix: str  #: id prefix of the run's Observations (the batch), as exports.fhir uses it
    analysed_at: _dt.datetime | None = None

    @property
    def call(self) -> str:
        return final_call(self.sample)

    @property
    def status(self) -> str:
        """The release state of this result (preliminary, final, corrected, amended, cancelled)."""
        return self.release.status(self.sample)

    @property
    def specimen_type(self) -> SpecimenType | None:
        return specimen_type(self.accession.specimen_type)

    @property
    def result_id(self) -> str:
        """The id of this specimen's result at the clinic, the same across reruns and corrections."""
        return f"{self.accession.specimen_id}/{self.test.loinc_code or self.test.name}"
