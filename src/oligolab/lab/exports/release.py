"""The release state of a result version, as every export states it: not signed (preliminary), signed (final),
changed after an earlier release (corrected / amended, with the value released before), released as an invalid
run (cancelled: no sample value), or superseded by a newer version.

Observation status codes are FHIR R4's (http://hl7.org/fhir/observation-status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .calls import is_result

PRELIMINARY, FINAL, CORRECTED, AMENDED, CANCELLED = "preliminary", "final", "corrected", "amended", "cancelled"


@dataclass(frozen=True)
class Previous:
    """A sample's value as released by an earlier signed version."""

    call: str
    report: str
    version: int
    signed_by: str
    signed_at: str


@dataclass(frozen=True)
class Release:
    """One version's release state; ``previous`` maps a sample to its value in the last earlier release."""

    version: int
    signed_by: str = ""
    signed_at: str = ""  #: ISO 8601, UTC
    run_valid: bool | None = True
    invalid_reason: str = ""  #: why an invalid run was signed (released without results)
    superseded_by: int | None = None  #: a newer version of the same results exists
    previous: Mapping[str, Previous] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return bool(self.signed_by)

    def status(self, sample: Mapping) -> str:
        """The Observation status of one sample row of this version."""
        if not self.signed:
            return PRELIMINARY
        if self.run_valid is False:
            return CANCELLED
        prev = self.previous.get(str(sample.get("sample")))
        if prev is None or (prev.call == final_call(sample) and prev.report == str(sample.get("report") or "")):
            return FINAL
        return CORRECTED if is_result(prev.call) else AMENDED

    def change_note(self, sample: Mapping) -> str:
        """'' or the sentence naming the value this one replaces."""
        if self.status(sample) not in (CORRECTED, AMENDED):
            return ""
        prev = self.previous[str(sample.get("sample"))]
        return (
            f"{self.status(sample).capitalize()} result: replaces '{prev.call}' ({prev.report}) released in "
            f"version {prev.version}, signed by {prev.signed_by} at {prev.signed_at}."
        )


def final_call(sample: Mapping) -> str:
    """The final call of a sample row (the automatic call when the row has no final call)."""
    return str(sample.get("final_call") or sample.get("call") or "")
