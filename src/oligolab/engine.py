"""The approximate-match engine: every binding site of many oligos in many genomes, both strands, with up to
``k`` differences (mismatches plus gap nucleotides), at most ``g`` of them gap nucleotides (insertions or
deletions in the genome relative to the oligo).

How it is fast on real collections
----------------------------------
Genome collections are highly redundant (3,585 SARS-CoV-2 lineage genomes, 107 million positions, hold only
about 280,000 distinct 40-mers). The engine keys every genome position by the window of ``W`` bases that
starts there (``W`` = longest pattern + ``g``): a site starting at a position depends only on that window.
Windows are looked up in a hash table; only windows never seen before are searched, and their sites are
cached. The search itself runs Myers' bit-parallel edit-distance algorithm over the stretches of new windows
(a complete filter: an alignment with ``m`` mismatches and ``d`` gap nucleotides has edit distance at most
``m + d <= k``), and every candidate start is verified with a banded dynamic programme that enforces the two
budgets separately and records mismatch, unknown-base and gap positions.

Conventions
-----------
* Genome codes: 0..3 = A, C, G, T; 4 = unknown (N or another ambiguity code): never a match, counted as an
  *unknown* position of the site (and against the mismatch budget, as bowtie does); 5 = separator.
* Patterns are IUPAC masks. Positions flagged as *context* (for example a Cas12a PAM written as ``NNNN``
  before the spacer) match anything but the separator, cost nothing, and their genome bases are reported.
* Each oligo is searched as itself (strand ``+``: the genome's top strand reads like the oligo) and as its
  reverse complement (strand ``-``). Masks are reported in pattern orientation; :mod:`oligolab.check`
  turns them into positions from the oligo's 3' end.
* Alignment cost: mismatches + 2 x gap nucleotides (a bulge costs more than a mismatch); ties prefer fewer
  gaps, then the smaller genome span. Terminal gaps are not allowed: both ends of the oligo pair with bases.
* Budgets: mismatches (unknowns included) + gap nucleotides <= ``k``, gap nucleotides <= ``g``. Counting gaps
  against the same budget keeps short oligos from "binding" anywhere with a few mismatches plus a bulge.
* With ``g = 0`` the hit set is the set of all ungapped alignments with <= k mismatches, the same as
  ``bowtie -v k -a`` (tested). With gaps, every ungapped site is kept and a gapped site is kept only where it
  does not overlap an ungapped site or a cheaper gapped site of the same oligo and strand.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from .sequences import IUPAC_MASK, SEPARATOR, UNKNOWN, reverse_complement

MAX_PATTERN = 64  #: longest pattern (context included), one machine word for the bit-parallel filter
MAX_GAPS = 2
MAX_MISMATCHES = 8

_U1 = np.uint64(1)
_U0 = np.uint64(0)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)

# --------------------------------------------------------------------------------------------- patterns


@dataclass
class PatternSet:
    """Oligos compiled for the engine: two pattern-strands per oligo (index ``2*i`` is +, ``2*i+1`` is -)."""

    names: list[str]
    sequences: list[str]  #: IUPAC, oligo orientation, context included
    context5: np.ndarray  #: number of 5' context positions per oligo
    context3: np.ndarray  #: number of 3' context positions per oligo
    lengths: np.ndarray = field(init=False)  #: per pattern-strand
    masks: np.ndarray = field(init=False)  #: (n_patterns, MAX_PATTERN) uint8 IUPAC masks, pattern orientation
    is_context: np.ndarray = field(init=False)  #: (n_patterns, MAX_PATTERN) bool
    peq: np.ndarray = field(init=False)  #: (n_patterns, 6) uint64 match masks per genome code

    def __post_init__(self) -> None:
        n = len(self.sequences)
        self.context5 = np.asarray(self.context5, dtype=np.int64)
        self.context3 = np.asarray(self.context3, dtype=np.int64)
        self.lengths = np.zeros(2 * n, dtype=np.int64)
        self.masks = np.zeros((2 * n, MAX_PATTERN), dtype=np.uint8)
        self.is_context = np.zeros((2 * n, MAX_PATTERN), dtype=np.bool_)
        self.peq = np.zeros((2 * n, 6), dtype=np.uint64)
        for i, seq in enumerate(self.sequences):
            seq = seq.upper().replace("U", "T")
            if not 1 <= len(seq) <= MAX_PATTERN:
                raise ValueError(f"pattern {self.names[i]!r} has {len(seq)} nt; the engine takes 1..{MAX_PATTERN}")
            ctx = np.zeros(len(seq), dtype=bool)
            ctx[: self.context5[i]] = True
            if self.context3[i]:
                ctx[len(seq) - self.context3[i]:] = True
            for strand, (s, c) in enumerate(((seq, ctx), (reverse_complement(seq), ctx[::-1]))):
                j = 2 * i + strand
                m = len(s)
                self.lengths[j] = m
                for pos, ch in enumerate(s):
                    mask = 15 if c[pos] else IUPAC_MASK[ch]
                    self.masks[j, pos] = mask
                    self.is_context[j, pos] = c[pos]
                    bit = np.uint64(1) << np.uint64(pos)
                    for code in range(4):
                        if mask & (1 << code):
                            self.peq[j, code] |= bit
                    if c[pos]:
                        self.peq[j, UNKNOWN] |= bit

    @property
    def n_patterns(self) -> int:
        return len(self.lengths)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    @classmethod
    def from_oligos(cls, names: list[str], sequences: list[str], context5=None, context3=None) -> "PatternSet":
        n = len(sequences)
        return cls(list(names), list(sequences),
                   np.zeros(n, np.int64) if context5 is None else context5,
                   np.zeros(n, np.int64) if context3 is None else context3)


# ------------------------------------------------------------------------------------------- site table

SITE_FIELDS = ("pattern", "span", "mismatches", "mm_mask", "unknown", "unk_mask", "gaps", "gap1_pos",
               "gap1_len", "gap2_pos", "gap2_len", "cost")


@dataclass
class SiteTable:
    """Distinct sites (a pattern-strand aligned to a window's content); rows are referenced by site id."""

    pattern: np.ndarray
    span: np.ndarray  #: genome bases covered
    mismatches: np.ndarray
    mm_mask: np.ndarray  #: uint64, bit i = pattern position i mismatched
    unknown: np.ndarray
    unk_mask: np.ndarray
    gaps: np.ndarray  #: gap nucleotides
    gap1_pos: np.ndarray  #: pattern position before which the gap sits (-1 = none)
    gap1_len: np.ndarray  #: + genome insertion, - genome deletion (oligo bases unpaired)
    gap2_pos: np.ndarray
    gap2_len: np.ndarray
    cost: np.ndarray
    target: np.ndarray  #: (n, MAX_PATTERN + MAX_GAPS) uint8 genome codes of the site (top strand), 255 pad

    @classmethod
    def empty(cls) -> "SiteTable":
        z = np.zeros(0, dtype=np.int32)
        return cls(z, z, z, np.zeros(0, np.uint64), z, np.zeros(0, np.uint64), z, z, z, z, z, z,
                   np.zeros((0, MAX_PATTERN + MAX_GAPS), np.uint8))

    def __len__(self) -> int:
        return len(self.pattern)

    def extend(self, raw_int: np.ndarray, raw_masks: np.ndarray, raw_target: np.ndarray) -> None:
        """Append rows from the kernel's output arrays (see :func:`_verify_start`)."""
        cols = [self.pattern, self.span, self.mismatches, None, self.unknown, None, self.gaps, self.gap1_pos,
                self.gap1_len, self.gap2_pos, self.gap2_len, self.cost]
        int_idx = {"pattern": 0, "span": 1, "mismatches": 2, "unknown": 3, "gaps": 4, "gap1_pos": 5,
                   "gap1_len": 6, "gap2_pos": 7, "gap2_len": 8, "cost": 9}
        for name, idx in int_idx.items():
            setattr(self, name, np.concatenate([getattr(self, name), raw_int[:, idx].astype(np.int32)]))
        self.mm_mask = np.concatenate([self.mm_mask, raw_masks[:, 0]])
        self.unk_mask = np.concatenate([self.unk_mask, raw_masks[:, 1]])
        self.target = np.concatenate([self.target, raw_target])
        del cols

    def target_codes(self, site: int) -> np.ndarray:
        row = self.target[site]
        return row[: self.span[site]]


# ------------------------------------------------------------------------------------------ numba kernels

@nb.njit(cache=True, nogil=True)
def _verify_start(text, s, seg_end, masks_j, ctx_j, m, k, g, out_int, out_mask, out_target):
    """Best alignment of pattern ``j`` starting exactly at text[s] (pattern[0] pairs with text[s]).

    Writes one row into ``out_int`` (pattern filled by caller), ``out_mask`` and ``out_target`` and returns
    True when an alignment with at most k edits (mismatches, unknowns and gap nt) of which at most g are gap
    nt exists.
    DP state: (pattern position i, diagonal d = text offset - i in [-g, g], gap nt used u in [0, g]).
    """
    INF = 1 << 20
    nd = 2 * g + 1
    # state arrays: cost-relevant mismatch count and carried path information
    mm = np.full((m, nd, g + 1), INF, dtype=np.int32)
    mmask = np.zeros((m, nd, g + 1), dtype=np.uint64)
    umask = np.zeros((m, nd, g + 1), dtype=np.uint64)
    g1p = np.full((m, nd, g + 1), -1, dtype=np.int32)
    g1l = np.zeros((m, nd, g + 1), dtype=np.int32)
    g2p = np.full((m, nd, g + 1), -1, dtype=np.int32)
    g2l = np.zeros((m, nd, g + 1), dtype=np.int32)
    for i in range(m):
        for di in range(nd):
            d = di - g
            t = s + i + d
            if t < s or t >= seg_end:
                continue
            c = text[t]
            if c == 5:
                continue
            bit = np.uint64(1) << np.uint64(i)
            is_unk = False
            is_mm = False
            if ctx_j[i]:
                pass
            elif c == 4:
                is_unk = True
            elif (masks_j[i] >> c) & 1 == 0:
                is_mm = True
            add = 1 if (is_mm or is_unk) else 0
            if i == 0:
                if d != 0:
                    continue
                mm[0, di, 0] = add
                if is_mm:
                    mmask[0, di, 0] = bit
                if is_unk:
                    umask[0, di, 0] = bit
                continue
            for u in range(g + 1):
                best = INF
                best_gap_nt = 0
                bmm = _U0
                bum = _U0
                b1p = -1
                b1l = 0
                b2p = -1
                b2l = 0
                # (a) from row i-1, diagonal dp <= d: genome insertion of (d - dp) nt before pattern pos i
                for dpi in range(nd):
                    dp = dpi - g
                    if dp > d:
                        continue
                    ins = d - dp
                    up = u - ins
                    if up < 0:
                        continue
                    prev = mm[i - 1, dpi, up]
                    if prev >= INF:
                        continue
                    # lexicographic: fewer weighted cost, then fewer gap nt
                    cost = prev + add
                    if cost < best or (cost == best and ins < best_gap_nt):
                        best = cost
                        best_gap_nt = ins
                        bmm = mmask[i - 1, dpi, up]
                        bum = umask[i - 1, dpi, up]
                        b1p = g1p[i - 1, dpi, up]
                        b1l = g1l[i - 1, dpi, up]
                        b2p = g2p[i - 1, dpi, up]
                        b2l = g2l[i - 1, dpi, up]
                        if ins > 0:
                            if b1p < 0:
                                b1p = i
                                b1l = ins
                            else:
                                b2p = i
                                b2l = ins
                # (b) from row i-1-dl, diagonal d + dl: dl oligo bases unpaired (genome deletion)
                for dl in range(1, g + 1):
                    ip = i - 1 - dl
                    if ip < 0:
                        break
                    dpv = d + dl
                    if dpv > g:
                        break
                    up = u - dl
                    if up < 0:
                        break
                    prev = mm[ip, dpv + g, up]
                    if prev >= INF:
                        continue
                    cost = prev + add
                    if cost < best or (cost == best and dl < best_gap_nt):
                        best = cost
                        best_gap_nt = dl
                        bmm = mmask[ip, dpv + g, up]
                        bum = umask[ip, dpv + g, up]
                        b1p = g1p[ip, dpv + g, up]
                        b1l = g1l[ip, dpv + g, up]
                        b2p = g2p[ip, dpv + g, up]
                        b2l = g2l[ip, dpv + g, up]
                        if b1p < 0:
                            b1p = ip + 1
                            b1l = -dl
                        else:
                            b2p = ip + 1
                            b2l = -dl
                if best + u > k:
                    continue
                mm[i, di, u] = best
                mmask[i, di, u] = bmm | (bit if is_mm else _U0)
                umask[i, di, u] = bum | (bit if is_unk else _U0)
                g1p[i, di, u] = b1p
                g1l[i, di, u] = b1l
                g2p[i, di, u] = b2p
                g2l[i, di, u] = b2l
    # choose the best end state: weighted cost = mismatches + 2 * gaps, then fewer gaps, then smaller span
    best_cost = INF
    best_di = -1
    best_u = -1
    for u in range(g + 1):
        for di in range(nd):
            v = mm[m - 1, di, u]
            if v + u > k:
                continue
            cost = v + 2 * u
            span = m + (di - g)
            if best_di < 0 or cost < best_cost or (cost == best_cost and (u < best_u or (
                    u == best_u and span < m + (best_di - g)))):
                best_cost = cost
                best_di = di
                best_u = u
    if best_di < 0:
        return False
    span = m + (best_di - g)
    # gap nt used must equal the recorded events; count unknowns
    mmv = mmask[m - 1, best_di, best_u]
    umv = umask[m - 1, best_di, best_u]
    n_unk = 0
    x = umv
    while x:
        x &= x - _U1
        n_unk += 1
    out_int[1] = span
    out_int[2] = mm[m - 1, best_di, best_u] - n_unk
    out_int[3] = n_unk
    out_int[4] = best_u
    out_int[5] = g1p[m - 1, best_di, best_u]
    out_int[6] = g1l[m - 1, best_di, best_u]
    out_int[7] = g2p[m - 1, best_di, best_u]
    out_int[8] = g2l[m - 1, best_di, best_u]
    out_int[9] = best_cost
    out_mask[0] = mmv
    out_mask[1] = umv
    for q in range(out_target.shape[0]):
        out_target[q] = 255
    for q in range(span):
        out_target[q] = text[s + q]
    return True


def _myers_scan_source(text, a, n, lim, peq, j, m, g, e, cand, row, base):
    """Myers' bit-parallel scan of text[a:a+n] for pattern ``j``: marks ``cand[row, base + s]`` for every start
    ``s`` (relative to ``a``, below ``lim``) of an alignment with edit distance <= e; returns the marked range
    (lo, hi). Compiled twice from this one source: for the CPU (numba) and as a CUDA device function."""
    one = np.uint64(1)
    high = one << np.uint64(m - 1)
    pv = ~np.uint64(0)
    mv = np.uint64(0)
    score = m
    lo_mark = n
    hi_mark = -1
    for t in range(n):
        eq = peq[j, text[a + t]]
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ph << one
        mh = mh << one
        pv = mh | ~(xv | ph)
        mv = ph & xv
        if score <= e:
            # alignment ends at t; starts within [t - m + 1 - g, t - m + 1 + g]
            s0 = t - m + 1 - g
            s1 = t - m + 1 + g
            if s0 < 0:
                s0 = 0
            if s1 > lim - a - 1:
                s1 = lim - a - 1
            for s in range(s0, s1 + 1):
                cand[row, base + s] = 1
            if s0 <= s1:
                if s0 < lo_mark:
                    lo_mark = s0
                if s1 > hi_mark:
                    hi_mark = s1
    return lo_mark, hi_mark


_myers_scan = nb.njit(cache=True, nogil=True)(_myers_scan_source)


@nb.njit(cache=True, nogil=True)
def _grow(a, cap):
    """A copy of ``a`` with room for ``cap`` rows."""
    b = np.empty((cap,) + a.shape[1:], dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@nb.njit(cache=True, nogil=True)
def _new_rows(cap):
    return (np.empty(cap, dtype=np.int64), np.empty((cap, 10), dtype=np.int32), np.empty((cap, 2), dtype=np.uint64),
            np.empty((cap, MAX_PATTERN + MAX_GAPS), dtype=np.uint8))


@nb.njit(cache=True, nogil=True)
def _verify_marked_range(text, a, b, cand, row, base, lo, hi, j, masks_j, ctx_j, m, k, g, out, n_out):
    """Verify the candidate starts marked in ``cand[row, base + lo .. base + hi]`` (clearing the marks) and
    append the sites to ``out`` (grown as needed); returns (out, n_out)."""
    out_start, out_int, out_mask, out_target = out
    row_int = np.zeros(10, dtype=np.int32)
    row_mask = np.zeros(2, dtype=np.uint64)
    row_target = np.zeros(MAX_PATTERN + MAX_GAPS, dtype=np.uint8)
    for s in range(lo, hi + 1):
        if cand[row, base + s] == 0:
            continue
        cand[row, base + s] = 0
        if _verify_start(text, a + s, b, masks_j, ctx_j, m, k, g, row_int, row_mask, row_target):
            if n_out == out_start.shape[0]:
                cap = 2 * n_out
                out_start = _grow(out_start, cap)
                out_int = _grow(out_int, cap)
                out_mask = _grow(out_mask, cap)
                out_target = _grow(out_target, cap)
            out_start[n_out] = a + s
            row_int[0] = j
            out_int[n_out] = row_int
            out_mask[n_out] = row_mask
            out_target[n_out] = row_target
            n_out += 1
    return (out_start, out_int, out_mask, out_target), n_out


@nb.njit(cache=True, nogil=True)
def _search_patterns(text, seg_starts, seg_ends, seg_limits, pattern_ids, peq, lengths, masks, is_context,
                     k, g):
    """Search pattern-strands over text segments. Segment ``i`` covers text[seg_starts[i]:seg_ends[i]]; only
    sites starting before ``seg_limits[i]`` are reported. Returns (starts, int fields, masks, targets)."""
    out = _new_rows(1024)
    n_out = 0
    max_seg = 0
    for si in range(seg_starts.shape[0]):
        if seg_ends[si] - seg_starts[si] > max_seg:
            max_seg = seg_ends[si] - seg_starts[si]
    cand = np.zeros((1, max_seg + 1), dtype=np.uint8)
    for pj in range(pattern_ids.shape[0]):
        j = pattern_ids[pj]
        m = lengths[j]
        for si in range(seg_starts.shape[0]):
            a = seg_starts[si]
            b = seg_ends[si]
            if b - a < m - g:
                continue
            lo, hi = _myers_scan(text, a, b - a, seg_limits[si], peq, j, m, g, k, cand, 0, 0)
            if hi >= lo:
                out, n_out = _verify_marked_range(text, a, b, cand, 0, 0, lo, hi, j, masks[j], is_context[j], m, k,
                                                  g, out, n_out)
    return out[0][:n_out], out[1][:n_out], out[2][:n_out], out[3][:n_out]


# ----------------------------------------------------------------------------------------- window cache

@nb.njit(cache=True, nogil=True, inline="always")
def _mix(x):
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@nb.njit(cache=True, nogil=True)
def _prepare(codes):
    """Rolling 32-mer ending at each position (base q in the low 2 bits) and a prefix count of unknowns."""
    n = codes.shape[0]
    roll = np.empty(n, dtype=np.uint64)
    unk = np.zeros(n + 1, dtype=np.int32)
    r = _U0
    for q in range(n):
        c = codes[q]
        r = (r << np.uint64(2)) | np.uint64(c & 3)
        roll[q] = r
        unk[q + 1] = unk[q] + (1 if c == 4 else 0)
    return roll, unk


@nb.njit(cache=True, nogil=True, inline="always")
def _hash(k0, k1, k2, rlen):
    return _mix(k0 ^ _mix(k1 + np.uint64(rlen)) ^ (k2 * np.uint64(0x9E3779B97F4A7C15)))


@nb.njit(cache=True, nogil=True)
def _lookup_insert(codes, genome_ends, W, roll, unk, p_start, tab_val, ent_keys, ent_len, succ, n_entries,
                   max_entries, entry, novel):
    """Look up the window starting at each position from ``p_start``, inserting new ones.

    A window is W bases packed 2 bits each into up to 3 words plus its length (shorter at a genome end).
    ``entry[p]`` gets the entry id, -1 for a window holding an unknown base (not cacheable: searched
    directly) or -2 at a separator; ``novel[p]`` is 1 where the window must be searched. Consecutive windows
    of a genome usually follow the same chain as where they were first seen, so each entry remembers its
    successor and the hash table is probed only when the chain breaks. Stops early (for the caller to grow
    the tables) when ``n_entries`` reaches ``max_entries``; returns (next position, n_entries).
    """
    n = codes.shape[0]
    nwords = (W + 31) // 32
    mask = np.uint64(tab_val.shape[0] - 1)
    gi = 0
    while gi < genome_ends.shape[0] - 1 and p_start > genome_ends[gi]:
        gi += 1
    prev = -1
    if p_start > 0:
        prev = entry[p_start - 1]
    for p in range(p_start, n):
        while gi < genome_ends.shape[0] - 1 and p > genome_ends[gi]:
            gi += 1
        if codes[p] == 5:
            entry[p] = -2
            prev = -2
            continue
        end = genome_ends[gi]
        rlen = W if p + W <= end else end - p
        if unk[p + rlen] - unk[p] > 0:
            entry[p] = -1
            novel[p] = 1
            prev = -1
            continue
        if n_entries >= max_entries:
            return p, n_entries
        k0 = _U0
        k1 = _U0
        k2 = _U0
        for w in range(nwords):
            ln = rlen - 32 * w
            if ln <= 0:
                break
            if ln > 32:
                ln = 32
            v = roll[p + 32 * w + ln - 1]
            if ln < 32:
                v = (v & ((_U1 << np.uint64(2 * ln)) - _U1)) << np.uint64(2 * (32 - ln))
            if w == 0:
                k0 = v
            elif w == 1:
                k1 = v
            else:
                k2 = v
        if prev >= 0:
            cand = succ[prev]
            if cand >= 0 and ent_len[cand] == rlen and ent_keys[cand, 0] == k0 and ent_keys[cand, 1] == k1 \
                    and ent_keys[cand, 2] == k2:
                entry[p] = cand
                prev = cand
                continue
        h = _hash(k0, k1, k2, rlen) & mask
        while True:
            v = tab_val[h]
            if v < 0:
                tab_val[h] = n_entries
                ent_keys[n_entries, 0] = k0
                ent_keys[n_entries, 1] = k1
                ent_keys[n_entries, 2] = k2
                ent_len[n_entries] = rlen
                succ[n_entries] = -1
                v = n_entries
                novel[p] = 1
                n_entries += 1
                break
            if ent_len[v] == rlen and ent_keys[v, 0] == k0 and ent_keys[v, 1] == k1 and ent_keys[v, 2] == k2:
                break
            h = (h + _U1) & mask
        entry[p] = v
        if prev >= 0 and succ[prev] < 0:
            succ[prev] = v
        prev = v
    return n, n_entries


@nb.njit(cache=True, nogil=True)
def _segments(novel, genome_ends, W):
    """Runs of novel positions within one genome -> (text start, text end, report limit) per segment.
    Two passes (count, then fill): growing arrays inside a numba loop costs a reference count per step."""
    n = novel.shape[0]
    out = np.empty((2, 3), dtype=np.int64)
    for rnd in range(2):
        ns = 0
        gi = 0
        gend = genome_ends[0]
        run_start = -1
        for p in range(n):
            nov = novel[p] == 1 and p < gend
            if run_start >= 0 and not nov:
                if rnd == 1:
                    out[ns, 0] = run_start
                    e = p - 1 + W
                    out[ns, 1] = e if e < gend else gend
                    out[ns, 2] = p
                ns += 1
                run_start = -1
            if p >= gend:
                gi += 1
                gend = genome_ends[gi] if gi < genome_ends.shape[0] else n
            if nov and run_start < 0:
                run_start = p
        if run_start >= 0:
            if rnd == 1:
                out[ns, 0] = run_start
                e = n - 1 + W
                out[ns, 1] = e if e < gend else gend
                out[ns, 2] = n
            ns += 1
        if rnd == 0:
            out = np.empty((ns, 3), dtype=np.int64)
    return out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy()


@nb.njit(cache=True, nogil=True)
def _emit(entry, genome_ends, entry_first, entry_count, entry_sites, direct_pos, direct_site, genome_base):
    """Hit rows (genome index, position in genome, site id) for every position of the batch, in order."""
    n = entry.shape[0]
    total = 0
    for p in range(n):
        e = entry[p]
        if e >= 0:
            total += entry_count[e]
    total += direct_pos.shape[0]
    out_g = np.empty(total, dtype=np.int32)
    out_p = np.empty(total, dtype=np.int32)
    out_s = np.empty(total, dtype=np.int32)
    o = 0
    gi = 0
    di = 0
    gstart = 0
    for p in range(n):
        while gi < genome_ends.shape[0] - 1 and p >= genome_ends[gi]:
            gstart = genome_ends[gi] + 1
            gi += 1
        e = entry[p]
        if e >= 0:
            f = entry_first[e]
            for q in range(entry_count[e]):
                out_g[o] = genome_base + gi
                out_p[o] = p - gstart
                out_s[o] = entry_sites[f + q]
                o += 1
        while di < direct_pos.shape[0] and direct_pos[di] == p:
            out_g[o] = genome_base + gi
            out_p[o] = p - gstart
            out_s[o] = direct_site[di]
            o += 1
            di += 1
    return out_g[:o], out_p[:o], out_s[:o]


@nb.njit(cache=True, nogil=True)
def _suppress_gapped(genome, pos, site, site_pattern, site_span, site_gaps, site_cost):
    """Keep every ungapped hit; drop a gapped hit overlapping an ungapped hit or a cheaper (or equal cost,
    earlier) gapped hit of the same genome and pattern-strand. Input sorted by (genome, pattern, pos)."""
    n = genome.shape[0]
    keep = np.ones(n, dtype=np.bool_)
    i = 0
    while i < n:
        j = i
        while j < n and genome[j] == genome[i] and site_pattern[site[j]] == site_pattern[site[i]]:
            j += 1
        # group [i, j): hits of one pattern-strand in one genome, sorted by position
        for a in range(i, j):
            sa = site[a]
            if site_gaps[sa] == 0:
                continue
            a0 = pos[a]
            a1 = a0 + site_span[sa]
            for b in range(i, j):
                if b == a:
                    continue
                sb = site[b]
                b0 = pos[b]
                if b0 >= a1:
                    break
                if b0 + site_span[sb] <= a0:
                    continue
                if site_gaps[sb] == 0:
                    keep[a] = False
                    break
                if site_cost[sb] < site_cost[sa] or (site_cost[sb] == site_cost[sa] and b0 < a0):
                    keep[a] = False
                    break
        i = j
    return keep


# -------------------------------------------------------------------------------------------- the engine

@dataclass
class Hits:
    """Hit rows: one per (genome, site start, site id). ``genome`` indexes the genomes in input order."""

    genome: np.ndarray
    pos: np.ndarray
    site: np.ndarray

    def __len__(self) -> int:
        return len(self.genome)

    @classmethod
    def concat(cls, parts: list["Hits"]) -> "Hits":
        if not parts:
            z = np.zeros(0, np.int32)
            return cls(z, z, z)
        return cls(np.concatenate([p.genome for p in parts]), np.concatenate([p.pos for p in parts]),
                   np.concatenate([p.site for p in parts]))


class Engine:
    """Streaming search of a :class:`PatternSet` over batches of genomes, with a window cache shared by all
    batches (so repeated content is searched once).

    ``threads`` splits the pattern-strands across threads (numba releases the GIL); results are identical
    for any thread count.
    """

    def __init__(self, patterns: PatternSet, max_mismatches: int = 3, max_gaps: int = 2, *,
                 threads: int | None = None, cache: bool = True, device: str = "cpu"):
        if not 0 <= max_mismatches <= MAX_MISMATCHES:
            raise ValueError(f"max_mismatches must be 0..{MAX_MISMATCHES}")
        if not 0 <= max_gaps <= MAX_GAPS:
            raise ValueError(f"max_gaps must be 0..{MAX_GAPS}")
        self.patterns = patterns
        self.k = int(max_mismatches)
        self.g = int(max_gaps)
        self.window = patterns.max_length + self.g
        self.threads = max(1, threads or min(os.cpu_count() or 1, 8))
        self.use_cache = cache
        if device not in ("cpu", "cuda"):
            raise ValueError("device must be 'cpu' or 'cuda'")
        if device == "cuda":
            from . import engine_cuda

            if not engine_cuda.available():
                from .errors import InputError

                raise InputError(None, "no CUDA device found", "use --device cpu")
        self.device = device
        self.sites = SiteTable.empty()
        # hash table of windows -> entry; entries -> slice of entry_sites
        self._tab_val = np.full(1 << 16, -1, dtype=np.int64)
        self._n_entries = 0
        self._ent_keys = np.zeros((1 << 15, 3), dtype=np.uint64)
        self._ent_len = np.zeros(1 << 15, dtype=np.int32)
        self._succ = np.full(1 << 15, -1, dtype=np.int64)
        self._entry_first = np.zeros(1 << 15, dtype=np.int64)
        self._entry_count = np.zeros(1 << 15, dtype=np.int32)
        self._entry_sites = np.zeros(0, dtype=np.int32)
        self.n_genomes = 0
        self.stats = {"positions": 0, "searched": 0, "segments": 0, "hits": 0}
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        # group pattern-strands into per-thread shares balanced by length
        order = np.argsort(-patterns.lengths, kind="stable")
        self._shares = [np.sort(order[t:: self.threads]) for t in range(self.threads)]

    # -- hash table maintenance
    def _ensure_capacity(self, extra: int) -> None:
        """Grow the tables so that ``extra`` more entries fit, keeping the hash table under half full."""
        need = self._n_entries + extra
        if need > self._ent_len.shape[0]:
            new = max(need, 2 * self._ent_len.shape[0])
            keys = np.zeros((new, 3), dtype=np.uint64)
            keys[: self._n_entries] = self._ent_keys[: self._n_entries]
            self._ent_keys = keys
            for name, fill in (("_ent_len", 0), ("_succ", -1), ("_entry_first", 0), ("_entry_count", 0)):
                old = getattr(self, name)
                arr = np.full(new, fill, dtype=old.dtype)
                arr[: self._n_entries] = old[: self._n_entries]
                setattr(self, name, arr)
        cap = self._tab_val.shape[0]
        if need * 2 > cap:
            while need * 2 > cap:
                cap *= 2
            self._tab_val = np.full(cap, -1, dtype=np.int64)
            _reinsert(self._n_entries, self._ent_keys, self._ent_len, self._tab_val)

    def search_codes(self, codes: np.ndarray, genome_ends: np.ndarray) -> Hits:
        """Search one batch: ``codes`` holds genomes separated by a separator code (5); ``genome_ends[i]`` is
        the end (exclusive) of genome ``i`` in ``codes``. Genome indices continue across batches."""
        n = codes.shape[0]
        genome_ends = np.asarray(genome_ends, dtype=np.int64)
        W = self.window
        roll, unk = _prepare(codes)
        if not self.use_cache:  # every window counts as uncacheable: searched directly
            unk = unk + np.arange(n + 1, dtype=np.int32)
        entry = np.empty(n, dtype=np.int64)
        novel = np.zeros(n, dtype=np.uint8)
        first_new = self._n_entries
        p = 0
        while p < n:
            self._ensure_capacity(max(4096, n // 64))
            limit = min(self._tab_val.shape[0] // 2, self._ent_len.shape[0])
            p, self._n_entries = _lookup_insert(codes, genome_ends, W, roll, unk, p, self._tab_val,
                                                self._ent_keys, self._ent_len, self._succ, self._n_entries,
                                                limit, entry, novel)
        self._ensure_capacity(0)
        del roll, unk
        seg_s, seg_e, seg_l = _segments(novel, genome_ends, W)
        self.stats["positions"] += int(n - len(genome_ends))
        self.stats["searched"] += int(novel.sum())
        self.stats["segments"] += int(len(seg_s))
        starts, raw_int, raw_mask, raw_target = self._search(codes, seg_s, seg_e, seg_l)
        # order found sites by (start, pattern) for determinism, then assign ids
        order = np.lexsort((raw_int[:, 0], starts))
        starts, raw_int, raw_mask, raw_target = starts[order], raw_int[order], raw_mask[order], raw_target[order]
        base_id = len(self.sites)
        self.sites.extend(raw_int, raw_mask, raw_target)
        site_ids = np.arange(base_id, base_id + len(starts), dtype=np.int32)
        # attach to new cache entries (cacheable windows) or keep as direct hits (uncacheable windows)
        ent_of_start = entry[starts] if len(starts) else np.zeros(0, np.int64)
        cacheable = ent_of_start >= 0
        new_entries = np.arange(first_new, self._n_entries)
        counts = np.bincount(ent_of_start[cacheable] - first_new, minlength=len(new_entries)).astype(np.int32)
        self._entry_count[first_new:self._n_entries] = counts
        self._entry_first[first_new:self._n_entries] = len(self._entry_sites) + np.concatenate(
            [[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        # sites are already sorted by start, hence grouped by entry in first-occurrence order; sort by entry
        c_ids = site_ids[cacheable]
        c_ent = ent_of_start[cacheable]
        self._entry_sites = np.concatenate([self._entry_sites, c_ids[np.argsort(c_ent, kind="stable")]])
        direct_pos = starts[~cacheable]
        direct_site = site_ids[~cacheable]
        g, p, s = _emit(entry, genome_ends, self._entry_first, self._entry_count, self._entry_sites,
                        direct_pos, direct_site, self.n_genomes)
        self.n_genomes += len(genome_ends)
        hits = Hits(g, p, s)
        if self.g > 0 and len(hits):
            hits = self._suppress(hits)
        self.stats["hits"] += len(hits)
        return hits

    def _search(self, codes, seg_s, seg_e, seg_l):
        p = self.patterns
        args = (codes, seg_s, seg_e, seg_l)
        tail = (p.peq, p.lengths, p.masks, p.is_context, self.k, self.g)
        if self.device == "cuda":
            from .engine_cuda import search_patterns_cuda

            return search_patterns_cuda(*args, np.arange(p.n_patterns, dtype=np.int64), *tail)
        if self._pool is None or len(seg_s) == 0:
            return _search_patterns(*args, np.arange(p.n_patterns, dtype=np.int64), *tail)
        futures = [self._pool.submit(_search_patterns, *args, share.astype(np.int64), *tail)
                   for share in self._shares]
        parts = [f.result() for f in futures]
        return (np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts]),
                np.concatenate([x[2] for x in parts]), np.concatenate([x[3] for x in parts]))

    def _suppress(self, hits: Hits) -> Hits:
        """Drop gapped hits overlapping a better hit of the same genome and pattern-strand (only the
        genome/pattern pairs that have a gapped hit are sorted and examined)."""
        pat = self.sites.pattern[hits.site].astype(np.int64)
        gapped = self.sites.gaps[hits.site] > 0
        if not gapped.any():
            return hits
        key = hits.genome.astype(np.int64) * self.patterns.n_patterns + pat
        involved = np.isin(key, np.unique(key[gapped]))
        idx = np.flatnonzero(involved)
        order = idx[np.lexsort((hits.pos[idx], pat[idx], hits.genome[idx]))]
        keep_sub = _suppress_gapped(hits.genome[order], hits.pos[order], hits.site[order], self.sites.pattern,
                                    self.sites.span, self.sites.gaps, self.sites.cost)
        keep = np.ones(len(hits), dtype=bool)
        keep[order[~keep_sub]] = False
        return Hits(hits.genome[keep], hits.pos[keep], hits.site[keep])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@nb.njit(cache=True, nogil=True)
def _reinsert(n_entries, ent_keys, ent_len, tab_val):
    """Rebuild the hash table (after growth) from the entries' keys."""
    mask = np.uint64(tab_val.shape[0] - 1)
    for e in range(n_entries):
        h = _hash(ent_keys[e, 0], ent_keys[e, 1], ent_keys[e, 2], ent_len[e]) & mask
        while tab_val[h] >= 0:
            h = (h + _U1) & mask
        tab_val[h] = e


# ------------------------------------------------------------------------------------ seed-index engine

@nb.njit(cache=True, nogil=True)
def _qmer_values(codes, q):
    """2-bit value of the q-mer starting at each position, -1 where it holds a non-ACGT code."""
    n = codes.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    mask = (1 << (2 * q)) - 1
    v = 0
    bad_until = -1
    for i in range(n):
        c = codes[i]
        if c > 3:
            bad_until = i
            v = 0
        else:
            v = ((v << 2) | c) & mask
        start = i - q + 1
        if start >= 0 and bad_until < start:
            out[start] = v
    return out


@nb.njit(cache=True, nogil=True)
def _seed_scan_into(codes, genome_ends, lo, hi, qv, offsets, pair_a, pair_b, q, starts_tab, pats_tab, lengths, masks,
                    k, out_start, out_int, out_mask, out_target):
    """Scan window starts lo..hi-1 into preallocated output rows: look up every pair of pieces in its table,
    verify each candidate pattern by Hamming distance (unknown bases count as differences) and report it from
    the first pair of pieces that matches exactly (so every site is reported once). Returns (rows written,
    next start): it stops early when the output is full (the arrays are never reallocated inside the loop,
    which would cost a reference count per step)."""
    n_pairs = pair_a.shape[0]
    cap = out_start.shape[0]
    n_out = 0
    gi = 0
    while gi < genome_ends.shape[0] - 1 and lo > genome_ends[gi]:
        gi += 1
    shift = np.int64(2 * q)
    piece_mask = (_U1 << np.uint64(q)) - _U1
    for p in range(lo, hi):
        if n_out + n_pairs * 64 > cap:
            return n_out, p
        while gi < genome_ends.shape[0] - 1 and p > genome_ends[gi]:
            gi += 1
        gend = genome_ends[gi]
        if p >= gend:
            continue
        for t in range(n_pairs):
            pa = p + offsets[pair_a[t]]
            pb = p + offsets[pair_b[t]]
            if pb + q > gend:
                continue
            va = qv[pa]
            vb = qv[pb]
            if va < 0 or vb < 0:
                continue
            key = (va << shift) | vb
            for e in range(starts_tab[t, key], starts_tab[t, key + 1]):
                j = pats_tab[e]
                m = lengths[j]
                if p + m > gend:
                    continue
                mmask = _U0
                umask = _U0
                d = 0
                for i in range(m):
                    c = codes[p + i]
                    if c == 4:
                        umask |= _U1 << np.uint64(i)
                        d += 1
                    elif (masks[j, i] >> c) & 1 == 0:
                        mmask |= _U1 << np.uint64(i)
                        d += 1
                    if d > k:
                        break
                if d > k:
                    continue
                bad = mmask | umask
                first = -1
                for u in range(n_pairs):
                    ea = (bad & (piece_mask << np.uint64(offsets[pair_a[u]]))) == _U0
                    eb = (bad & (piece_mask << np.uint64(offsets[pair_b[u]]))) == _U0
                    if ea and eb:
                        first = u
                        break
                if first != t or n_out >= cap:
                    continue
                nm = 0
                x = mmask
                while x:
                    x &= x - _U1
                    nm += 1
                out_start[n_out] = p
                out_int[n_out, 0] = j
                out_int[n_out, 1] = m
                out_int[n_out, 2] = nm
                out_int[n_out, 3] = d - nm
                out_int[n_out, 4] = 0
                out_int[n_out, 5] = -1
                out_int[n_out, 6] = 0
                out_int[n_out, 7] = -1
                out_int[n_out, 8] = 0
                out_int[n_out, 9] = d
                out_mask[n_out, 0] = mmask
                out_mask[n_out, 1] = umask
                for y in range(MAX_PATTERN + MAX_GAPS):
                    out_target[n_out, y] = codes[p + y] if y < m else 255
                n_out += 1
    return n_out, hi


def _seed_scan(codes, genome_ends, lo, hi, qv, offsets, pair_a, pair_b, q, starts_tab, pats_tab, lengths, masks, k):
    """All sites with window starts in lo..hi-1 (see :func:`_seed_scan_into`); grows the output as needed."""
    parts = []
    p = lo
    cap = 1 << 14
    while p < hi:
        out_start = np.empty(cap, dtype=np.int64)
        out_int = np.empty((cap, 10), dtype=np.int32)
        out_mask = np.empty((cap, 2), dtype=np.uint64)
        out_target = np.empty((cap, MAX_PATTERN + MAX_GAPS), dtype=np.uint8)
        n, p = _seed_scan_into(codes, genome_ends, p, hi, qv, offsets, pair_a, pair_b, q, starts_tab, pats_tab,
                               lengths, masks, k, out_start, out_int, out_mask, out_target)
        parts.append((out_start[:n], out_int[:n], out_mask[:n], out_target[:n]))
        cap *= 2
    if not parts:
        return (np.zeros(0, np.int64), np.zeros((0, 10), np.int32), np.zeros((0, 2), np.uint64),
                np.zeros((0, MAX_PATTERN + MAX_GAPS), np.uint8))
    return tuple(np.concatenate([x[i] for x in parts]) for i in range(4))


class SeedEngine:
    """Mismatch-only search of many short patterns in large, non-redundant texts (a transcriptome, a human
    genome): each pattern is cut into ``k + 2`` pieces, at least two of which match exactly in any site
    with <= k differences (pigeonhole), and every pair of pieces is looked up in a direct-address table.
    Same interface and same sites as :class:`Engine` with ``max_gaps = 0`` (tested)."""

    MAX_PIECE = 5  #: nt per piece: a pair key of 10 nt addresses a 4 MiB table

    def __init__(self, patterns: PatternSet, max_mismatches: int = 2, *, threads: int | None = None):
        if patterns.is_context.any():
            raise ValueError("the seed engine takes patterns without context positions")
        self.patterns = patterns
        self.k = int(max_mismatches)
        self.g = 0
        n_pieces = self.k + 2
        lmin = int(patterns.lengths.min())
        q = min(self.MAX_PIECE, lmin // n_pieces)
        if q < 3:
            raise ValueError(f"patterns of {lmin} nt are too short for a seed index at {self.k} mismatches")
        self.q = q
        step = lmin // n_pieces
        self.offsets = np.array([i * step for i in range(n_pieces)], dtype=np.int64)
        pairs = [(a, b) for a in range(n_pieces) for b in range(a + 1, n_pieces)]
        self.pair_a = np.array([a for a, _ in pairs], dtype=np.int64)
        self.pair_b = np.array([b for _, b in pairs], dtype=np.int64)
        self._build_tables(pairs)
        self.threads = max(1, threads or min(os.cpu_count() or 1, 8))
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.sites = SiteTable.empty()
        self.n_genomes = 0
        self.stats = {"positions": 0, "searched": 0, "segments": 0, "hits": 0}

    def _piece_values(self, j: int, off: int) -> list[int]:
        """All concrete 2-bit values of a pattern piece (degenerate codes expanded)."""
        values = [0]
        for i in range(off, off + self.q):
            bases = [b for b in range(4) if (self.patterns.masks[j, i] >> b) & 1]
            values = [(v << 2) | b for v in values for b in bases]
            if len(values) > 4096:
                raise ValueError(f"pattern {j} is too degenerate for the seed index")
        return values

    def _build_tables(self, pairs) -> None:
        n_keys = 1 << (4 * self.q)
        keys_per_pair = []
        for a, b in pairs:
            keys, pats = [], []
            for j in range(self.patterns.n_patterns):
                va = self._piece_values(j, int(self.offsets[a]))
                vb = self._piece_values(j, int(self.offsets[b]))
                for x in va:
                    for y in vb:
                        keys.append((x << (2 * self.q)) | y)
                        pats.append(j)
            keys_per_pair.append((np.array(keys, dtype=np.int64), np.array(pats, dtype=np.int64)))
        self.starts_tab = np.zeros((len(pairs), n_keys + 1), dtype=np.int64)
        pats_all = []
        base = 0
        for t, (keys, pats) in enumerate(keys_per_pair):
            order = np.argsort(keys, kind="stable")
            counts = np.bincount(keys, minlength=n_keys)
            self.starts_tab[t, 1:] = base + np.cumsum(counts)
            self.starts_tab[t, 0] = base
            pats_all.append(pats[order])
            base += len(keys)
        self.pats_tab = np.concatenate(pats_all) if pats_all else np.zeros(0, dtype=np.int64)

    def search_codes(self, codes: np.ndarray, genome_ends: np.ndarray) -> Hits:
        genome_ends = np.asarray(genome_ends, dtype=np.int64)
        qv = _qmer_values(codes, self.q)
        n = codes.shape[0]
        bounds = np.linspace(0, n, self.threads + 1).astype(np.int64)
        args = (self.offsets, self.pair_a, self.pair_b, self.q, self.starts_tab, self.pats_tab,
                self.patterns.lengths, self.patterns.masks, self.k)
        if self._pool is None:
            parts = [_seed_scan(codes, genome_ends, 0, n, qv, *args)]
        else:
            futures = [self._pool.submit(_seed_scan, codes, genome_ends, int(bounds[i]), int(bounds[i + 1]), qv, *args)
                       for i in range(self.threads)]
            parts = [f.result() for f in futures]
        starts = np.concatenate([x[0] for x in parts])
        raw_int = np.concatenate([x[1] for x in parts])
        raw_mask = np.concatenate([x[2] for x in parts])
        raw_target = np.concatenate([x[3] for x in parts])
        order = np.lexsort((raw_int[:, 0], starts))
        starts, raw_int, raw_mask, raw_target = starts[order], raw_int[order], raw_mask[order], raw_target[order]
        base_id = len(self.sites)
        self.sites.extend(raw_int, raw_mask, raw_target)
        genome_starts = np.concatenate([[0], genome_ends[:-1] + 1])
        g = np.searchsorted(genome_ends, starts, side="left")
        hits = Hits((self.n_genomes + g).astype(np.int32), (starts - genome_starts[g]).astype(np.int32),
                    np.arange(base_id, base_id + len(starts), dtype=np.int32))
        self.n_genomes += len(genome_ends)
        self.stats["positions"] += int(n - len(genome_ends))
        self.stats["searched"] += int(n - len(genome_ends))
        self.stats["hits"] += len(hits)
        return hits

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


# ------------------------------------------------------------------------------------ convenience helpers

def pack_batch(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate encoded sequences with a separator after each; returns (codes, genome_ends)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    total = int(lengths.sum() + len(seqs))
    codes = np.empty(total, dtype=np.uint8)
    ends = np.empty(len(seqs), dtype=np.int64)
    o = 0
    for i, s in enumerate(seqs):
        codes[o:o + len(s)] = s
        o += len(s)
        ends[i] = o
        codes[o] = SEPARATOR
        o += 1
    return codes, ends


def search(patterns: PatternSet, seqs: list[np.ndarray], max_mismatches: int = 3, max_gaps: int = 2,
           **kwargs) -> tuple[Hits, SiteTable]:
    """Search encoded sequences in one batch (for small inputs and tests)."""
    engine = Engine(patterns, max_mismatches, max_gaps, **kwargs)
    try:
        codes, ends = pack_batch(seqs)
        hits = engine.search_codes(codes, ends)
    finally:
        engine.close()
    return hits, engine.sites
