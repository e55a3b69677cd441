"""Transcripts of `oligolab sirna`: reading FASTA/GenBank mRNAs, their CDS and gene, and where a site falls.

The CDS comes from GenBank features, a ``CDS=a-b`` / ``CDS:a-b`` field in a FASTA header (1-based inclusive), or
else the longest ATG..stop reading frame (said so in :attr:`Transcript.cds_source`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np

from ..sequences import encode, is_genbank, read_fasta, read_genbank

SITE = 19  #: nt, core duplex length the efficacy model describes


@dataclass
class Transcript:
    """One mRNA: DNA letters, upper case; the CDS as 0-based half-open coordinates on it."""

    id: str
    description: str
    seq: str  #: DNA letters, upper case
    cds: tuple[int, int] | None  #: 0-based half-open CDS on the transcript
    cds_source: str  #: 'annotation', 'header', 'longest ORF' or ''

    @property
    def gene(self) -> str | None:
        return gene_symbol(self.description)


def gene_symbol(description: str) -> str | None:
    """Gene symbol from a RefSeq definition line ('... transthyretin (TTR), mRNA') or a GENCODE header."""
    m = re.search(r"\(([A-Za-z0-9\-]+)\)(?:,| transcript| mRNA|;|$)", description)
    if m:
        return m.group(1)
    m = re.search(r"gene(?:_symbol)?[=:]([A-Za-z0-9\-]+)", description)
    return m.group(1) if m else None


CDS_HEADER = re.compile(r"CDS[=:](\d+)-(\d+)")


@nb.njit(cache=True, nogil=True)
def longest_orf_codes(codes: np.ndarray) -> tuple[int, int]:
    """(start, end) of the longest ATG..stop reading frame in engine codes (A0 C1 G2 T3), or (-1, -1)."""
    best_s, best_e = -1, -1
    n = codes.shape[0]
    for frame in range(3):
        start = -1
        for i in range(frame, n - 2, 3):
            a, b, c = codes[i], codes[i + 1], codes[i + 2]
            if start < 0 and a == 0 and b == 3 and c == 2:
                start = i
            elif start >= 0 and a == 3 and ((b == 0 and (c == 0 or c == 2)) or (b == 2 and c == 0)):
                if best_s < 0 or i + 3 - start > best_e - best_s:
                    best_s, best_e = start, i + 3
                start = -1
    return best_s, best_e


def longest_orf(seq: str) -> tuple[int, int] | None:
    """Longest ATG..stop open reading frame on the given strand (0-based half-open, stop included)."""
    s, e = longest_orf_codes(encode(seq))
    return (int(s), int(e)) if s >= 0 else None


def read_transcripts(path: str | Path, *, find_cds: bool = True) -> list[Transcript]:
    """Transcripts from FASTA or GenBank. The CDS comes from GenBank features, a 'CDS=a-b' / 'CDS:a-b' field
    in a FASTA header (1-based inclusive), or else the longest ORF (said so in ``cds_source``)."""
    path = Path(path)
    out = []
    if is_genbank(path):
        for rec in read_genbank(path):
            cds = next(((f.start, f.end) for f in rec.features if f.kind == "CDS"), None)
            out.append(
                Transcript(
                    rec.id, rec.description, rec.seq.decode().replace("U", "T"), cds, "annotation" if cds else ""
                )
            )
    else:
        for fa in read_fasta(path):
            seq = fa.text().replace("U", "T")
            m = CDS_HEADER.search(fa.description) or CDS_HEADER.search(fa.id)
            if m:
                cds, src = (int(m.group(1)) - 1, int(m.group(2))), "header"
            elif find_cds:
                cds, src = longest_orf(seq), "longest ORF"
            else:
                cds, src = None, ""
            out.append(Transcript(fa.id, fa.description, seq, cds, src))
    return out


def region_of(t: Transcript, pos: int) -> str:
    """5'UTR, CDS or 3'UTR of the site starting at 0-based ``pos`` (by its middle base); '' without a CDS."""
    if t.cds is None:
        return ""
    mid = pos + SITE // 2
    if mid < t.cds[0]:
        return "5'UTR"
    if mid >= t.cds[1]:
        return "3'UTR"
    return "CDS"


def species_of(description: str) -> str | None:
    """'Mus_musculus' from a definition line that starts with the binomial name (RefSeq style)."""
    m = re.match(r"(?:PREDICTED: )?([A-Z][a-z]+ [a-z]+)", description)
    return m.group(1).replace(" ", "_") if m else None
