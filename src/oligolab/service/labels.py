"""Barcode labels for specimen tubes: Code 128 (python-barcode, pure Python, SVG) on a printable A4 sheet.

Each label carries the specimen id as a Code 128 barcode and as text, the patient (name or pseudonymous code),
the collection time in the lab's zone and the test. The barcode is an inline SVG whose bars are drawn in
millimetres and scaled to the label's width, so a long id still fits a 48 mm label; the quiet zones stay
(ISO/IEC 15417 asks for 10 modules each side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError

#: label sheet: A4 with 3 x 8 labels of 70 x 37 mm (the common "24 per sheet" self-adhesive layout)
SHEET = {"columns": 3, "rows": 8, "width_mm": 70, "height_mm": 37}
#: narrowest bar (mm) before scaling to the label: 0.25 mm reads on 203 dpi thermal printers
MODULE_MM = 0.25
BAR_HEIGHT_MM = 10.0


@lru_cache(maxsize=4096)
def code128_svg(value: str) -> str:
    """An inline ``<svg>`` Code 128 barcode of ``value`` (printable ASCII), scaled to its box's width: the
    symbol (start code, data, checksum, stop) is python-barcode's; the bars are drawn here as rectangles in
    module units, 10 modules of quiet zone each side."""
    import barcode
    from barcode.errors import BarcodeError

    if not value or not value.isascii() or not value.isprintable():
        raise InputError(
            "label",
            f"'{value[:40]}' cannot be encoded in Code 128",
            "use printable ASCII specimen ids",
            record=value[:40],
        )
    try:
        modules = barcode.get("code128", value).build()[0]
    except BarcodeError as exc:
        raise InputError(
            "label",
            f"'{value[:40]}' cannot be encoded in Code 128 ({exc})",
            "use printable ASCII specimen ids",
            record=value[:40],
        ) from None
    quiet = 10
    bars = [(m.start(), m.end() - m.start()) for m in re.finditer("1+", modules)]
    width = len(modules) + 2 * quiet
    rects = "".join(
        f'<rect x="{(quiet + x) * MODULE_MM:g}" y="0" width="{w * MODULE_MM:g}" height="{BAR_HEIGHT_MM:g}"/>'
        for x, w in bars
    )
    return (
        f'<svg class="barcode" viewBox="0 0 {width * MODULE_MM:g} {BAR_HEIGHT_MM:g}" preserveAspectRatio="none" '
        f'role="img" aria-label="Code 128 {value}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="100%" height="100%" fill="#fff"/><g fill="#000">{rects}</g></svg>'
    )


@dataclass(frozen=True)
class Label:
    """What one tube label shows."""

    specimen_id: str
    patient: str
    collected: str  #: already in the lab's zone and format
    test: str
    svg: str


def sheets(labels: list[Label]) -> list[list[Label]]:
    """The labels in pages of one A4 sheet each."""
    per = SHEET["columns"] * SHEET["rows"]
    return [labels[i : i + per] for i in range(0, len(labels), per)] or [[]]
