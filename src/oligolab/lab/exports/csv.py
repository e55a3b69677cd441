"""Per-sample CSV export, safe to open in a spreadsheet: a text cell that starts with ``= + - @`` (or a tab or
carriage return) is written with a leading apostrophe so no spreadsheet runs it as a formula (OWASP, "CSV
Injection"); numbers are written as numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .release import Release

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` unchanged, or a text that a spreadsheet would take as a formula with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def samples_csv(samples: Iterable[Mapping], release: Release | None = None) -> str:
    """The per-sample table as CSV text; with ``release``, each row's result status and the value it replaces."""
    rows = [dict(s) for s in samples]
    frame = pd.DataFrame(rows)
    if release is not None and rows:
        frame["result_status"] = [release.status(s) for s in rows]
        frame["replaces"] = [release.change_note(s) for s in rows]
    frame.columns = [neutralise(str(c)) for c in frame.columns]
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].map(neutralise).astype(object)
    return frame.to_csv(index=False, lineterminator="\n")
