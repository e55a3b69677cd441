"""Duplex strands of a site and their chemical modification notation.

Strand layouts: '19+2' (19-bp duplex, 2-nt 3' overhang on each strand, 'dTdT' or 'UU') and '21/23' (sense 21 nt,
guide 23 nt whose 2-nt 3' overhang pairs with the target, blunt at the guide 5' end: the GalNAc drugs' layout).
Notation (data/sirna-drugs/MODIFICATIONS.md): lower case = 2'-O-methyl, upper case + f = 2'-fluoro, upper case =
unmodified, dT (dA, dC, dG) = deoxyribonucleotide, s = phosphorothioate, (Agn) (Cgn) (Ggn) (Tgn) = (S)-glycol nucleic
acid (GNA), (vinu) = 5'-(E)-vinylphosphonate 2'-O-methyl uridine (the token of US 12,454,693), -GalNAc3 / L96 =
triantennary GalNAc on that 3' end. :func:`decode_notation` reads it back (for `oligolab sirna score`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
    core = rna[pos : pos + SITE]
    if layout == "19+2":
        tail = ["dT", "dT"] if overhang == "dTdT" else list(overhang.replace("T", "U"))
        sense = list(core) + tail
        guide = list(rc_rna(core)) + tail
    elif layout == "21/23":
        if pos < 4:
            return None
        sense = list(rna[pos - 2 : pos + SITE])
        guide = list(rc_rna(rna[pos - 4 : pos + SITE]))
    else:
        raise InputError(None, f"unknown layout {layout!r}", "use 19+2 or 21/23")
    return Duplex(
        "".join(t if t != "dT" else "T" for t in sense), "".join(t if t != "dT" else "T" for t in guide), sense, guide
    )


def residue_styles(pattern: dict[str, Any], strand: str, n: int) -> tuple[list[str], set[int]]:
    """Per residue (1..n) of a strand: its style ('f' 2'-F, 'o' 2'-OMe, 'r' unmodified, 'g' GNA, 'v' 5'-VP) and
    the residues followed by a phosphorothioate; from ``pattern`` (see sirna-modifications.toml)."""
    default = "o" if pattern.get("default_sugar", "ome") == "ome" else "r"
    fluoro = set(pattern.get(f"{strand}_fluoro", []))
    ome = set(pattern.get(f"{strand}_ome", []))
    gna = set(pattern.get(f"{strand}_gna", []))
    odd_f = (strand == "guide") == (pattern.get("guide_fluoro_parity", "odd") == "odd")
    styles = []
    for i in range(1, n + 1):
        if i in gna:
            style = "g"
        elif i == 1 and strand == "guide" and pattern.get("guide_5prime_vp", False):
            style = "v"
        elif pattern.get("alternate"):
            style = "f" if (i % 2 == 1) == odd_f else "o"
        else:
            style = "f" if i in fluoro else "o" if i in ome else default
        styles.append(style)
    ps_after = {i for i in pattern.get(f"{strand}_ps_after", []) if i < n}
    return styles, ps_after


_STYLE = {
    "f": lambda b: b + "f",
    "o": str.lower,
    "r": lambda b: b,
    "g": lambda b: f"({'T' if b == 'U' else b}gn)",
    "v": lambda b: f"(vin{b.lower()})",
}


def modified_notation(tokens: list[str], strand: str, pattern: dict[str, Any]) -> str:
    """Write one strand in the modification notation of ``pattern`` (see sirna-modifications.toml): sugars,
    phosphorothioates, GNA residues (``{strand}_gna``), a guide 5'-vinylphosphonate (``guide_5prime_vp``) and a
    sense 3' ligand; dT residues stay dT."""
    styles, ps_after = residue_styles(pattern, strand, len(tokens))
    out = []
    for i, (tok, style) in enumerate(zip(tokens, styles), 1):
        out.append("dT" if tok == "dT" else _STYLE[style](tok))
        if i in ps_after:
            out.append("s")
    text = "".join(out)
    if strand == "sense" and pattern.get("sense_3prime"):
        text += pattern["sense_3prime"]
    return text


_TOKEN = re.compile(r"\((?:([ACGT])gn|vin([acgu]))\)|d([ACGT])|([ACGU])f|([acgu])|([ACGU])|(s)")
_LIGAND = re.compile(r"(?:-?GalNAc3|-?L96|-?\(?NAG\d*\)?)$")


@dataclass
class DecodedStrand:
    """A strand read from the modification notation."""

    bases: str  #: RNA letters 5'->3' (deoxy residues as their RNA base, dT as T)
    residues: list[str]  #: one token per residue as written
    sugar: list[str] = field(default_factory=list)  #: per residue: ome, fluoro, rna, dna, gna
    phosphorothioates: int = 0
    vinylphosphonate: bool = False
    ligand: str = ""

    @property
    def modified(self) -> bool:
        return any(s != "rna" for s in self.sugar) or self.phosphorothioates > 0 or self.vinylphosphonate


def decode_notation(text: str) -> DecodedStrand:
    """Bases and modifications of a strand written in the notation above, or plain bases (RNA or DNA letters).
    Raises ValueError naming the first character it cannot read."""
    t = re.sub(r"\s+", "", text.strip())
    t = re.sub(r"^5'-?|-?3'$", "", t)
    m = _LIGAND.search(t)
    ligand = m.group(0).lstrip("-") if m and m.group(0) else ""
    body = t[: m.start()] if m and ligand else t
    if re.fullmatch(r"[ACGTU]+", body):  # plain bases: DNA letters, or RNA letters with dT written T
        bases = body if "U" in body else body.replace("T", "U")
        return DecodedStrand(bases, list(bases), ["rna"] * len(bases), 0, False, ligand)
    out = DecodedStrand("", [], [], 0, False, ligand)
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m:
            raise ValueError(f"cannot read {body[pos : pos + 8]!r} at character {pos + 1}")
        gna, vin, deoxy, fluoro, ome, rna, ps = m.groups()
        if ps:
            out.phosphorothioates += 1
        else:
            base = gna or (vin or "").upper() or deoxy or fluoro or (ome or "").upper() or rna
            base = base if deoxy else base.replace("T", "U")
            kind = "gna" if gna else "ome" if (vin or ome) else "dna" if deoxy else "fluoro" if fluoro else "rna"
            out.vinylphosphonate |= bool(vin) and not out.residues
            out.residues.append(m.group(0))
            out.sugar.append(kind)
            out.bases += base
        pos = m.end()
    return out
