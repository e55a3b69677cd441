"""One mapping from a final call to everything an export says about it: the report text and the action (from the
rule set that made the call) and the coded value (knowledge/lab-exports.toml).

The printable report, the per-sample CSV, the FHIR Observations and the service's pages all take a sample's
texts and code from here, so a reviewer's correction changes all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ... import knowledge
from ..rules import RuleSet


@dataclass(frozen=True)
class Coding:
    """A coded value (e.g. SNOMED CT 260373001 "Detected")."""

    system: str
    code: str
    display: str

    def as_fhir(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class CallText:
    """What every export says about one final call."""

    call: str
    report: str
    action: str
    coding: Coding | None  #: None: not a result value a clinician receives (invalid, review, run_invalid, ...)


def coding(call: str) -> Coding | None:
    """The coded value of a final call, or None for calls that are not released values."""
    spec = knowledge.lab_exports()["calls"].get(call)
    return Coding(spec["system"], spec["code"], spec["display"]) if spec else None


def is_result(call: str) -> bool:
    """True for calls exported as a value (positive, negative, inconclusive with the shipped table)."""
    return coding(call) is not None


def call_text(ruleset: RuleSet | None, call: str, automatic: CallText | None = None) -> CallText:
    """The texts of ``call``: the matched rule row's own when the call is the automatic one (``automatic``),
    otherwise the rule set's first decision row giving that call (or its default row)."""
    if automatic is not None and automatic.call == call:
        return CallText(call, automatic.report, automatic.action, coding(call))
    rows = list(ruleset.calls) + [ruleset.default] if ruleset is not None else []
    row = next((r for r in rows if r.call == call), None)
    if row is None:
        return CallText(call, call, "", coding(call))
    return CallText(call, row.report, row.action, coding(call))


def with_final_texts(samples: pd.DataFrame, ruleset: RuleSet | None) -> pd.DataFrame:
    """Per-sample table whose ``report`` and ``action`` are those of the final call (after overrides)."""
    needed = {"call", "final_call", "report", "action"}
    if samples.empty or ruleset is None or not needed <= set(samples.columns):
        return samples
    changed = samples["final_call"].astype(str) != samples["call"].astype(str)
    if not changed.any():
        return samples
    samples = samples.copy()
    for i in samples.index[changed]:
        text = call_text(ruleset, str(samples.at[i, "final_call"]))
        samples.at[i, "report"], samples.at[i, "action"] = text.report, text.action
    return samples
