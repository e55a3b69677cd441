"""The order sheet: everything a laboratory buys to run the designed assays, 5'->3', ready for a vendor.

* primers as DNA (the T7 promoter included on the T7 primer of RNA-targeting assays; FIP/BIP as one oligo
  F1c+F2 / B1c+B2; degenerate bases as IUPAC letters);
* each guide twice, as the laboratory chooses: a synthetic RNA (repeat/scaffold + spacer in the enzyme's layout)
  or a DNA template for in-vitro transcription (the reverse complement of T7 promoter + guide RNA, annealed to
  the shared top-strand promoter oligo; the transcript starts with the promoter's GG), with the shared promoter
  oligo once;
* the reporters of the enzyme (from its enzyme file: what its collateral activity cuts);
* per assay a positive-control template: the consensus amplicon with flanks behind a T7 promoter as a
  double-stranded gene fragment, and the RNA T7 transcribes from it.

Every row carries the vendor notation (IDT style: ``rA rC rG rU`` for RNA, ``/56-FAM/`` and ``/3IABkFQ/`` for
modifications), the synthesis scale and the purification chosen by ``knowledge/amplification.toml`` [ordering]
from the oligo's kind and length.
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import InputError
from ..knowledge import Enzyme, amplification
from ..sequences import reverse_complement
from .collection import Profile
from .model import DesignedAssay
from .scoring import crrna

COLUMNS = [
    "assay",
    "rank",
    "item",
    "kind",
    "role",
    "sequence_5to3",
    "vendor_sequence",
    "length_nt",
    "scale",
    "purification",
    "full_length_fraction",
    "notes",
]
_MOD = re.compile(r"/[^/]*/")


def vendor_rna(rna: str) -> str:
    """RNA in IDT notation: every ribonucleotide prefixed with r (rArCrGrU)."""
    return "".join("r" + b for b in rna.upper().replace("T", "U"))


def synthesised_length(vendor_sequence: str) -> int:
    """Bases of an oligo written in vendor notation (modifications and r prefixes not counted)."""
    return len(re.sub(r"[^ACGTUNRYKMSWBDHV]", "", _MOD.sub("", vendor_sequence).replace("r", "")))


def synthesis(kind: str, length: int) -> tuple[str, str, str]:
    """(scale, purification, why) for an item of ``kind`` (dna, rna, reporter, fragment) and length in nt,
    from the ordering rules of amplification.toml."""
    for rule in amplification()["ordering"]["rule"]:
        lo, hi = rule["length_nt"]
        if rule["kind"] == kind and lo <= length <= hi:
            return rule["scale"], rule["purification"], rule["why"]
    raise InputError(
        None,
        f"no ordering rule for a {length}-nt {kind} item",
        "add an [[ordering.rule]] for it to a copy of knowledge/amplification.toml",
    )


def full_length_fraction(length: int) -> float:
    """Expected fraction of full-length molecules of a chemically synthesised oligo (coupling efficiency^(n-1))."""
    eff = float(amplification()["ordering"]["coupling_efficiency"])
    return round(eff ** max(0, length - 1), 3)


def _row(
    assay: str, rank: int, item: str, kind: str, role: str, seq: str, vendor: str, notes: str, synth_kind: str
) -> list:
    length = synthesised_length(vendor) if synth_kind in ("reporter", "rna") else len(seq)
    vendor = vendor if synth_kind != "transcript" else "(transcribed in house)"
    scale, purification, why = synthesis(synth_kind, length)
    flf = full_length_fraction(length) if synth_kind not in ("fragment", "transcript") else float("nan")
    return [
        assay,
        rank,
        item,
        kind,
        role,
        seq,
        vendor,
        length,
        scale,
        purification,
        flf,
        f"{notes}; {why}" if notes else why,
    ]


def _primer_rows(a: DesignedAssay, rank: int) -> list[list]:
    rows = []
    for o in a.primers:
        seq = o.full_sequence.upper()
        note = o.notes
        if o.tail:
            note = f"{len(o.tail)}-nt T7 promoter tail + {len(o.sequence)}-nt binding part; " + note
        if o.parts:
            note = (
                f"{o.role} = {'F1c' if o.role == 'FIP' else 'B1c'} ({len(o.parts[0])} nt) + "
                f"{'F2' if o.role == 'FIP' else 'B2'} ({len(o.parts[1])} nt); " + note
            )
        degenerate = sum(1 for b in seq if b not in "ACGT")
        if degenerate:
            note = f"{degenerate} degenerate position(s) (IUPAC mixed bases); " + note
        rows.append(_row(a.name, rank, o.name, "DNA oligo", o.role, seq, seq, note, "dna"))
    return rows


def _guide_rows(a: DesignedAssay, rank: int, ivt: dict) -> list[list]:
    rows = []
    e = a.enzyme
    for o in a.guides:
        if not e.direct_repeat:
            rows.append(
                _row(
                    a.name,
                    rank,
                    o.name,
                    "RNA oligo (spacer only: scaffold not shipped)",
                    "crRNA",
                    o.sequence.replace("T", "U"),
                    vendor_rna(o.sequence),
                    f"{e.name}: no public source of its {e.guide_kind} repeat/scaffold was found, so only "
                    f"the {len(o.sequence)}-nt spacer is given; add the scaffold of your enzyme supplier "
                    f"({e.repeat_side} of the spacer) before ordering",
                    "rna",
                )
            )
            continue
        rna = crrna(e, o.sequence)
        rows.append(
            _row(
                a.name,
                rank,
                o.name,
                f"RNA oligo (synthetic {e.guide_kind})",
                "crRNA",
                rna,
                vendor_rna(rna),
                f"{e.name} repeat ({len(e.direct_repeat)} nt, {e.repeat_side} of the spacer) + spacer "
                f"({len(o.sequence)} nt)",
                "rna",
            )
        )
        template = reverse_complement(ivt["promoter_transcribed"] + rna.replace("U", "T"))
        rows.append(
            _row(
                a.name,
                rank,
                o.name + "-IVT",
                "DNA oligo (IVT template)",
                "crRNA template",
                template,
                template,
                "alternative to the synthetic guide: anneal to the T7 top-strand oligo and "
                "transcribe; the guide RNA then starts with 5'-GG",
                "dna",
            )
        )
    return rows


def control_region(a: DesignedAssay, profile: Profile) -> tuple[int, int]:
    """Reference columns of the positive control: the amplicon with ``flank_nt`` on each side, widened to
    ``min_length_nt`` where the consensus allows."""
    pc = amplification()["positive_control"]
    n = len(profile.consensus)
    lo, hi = max(0, a.amplicon[0] - int(pc["flank_nt"])), min(n, a.amplicon[1] + int(pc["flank_nt"]))
    while len(profile.sequence(lo, hi)) < int(pc["min_length_nt"]) and (lo > 0 or hi < n):
        lo, hi = max(0, lo - 1), min(n, hi + 1)
    return lo, hi


def _control_rows(a: DesignedAssay, rank: int, profile: Profile) -> list[list]:
    """The positive-control gene fragment (T7 promoter + consensus region, top strand) and its transcript."""
    t7 = amplification()["tails"]["T7"]
    lo, hi = control_region(a, profile)
    region = profile.sequence(lo, hi)
    fragment = t7 + region
    start = t7.rfind("GGG")
    rna = fragment[start:].replace("T", "U")
    where = f"reference {lo + 1}-{hi} (amplicon {a.amplicon[0] + 1}-{a.amplicon[1]} with flanks), design consensus"
    return [
        _row(
            a.name,
            rank,
            a.name + "-PC-DNA",
            "double-stranded gene fragment (positive control)",
            "positive control DNA",
            fragment,
            fragment,
            f"T7 promoter ({len(t7)} nt) + {where}; use as DNA control, or transcribe with T7 RNA polymerase "
            "for the RNA control",
            "fragment",
        ),
        _row(
            a.name,
            rank,
            a.name + "-PC-RNA",
            "in-vitro-transcribed RNA (positive control)",
            "positive control RNA",
            rna,
            "",
            f"the T7 transcript of {a.name}-PC-DNA (starts at the promoter's GGG; genome sense); transcribe, "
            "DNase-treat and quantify",
            "transcript",
        ),
    ]


def reporter_rows(enzymes: list[Enzyme]) -> list[list]:
    """One row per reporter of the enzymes used (from the enzyme files), or a row saying none is known."""
    rows = []
    for e in dict.fromkeys(enzymes):
        if not e.reporters:
            rows.append(
                [
                    "(all)",
                    0,
                    f"{e.name}-reporter",
                    "reporter (not shipped)",
                    "reporter",
                    "",
                    "",
                    0,
                    "",
                    "",
                    float("nan"),
                    f"{e.name}: its enzyme file names no reporter; add a [[reporter]] table "
                    f"(collateral activity: {e.collateral or 'not given'})",
                ]
            )
            continue
        for k, r in enumerate(e.reporters, 1):
            vendor = str(r["sequence"])
            core = _MOD.sub("", vendor).replace("r", "").replace(" ", "")
            rows.append(
                _row(
                    "(all)",
                    0,
                    f"{e.name}-reporter{k}",
                    f"reporter ({e.collateral or 'collateral'})",
                    "reporter",
                    core,
                    vendor.replace(" ", ""),
                    f"{r.get('name', '')}; {r.get('readout', '')}; source: {r.get('source', '')}",
                    "reporter",
                )
            )
    return rows


def order_sheet(assays: list[DesignedAssay], profile: Profile) -> pd.DataFrame:
    """Every item to order for ``assays`` (ranked) with the design collection's ``profile`` (consensus)."""
    ivt = amplification()["ivt"]
    rows: list[list] = []
    for rank, a in enumerate(assays, 1):
        rows += _primer_rows(a, rank) + _guide_rows(a, rank, ivt) + _control_rows(a, rank, profile)
    if any(r[4] == "crRNA template" for r in rows):
        seq = ivt["promoter_top_strand"]
        rows.append(
            _row(
                "(all)",
                0,
                "T7-top-strand",
                "DNA oligo",
                "IVT promoter",
                seq,
                seq,
                "shared by every IVT template",
                "dna",
            )
        )
    rows += reporter_rows([a.enzyme for a in assays])
    return pd.DataFrame(rows, columns=COLUMNS)
