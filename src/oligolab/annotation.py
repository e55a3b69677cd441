"""Reference annotation: which gene and codon a reference position falls in, and the amino-acid change a
substitution makes (e.g. N:R203K), from a GenBank record's CDS features (joined locations such as ORF1ab's
frameshift are followed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    def from_genbank(cls, path: str | Path) -> "Annotation":
        from Bio import SeqIO
        import io

        path = Path(path)
        try:
            with open_binary(path) as fh:
                rec = next(SeqIO.parse(io.TextIOWrapper(fh, encoding="utf-8", errors="replace"), "genbank"))
        except (StopIteration, ValueError) as exc:
            raise InputError(path, f"not a readable GenBank record ({exc})", "give the reference's GenBank file") \
                from None
        cdss = []
        for f in rec.features:
            if f.type != "CDS":
                continue
            gene = (f.qualifiers.get("gene") or f.qualifiers.get("product") or ["CDS"])[0]
            parts = []
            for part in f.location.parts:
                rng = np.arange(int(part.start), int(part.end))
                parts.append(rng if (part.strand or 1) == 1 else rng[::-1])
            cdss.append(CDS(gene, np.concatenate(parts), f.location.strand or 1))
        return cls(str(rec.seq), cdss)

    def gene_of(self, pos0: int) -> str:
        hits = self._index.get(pos0, [])
        return ",".join(sorted({self.cdss[ci].gene for ci, _ in hits}))

    def aa_change(self, pos0: int, alt: str) -> str:
        """'GENE:R203K' style names of the amino-acid changes a substitution at 0-based ``pos0`` makes
        (synonymous changes as 'GENE:L37L'); '' outside coding regions or for non-ACGT bases."""
        if alt not in "ACGT" or len(alt) != 1:
            return ""
        out = []
        for ci, k in self._index.get(pos0, []):
            cds = self.cdss[ci]
            codon_idx = k // 3
            cpos = cds.positions[3 * codon_idx: 3 * codon_idx + 3]
            if len(cpos) < 3:
                continue
            ref_codon = "".join(self.sequence[p] for p in cpos)
            alt_list = list(ref_codon)
            comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
            alt_list[k % 3] = alt  # top-strand bases in coding order
            if cds.strand != 1:
                ref_codon = "".join(comp[b] for b in ref_codon)
                alt_list = [comp[b] for b in alt_list]
            ref_aa = _CODON.get(ref_codon, "X")
            alt_aa = _CODON.get("".join(alt_list), "X")
            out.append(f"{cds.gene}:{ref_aa}{codon_idx + 1}{alt_aa}")
        return ",".join(out)
