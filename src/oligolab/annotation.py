"""Reference annotation: which gene and codon a reference position falls in, and the amino-acid change a
substitution makes (e.g. N:R203K), from a GenBank record's CDS features (joined locations such as ORF1ab's
frameshift are followed)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .sequences import open_binary

_CODON = {}
_BASES = "TCAG"
_AA = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
for _i, _a in enumerate(_BASES):
    for _j, _b in enumerate(_BASES):
        for _k, _c in enumerate(_BASES):
            _CODON[_a + _b + _c] = _AA[16 * _i + 4 * _j + _k]


def _complement(bases: str) -> str:
    return bases.translate(str.maketrans("ACGT", "TGCA"))


@dataclass
class CDS:
    gene: str
    positions: np.ndarray  #: 0-based reference positions of the coding bases, in coding order
    strand: int


class Annotation:
    """CDS features of a reference genome."""

    def __init__(self, sequence: str, cdss: list[CDS]):
        self.sequence = sequence.upper()
        self.cdss = cdss
        self._index: dict[int, list[tuple[int, int]]] = {}
        for ci, cds in enumerate(cdss):
            for k, pos in enumerate(cds.positions):
                self._index.setdefault(int(pos), []).append((ci, k))

    @classmethod
    def from_genbank(cls, path: str | Path) -> Annotation:
        """The first record of a GenBank file (plain or compressed) and its CDS features."""
        path = Path(path)
        try:
            rec = _first_genbank_record(path)
            cdss = [cds for f in rec.features if f.type == "CDS" for cds in [_cds(f)] if cds is not None]
            sequence = str(rec.seq)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001  (Biopython's parser raises many kinds; all mean a bad file)
            raise InputError(
                path,
                f"not a readable GenBank record ({type(exc).__name__}: {exc})",
                "give the reference's GenBank file",
            ) from None
        return cls(sequence, cdss)

    def gene_of(self, pos0: int) -> str:
        hits = self._index.get(pos0, [])
        return ",".join(sorted({self.cdss[ci].gene for ci, _ in hits}))

    def aa_change(self, pos0: int, alt: str) -> str:
        """'GENE:R203K' style names of the amino-acid changes made by substituting the bases ``alt`` from 0-based
        reference position ``pos0`` on (one base, or a run such as AAC for GGG28881AAC: 'N:R203K,N:G204R');
        synonymous changes as 'GENE:L37L'; '' outside coding regions or for non-ACGT bases."""
        if not alt or any(b not in "ACGT" for b in alt):
            return ""
        new = {pos0 + i: b for i, b in enumerate(alt)}
        codons: dict[tuple[int, int], None] = {}
        for p in new:
            for ci, k in self._index.get(p, []):
                codons[(ci, k // 3)] = None
        out = []
        for ci, codon_idx in codons:
            cds = self.cdss[ci]
            cpos = cds.positions[3 * codon_idx : 3 * codon_idx + 3]
            if len(cpos) < 3:
                continue
            ref_codon = "".join(self.sequence[p] for p in cpos)
            alt_codon = "".join(new.get(int(p), self.sequence[p]) for p in cpos)  # top-strand bases, coding order
            if cds.strand != 1:
                ref_codon, alt_codon = _complement(ref_codon), _complement(alt_codon)
            out.append(f"{cds.gene}:{_CODON.get(ref_codon, 'X')}{codon_idx + 1}{_CODON.get(alt_codon, 'X')}")
        return ",".join(out)


def _first_genbank_record(path: Path) -> Any:
    import io

    from Bio import SeqIO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Biopython warns about sloppy but readable files
        with open_binary(path) as fh:
            rec = next(SeqIO.parse(io.TextIOWrapper(fh, encoding="utf-8", errors="replace"), "genbank"), None)
    if rec is None:
        raise InputError(path, "no GenBank record found", "give the reference's GenBank file (starting with LOCUS)")
    return rec


def _cds(feature: Any) -> CDS | None:
    """The coding positions of a CDS feature in coding order (joined parts followed), None when empty."""
    gene = (feature.qualifiers.get("gene") or feature.qualifiers.get("product") or ["CDS"])[0]
    parts = []
    for part in feature.location.parts:
        rng = np.arange(int(part.start), int(part.end))
        parts.append(rng if (part.strand or 1) == 1 else rng[::-1])
    if not parts:
        return None
    return CDS(gene, np.concatenate(parts), feature.location.strand or 1)
