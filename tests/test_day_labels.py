"""Barcode labels (oligolab.service.labels): the Code 128 SVG decodes back to the specimen id (bars read from
the drawing and decoded with the Code 128 symbol table, checksum included); ids a barcode cannot carry are
refused in one line; sheets are A4 pages of 24."""

from __future__ import annotations

import re

import pytest

from oligolab.errors import InputError
from oligolab.service.labels import MODULE_MM, Label, code128_svg, sheets


def decode_code128(svg: str) -> str:
    """The text a scanner reads from the SVG's bars (code sets B and C, checksum checked)."""
    from barcode.charsets.code128 import A, B, CODES, STOP

    bars = [(float(x), float(w)) for x, w in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)]
    start, end = bars[0][0], bars[-1][0] + bars[-1][1]
    bits = ["0"] * round((end - start) / MODULE_MM)
    for x, w in bars:
        for k in range(round((x - start) / MODULE_MM), round((x + w - start) / MODULE_MM)):
            bits[k] = "1"
    text = "".join(bits)
    assert text.endswith(STOP + "11"), "no stop pattern"
    symbols = [CODES.index(text[i:i + 11]) for i in range(0, len(text) - 13, 11)]
    assert (symbols[0] + sum(i * s for i, s in enumerate(symbols[1:-1], 1))) % 103 == symbols[-1], "checksum"
    by_b, by_a = {v: k for k, v in B.items()}, {v: k for k, v in A.items()}
    out, mode = "", {103: "A", 104: "B", 105: "C"}[symbols[0]]
    for s in symbols[1:-1]:
        if mode == "C" and s < 100:
            out += f"{s:02d}"
        elif s == 99 or (s == 100 and mode != "B") or (s == 101 and mode != "A"):
            mode = {99: "C", 100: "B", 101: "A"}[s]       # code set switch
        else:
            out += (by_b if mode == "B" else by_a)[s]
    return out


@pytest.mark.parametrize("value", ["SYK-0001", "AST-1", "P100000", "ARH/2026/12/0004", "a.b_c:d-9",
                                   "1234567890123456", "X" * 40])
def test_code128_svg_decodes_to_the_specimen_id(value):
    svg = code128_svg(value)
    assert svg.startswith('<svg class="barcode" viewBox="0 0 ') and "<?xml" not in svg
    assert decode_code128(svg) == value


@pytest.mark.parametrize("value", ["", "Образец-1", "tab\there"])
def test_ids_a_barcode_cannot_carry_are_refused(value):
    with pytest.raises(InputError, match="cannot be encoded in Code 128"):
        code128_svg(value)


def test_sheets_of_24():
    labels = [Label(f"S{i}", "p", "t", "x", "") for i in range(50)]
    pages = sheets(labels)
    assert [len(p) for p in pages] == [24, 24, 2] and pages[2][1].specimen_id == "S49"
    assert sheets([]) == [[]]
