"""Duplex strands of a site and their chemical modification notation.

Strand layouts: '19+2' (19-bp duplex, 2-nt 3' overhang on each strand, 'dTdT' or 'UU') and '21/23' (sense 21 nt,
guide 23 nt whose 2-nt 3' overhang pairs with the target, blunt at the guide 5' end: the GalNAc drugs' layout).
Notation (data/sirna-drugs/MODIFICATIONS.md): lower case = 2'-O-methyl, upper case + f = 2'-fluoro, upper case =
unmodified, dT = deoxythymidine, s = phosphorothioate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..sequences import reverse_complement
from .transcripts import SITE


@dataclass
class Duplex:
    """Both strands of a duplex, 5'->3'."""

    sense: str  #: RNA, 5'->3' (dT written as 'T' residues: see ``sense_tokens``)
    guide: str
    sense_tokens: list[str]  #: one token per residue: 'A' (RNA) or 'dT'
    guide_tokens: list[str]


def rc_rna(seq: str) -> str:
    """Reverse complement in RNA letters."""
    return reverse_complement(seq.replace("U", "T")).replace("T", "U")


def duplex_strands(mrna: str, pos: int, layout: str, overhang: str = "dTdT") -> Duplex | None:
    """Sense and guide strands of the duplex whose 19-nt core targets mrna[pos:pos+19].

    '19+2': 19-bp duplex, 2-nt 3' overhang on each strand ('dTdT' or 'UU'). '21/23': sense 21 nt =
    mrna[pos-2:pos+19], guide 23 nt = reverse complement of mrna[pos-4:pos+19] (2-nt guide 3' overhang that pairs
    with the target, blunt at the guide 5' end), the layout of the GalNAc-conjugated drugs.
    """
    rna = mrna.replace("T", "U")
    core = rna[pos:pos + SITE]
    if layout == "19+2":
        tail = ["dT", "dT"] if overhang == "dTdT" else list(overhang.replace("T", "U"))
        sense = list(core) + tail
        guide = list(rc_rna(core)) + tail
    elif layout == "21/23":
        if pos < 4:
            return None
        sense = list(rna[pos - 2:pos + SITE])
        guide = list(rc_rna(rna[pos - 4:pos + SITE]))
    else:
        raise InputError(None, f"unknown layout {layout!r}", "use 19+2 or 21/23")
    return Duplex("".join(t if t != "dT" else "T" for t in sense), "".join(t if t != "dT" else "T" for t in guide),
                  sense, guide)


def modified_notation(tokens: list[str], strand: str, pattern: dict[str, Any]) -> str:
    """Write one strand in the modification notation of ``pattern`` (see sirna-modifications.toml)."""
    n = len(tokens)
    default = pattern.get("default_sugar", "ome")
    fluoro = set(pattern.get(f"{strand}_fluoro", []))
    ome = set(pattern.get(f"{strand}_ome", []))
    ps_after = set(pattern.get(f"{strand}_ps_after", []))
    parity = pattern.get("guide_fluoro_parity", "odd")
    out = []
    for i, tok in enumerate(tokens, 1):
        if tok == "dT":
            res = "dT"
        elif pattern.get("alternate"):
            odd = i % 2 == 1
            f_here = odd if (strand == "guide") == (parity == "odd") else not odd
            res = tok + "f" if f_here else tok.lower()
        elif i in fluoro:
            res = tok + "f"
        elif i in ome:
            res = tok.lower()
        else:
            res = tok.lower() if default == "ome" else tok
        out.append(res)
        if i in ps_after and i < n:
            out.append("s")
    text = "".join(out)
    if strand == "sense" and pattern.get("sense_3prime"):
        text += pattern["sense_3prime"]
    return text
