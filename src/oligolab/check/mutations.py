"""The mutations behind a weakened or lost oligo site, named against the reference ('C28311T', 'del28311',
'28311_28312insA') with their position from the oligo's 3' end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..sequences import decode
from .oligos import SearchOligo
from .sites import SiteBook

Mutation = tuple[str, int, int]  #: (name, position from the oligo's 3' end, reference position 1-based)
LOST_FLANK_NT = 15  #: reference context aligned on each side of a lost site, so indels are placed where they are
LOST_SLACK_NT = 40  #: extra genome bases searched on each side of the expected place of a lost site


@dataclass
class ReferenceSite:
    """Where an oligo sits on the reference, and how the reference itself differs from the oligo."""

    start: int
    end: int
    strand: str
    target: str
    columns: np.ndarray
    mm_from_3p: tuple[int, ...] = ()  #: design mismatches: oligo positions (from 3') that differ from the reference
    call: tuple[int, str, float] = (0, "", 0.0)  #: the oligo's call on the reference: code, reason, Tm drop °C


def _complement(b: str) -> str:
    return {"A": "T", "C": "G", "G": "C", "T": "A"}.get(b, b)


def _make_aligner() -> Any:
    """Global alignment of a genome window (free end gaps) to the reference around a site (Biopython)."""
    import warnings

    from Bio import Align

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        al = Align.PairwiseAligner()
        al.mode = "global"
        al.match_score, al.mismatch_score = 2.0, -3.0
        al.open_gap_score, al.extend_gap_score = -5.0, -1.0
        al.end_insertion_score, al.end_deletion_score = -10.0, 0.0  # the genome window's flanks are free
    return al


class Mutations:
    """Mutations under found sites (by site id) and behind lost sites (lists kept by id in :attr:`lost`;
    id 0 is the empty list)."""

    def __init__(
        self,
        oligos: list[SearchOligo],
        book: SiteBook,
        ref_sites: list[ReferenceSite | None],
        ref_codes: np.ndarray | None,
    ):
        self.oligos = oligos
        self.book = book
        self.ref_sites = ref_sites
        self.ref_codes = ref_codes
        self._by_site: dict[int, list[Mutation]] = {}
        self.lost: list[list[Mutation]] = [[]]
        self._lost_index: dict[tuple[int, str], int] = {}
        self._aligner: Any = None

    def under_site(self, sid: int) -> list[Mutation]:
        """Mutations (vs the reference) under a site, read from the site's alignment to the oligo."""
        cached = self._by_site.get(sid)
        if cached is not None:
            return cached
        self._by_site[sid] = out = self._site_mutations(sid)
        return out

    def _site_mutations(self, sid: int) -> list[Mutation]:
        f = self.book.facts(sid)
        ref = self.ref_sites[f.oligo]
        if ref is None or ref.strand != f.strand:
            return []
        so = self.oligos[f.oligo]
        m = len(so.pattern)
        out = []
        for i in range(so.context5, m - so.context3):
            gc, rc = f.columns[i], ref.columns[i]
            if rc < 0:
                continue
            # reference position of oligo position i (top-strand coordinates)
            rpos = ref.start + (rc if ref.strand == "+" else ref.end - ref.start - 1 - rc)
            rb = ref.target[rc]
            gb = f.target[gc] if gc >= 0 else "-"
            if gb == rb or gb == "N":
                continue
            from_3p = m - so.context3 - i
            if ref.strand == "-":
                rb, gb = _complement(rb), _complement(gb)
            name = f"{rb}{rpos + 1}{gb}" if gb != "-" else f"del{rpos + 1}"
            out.append((name, from_3p, rpos + 1))
        return merge_adjacent(out)

    def explain_lost(self, o: int, genome: np.ndarray, shift: int) -> int:
        """Align the reference site of a lost oligo to the genome where it should be; returns the id of the
        mutation list (substitutions, deletions, insertions in reference coordinates) that removed it."""
        ref = self.ref_sites[o]
        assert ref is not None and self.ref_codes is not None
        flank = LOST_FLANK_NT
        lo = max(0, ref.start + shift - flank - LOST_SLACK_NT)
        hi = min(len(genome), ref.end + shift + flank + LOST_SLACK_NT)
        if hi - lo < (ref.end - ref.start) // 2:
            return 0
        window = decode(genome[lo:hi])
        key = (o, window)
        lid = self._lost_index.get(key)
        if lid is not None:
            return lid
        if self._aligner is None:
            self._aligner = _make_aligner()
        r0 = max(0, ref.start - flank)
        r1 = min(len(self.ref_codes), ref.end + flank)
        ref_top = decode(self.ref_codes[r0:r1])
        aln = self._aligner.align(window, ref_top)[0]
        self.lost.append(self._walk_alignment(o, ref, aln, window, ref_top, r0))
        lid = self._lost_index[key] = len(self.lost) - 1
        return lid

    def _walk_alignment(
        self, o: int, ref: ReferenceSite, aln: Any, window: str, ref_top: str, r0: int
    ) -> list[Mutation]:
        """The differences inside the reference site along an alignment of the genome window to the reference."""
        so = self.oligos[o]
        m = len(so.pattern)
        col_to_oligo = {int(c): i for i, c in enumerate(ref.columns) if c >= 0}

        def in_site(p: int) -> bool:
            return ref.start <= p < ref.end

        def from_3p(p: int) -> int:
            c = p - ref.start if ref.strand == "+" else ref.end - 1 - p
            i = col_to_oligo.get(c)
            return m - so.context3 - i if i is not None else 0

        muts: list[Mutation] = []
        (t_starts, q_starts) = aln.coordinates
        dels: list[int] = []

        def flush_dels() -> None:
            if dels and any(in_site(p) for p in dels):
                name = f"del{dels[0] + 1}" + (f"-{dels[-1] + 1}" if len(dels) > 1 else "")
                muts.append((name, max(from_3p(p) for p in dels if in_site(p)), dels[0] + 1))
            dels.clear()

        for k in range(len(t_starts) - 1):
            t0, t1, q0, q1 = int(t_starts[k]), int(t_starts[k + 1]), int(q_starts[k]), int(q_starts[k + 1])
            if t1 > t0 and q1 > q0:  # aligned block
                flush_dels()
                for d in range(q1 - q0):
                    rb, gb = ref_top[q0 + d], window[t0 + d]
                    p = r0 + q0 + d
                    if rb != gb and gb in "ACGT" and in_site(p):
                        muts.append((f"{rb}{p + 1}{gb}", from_3p(p), p + 1))
            elif q1 > q0:  # reference bases missing from the genome
                dels.extend(r0 + q for q in range(q0, q1))
            elif t1 > t0 and 0 < q0 < len(ref_top):  # bases inserted in the genome
                flush_dels()
                p = r0 + q0 - 1
                if in_site(p) and in_site(p + 1):
                    muts.append((f"{p + 1}_{p + 2}ins{window[t0:t1]}", from_3p(p), p + 1))
        flush_dels()
        return merge_adjacent(muts)


_SUBSTITUTION = re.compile(r"^([ACGT]+)(\d+)([ACGT]+)$")


def merge_adjacent(mutations: list[Mutation]) -> list[Mutation]:
    """Substitutions at consecutive reference positions as one event (G28881A, G28882A, G28883C ->
    GGG28881AAC), in reference order; its position from the 3' end is the one nearest the 3' end."""
    subs = sorted((m for m in mutations if _SUBSTITUTION.match(m[0])), key=lambda m: m[2])
    out = [m for m in mutations if not _SUBSTITUTION.match(m[0])]
    run: list[Mutation] = []
    for m in subs + [("", 0, -10)]:
        if run and m[2] != run[-1][2] + 1:
            ref = "".join(_SUBSTITUTION.match(x[0]).group(1) for x in run)  # type: ignore[union-attr]
            alt = "".join(_SUBSTITUTION.match(x[0]).group(3) for x in run)  # type: ignore[union-attr]
            out.append((f"{ref}{run[0][2]}{alt}", min(x[1] for x in run), run[0][2]))
            run = []
        run.append(m)
    return sorted(out, key=lambda m: (m[2], m[0]))
