"""Barcode labels for specimen tubes: Code 128 (python-barcode, pure Python, SVG) on a printable A4 sheet.

Each label carries the specimen id as a Code 128 barcode and as text, the patient (name or pseudonymous code),
the collection time in the lab's zone and the test. The barcode is an inline SVG whose bars are drawn in
millimetres and scaled to the label's width, so a long id still fits a 48 mm label; the quiet zones stay
(ISO/IEC 15417 asks for 10 modules each side).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from ..errors import InputError

#: label sheet: A4 with 3 x 8 labels of 70 x 37 mm (the common "24 per sheet" self-adhesive layout)
SHEET = {"columns": 3, "rows": 8, "width_mm": 70, "height_mm": 37}
#: narrowest bar (mm) before scaling to the label: 0.25 mm reads on 203 dpi thermal printers
MODULE_MM = 0.25
BAR_HEIGHT_MM = 10.0


def code128_svg(value: str) -> str:
    """An inline ``<svg>`` Code 128 barcode of ``value`` (printable ASCII), scaled to its box's width."""
    import barcode
    from barcode.errors import BarcodeError
    from barcode.writer import SVGWriter

    if not value or not value.isascii() or not value.isprintable():
        raise InputError("label", f"'{value[:40]}' cannot be encoded in Code 128",
                         "use printable ASCII specimen ids", record=value[:40])
    try:
        code = barcode.get("code128", value, writer=SVGWriter())
    except BarcodeError as exc:
        raise InputError("label", f"'{value[:40]}' cannot be encoded in Code 128 ({exc})",
                         "use printable ASCII specimen ids", record=value[:40]) from None
    out = io.BytesIO()
    code.write(out, options={"module_width": MODULE_MM, "module_height": BAR_HEIGHT_MM, "quiet_zone": 10 * MODULE_MM,
                             "write_text": False, "compress": False})
    svg = out.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    width = float(re.search(r'width="([\d.]+)mm"', svg).group(1))
    height = float(re.search(r'height="([\d.]+)mm"', svg).group(1))
    # bars are placed in mm: a viewBox in mm makes the drawing scale with the element's box
    svg = re.sub(r"(x|y|width|height)=\"([\d.]+)mm\"", r'\1="\2"', svg)
    return svg.replace("<svg ", f'<svg class="barcode" viewBox="0 0 {width:g} {height:g}" '
                                 'preserveAspectRatio="none" role="img" '
                                 f'aria-label="Code 128 {value}" ', 1)


@dataclass(frozen=True)
class Label:
    """What one tube label shows."""

    specimen_id: str
    patient: str
    collected: str          #: already in the lab's zone and format
    test: str
    svg: str


def sheets(labels: list[Label]) -> list[list[Label]]:
    """The labels in pages of one A4 sheet each."""
    per = SHEET["columns"] * SHEET["rows"]
    return [labels[i:i + per] for i in range(0, len(labels), per)] or [[]]
