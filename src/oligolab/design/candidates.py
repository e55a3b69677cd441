"""Candidate guides: every distinct protospacer (with a valid PAM or PFS) at every reference position and
strand of the projected collection, with the set of genomes each one would detect.

Coverage is decided by the same rule table as `oligolab check` (``knowledge/check-rules.toml`` or the user's
``--rules``): for each candidate and each genome variant at its locus the site figures (mismatches, seed
mismatches, PAM/PFS, gaps, unknown bases) are computed from 2-bit packed k-mers and the rule table gives
binds / degraded / fails / no data. Only distinct (candidate, variant) combinations are called, so a column
shared by thousands of genomes costs one call. The final numbers in a design come from a `check` run on the
chosen assays; these pre-scores only rank candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from ..errors import InputError
from ..knowledge import Enzyme, RuleSet
from ..sitecall import BINDS, DEGRADED, FAILS, NO_DATA, SiteDifferences, SiteThermo, call_site, rule_group
from .collection import BASE_MASK, INSERT_FLAG, Collection, hash_build

KEY_BITS = 60  #: spacers up to 30 nt pack into the low bits of a uint64
F_MOTIF_OK = np.uint64(1) << np.uint64(60)
F_MOTIF_UNKNOWN = np.uint64(1) << np.uint64(61)
F_GAP = np.uint64(1) << np.uint64(62)
F_UNKNOWN = np.uint64(1) << np.uint64(63)
KEY_MASK = (np.uint64(1) << np.uint64(KEY_BITS)) - np.uint64(1)
_LOW = np.uint64(0x5555555555555555)
POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


MAX_READ_THROUGH = 30  #: deleted columns a site may span (the genome's own bases are read through them)
MERGE_SHIFT = MAX_READ_THROUGH  #: the same spacer this close to itself (nt) is one guide at one locus


@nb.njit(cache=True, nogil=True)
def window_values(
    bases: np.ndarray, c0: int, c1: int, W: int, c5: int, L: int, motif_table: np.ndarray, strand: int, pad: int = 0
) -> np.ndarray:
    """Packed oligo-orientation windows of sites at columns c0..c1-1 of ``bases``, as (genomes, columns) uint64.

    A site is read in the genome's own sequence: from its anchor (the spacer's 5'-most base in oligo
    orientation) the spacer is read through deleted columns and the PAM/PFS context on the other side, so a
    deletion gives the same window wherever the alignment put it, and a PAM that a deletion brings next to
    the spacer counts as it does for the check's engine. The spacer is 2-bit packed in the low bits (first
    base most significant), plus flags: motif ok, motif
    unknown, gap (an insertion inside, a deleted anchor, or a long deletion), unknown base in the spacer.
    ``pad`` columns of ``bases`` before c0 and after the last footprint are context for reading through.

    One numba kernel on purpose (about 100 lines): the per-genome compression, the read-through and the
    packing share loop state, and splitting them would cost a call per genome and site."""
    G = bases.shape[0]
    ncol = bases.shape[1]
    n = c1 - c0
    out = np.zeros((G, n), dtype=np.uint64)
    seq = np.empty(ncol, dtype=np.int64)
    col_of = np.empty(ncol, dtype=np.int64)
    ins_of = np.empty(ncol, dtype=np.int64)
    first_at = np.empty(ncol + 1, dtype=np.int64)  # first compressed index with column >= c
    last_at = np.empty(ncol, dtype=np.int64)  # last compressed index with column <= c
    for g in range(G):
        m = 0
        for c in range(ncol):
            raw = bases[g, c]
            b = raw & BASE_MASK
            if b == 6:
                continue
            seq[m] = b if b < 4 else 4
            col_of[m] = c
            ins_of[m] = 1 if (raw & INSERT_FLAG) else 0
            m += 1
        k = 0
        for c in range(ncol):
            while k < m and col_of[k] < c:
                k += 1
            first_at[c] = k
        k = -1
        for c in range(ncol):
            while k + 1 < m and col_of[k + 1] <= c:
                k += 1
            last_at[c] = k
        for jj in range(n):
            col = c0 + jj + pad
            # anchor: the spacer's 5'-most base in oligo orientation; the spacer is read from it through
            # deleted columns, the PAM/PFS context is read on the other side of it
            if strand == 0:
                a = col + c5
                if a >= ncol:
                    out[g, jj] = F_UNKNOWN
                    continue
                kc = first_at[a]
                k0 = kc - c5
            else:
                a = col + W - 1 - c5
                if a >= ncol:
                    out[g, jj] = F_UNKNOWN
                    continue
                kc = last_at[a]
                k0 = kc + c5 - W + 1
            if k0 < 0 or k0 + W > m:
                out[g, jj] = F_UNKNOWN
                continue
            if col_of[k0 + W - 1] - col_of[k0] > W - 1 + MAX_READ_THROUGH:
                out[g, jj] = F_GAP
                continue
            gap = False
            for t in range(k0 + 1, k0 + W):
                if ins_of[t]:
                    gap = True
                    break
            if gap:
                out[g, jj] = F_GAP
                continue
            key = np.uint64(0)
            unknown_core = False
            motif_key = 0
            motif_unknown = False
            for i in range(W):
                b = seq[k0 + i] if strand == 0 else seq[k0 + W - 1 - i]
                is_core = c5 <= i < c5 + L
                if b > 3:
                    if is_core:
                        unknown_core = True
                    else:
                        motif_unknown = True
                    continue
                if strand == 1:
                    b = 3 - b
                if is_core:
                    key = (key << np.uint64(2)) | np.uint64(b)
                else:
                    motif_key = motif_key * 4 + b
            motif_ok = motif_table[motif_key] if not motif_unknown else False
            if unknown_core:
                out[g, jj] = F_UNKNOWN
                continue
            v = key
            if motif_unknown:
                v |= F_MOTIF_UNKNOWN
            elif motif_ok:
                v |= F_MOTIF_OK
            out[g, jj] = v
    return out


@nb.njit(cache=True, nogil=True)
def _mismatch_bits(x: np.uint64, L: int) -> int:
    """Positions (bit p = p nt from the 3' end, 0 = 3'-terminal) where two packed spacers differ."""
    m = (x | (x >> np.uint64(1))) & _LOW
    out = 0
    for p in range(L):
        if (m >> np.uint64(2 * p)) & np.uint64(1):
            out |= 1 << p
    return out


@nb.njit(cache=True, nogil=True)
def _popcount(x: np.int64) -> int:
    c = 0
    while x:
        x &= x - 1
        c += 1
    return c


@nb.njit(cache=True, nogil=True)
def _column_candidates(
    V: np.ndarray,
    row_count: np.ndarray,
    row_start: np.ndarray,
    row_genomes: np.ndarray,
    n_genomes: int,
    L: int,
    k: int,
    tab_k: np.ndarray,
    tab_v: np.ndarray,
    tab_bits: int,
    max_per_col: int,
    min_binds: int,
    out_jj: np.ndarray,
    out_key: np.ndarray,
    out_binds: np.ndarray,
    out_nb: np.ndarray,
    out_nr: np.ndarray,
) -> int:
    """Candidates of a block of columns: distinct spacers with a valid motif, called against every distinct
    variant of the column through the rule table ``tab``, with their genome bitsets.

    ``V`` is (columns, distinct rows) from :func:`window_values` over the block's distinct genome rows; row r
    stands for ``row_count[r]`` genomes listed in ``row_genomes[row_start[r]:row_start[r + 1]]``. Returns the
    number of candidates written, or -1 when the output arrays are too small.

    One numba kernel on purpose (about 100 lines): distinct variants, candidate spacers, rule-table
    calls and bitsets share per-column buffers; splitting would allocate per column."""
    n, D = V.shape
    n_out = 0
    order = np.empty(D, dtype=np.int64)
    starts = np.empty(D + 1, dtype=np.int64)
    vvals = np.empty(D, dtype=np.uint64)
    vcount = np.empty(D, dtype=np.int64)
    codes = np.empty(D, dtype=np.int8)
    for jj in range(n):
        col = V[jj]
        any_ok = False
        for t in range(D):
            if (col[t] & F_MOTIF_OK) and (col[t] & (F_GAP | F_UNKNOWN)) == 0:
                any_ok = True
                break
        if not any_ok:
            continue
        order[:] = np.argsort(col, kind="mergesort")
        nv = 0
        for t in range(D):
            r = order[t]
            v = col[r]
            if t == 0 or v != vvals[nv - 1]:
                vvals[nv] = v
                starts[nv] = t
                vcount[nv] = 0
                nv += 1
            vcount[nv - 1] += row_count[r]
        starts[nv] = D
        # candidate spacers: variants with a valid motif, most frequent first
        cand_idx = np.empty(nv, dtype=np.int64)
        cand_cnt = np.empty(nv, dtype=np.int64)
        nc = 0
        for v in range(nv):
            val = vvals[v]
            if (val & (F_GAP | F_UNKNOWN)) == 0 and (val & F_MOTIF_OK):
                cand_idx[nc] = v
                cand_cnt[nc] = vcount[v]
                nc += 1
        if nc == 0:
            continue
        sel = np.argsort(-cand_cnt[:nc], kind="mergesort")[:max_per_col]
        for si in range(sel.shape[0]):
            cv = cand_idx[sel[si]]
            ckey = vvals[cv] & KEY_MASK
            n_b = 0
            n_r = 0
            for v in range(nv):
                val = vvals[v]
                if val & F_UNKNOWN:
                    codes[v] = NO_DATA
                    continue
                if val & F_GAP:
                    codes[v] = FAILS
                    continue
                m1 = _mismatch_bits((val & KEY_MASK) ^ ckey, L)
                if _popcount(m1) > k:
                    codes[v] = FAILS
                    continue
                flag = 0
                if val & F_MOTIF_UNKNOWN:
                    flag = 2
                elif val & F_MOTIF_OK:
                    flag = 1
                tkey = np.uint64(m1) | (np.uint64(flag) << np.uint64(40))
                h = (tkey * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - tab_bits)
                code = FAILS
                while tab_v[h] >= 0:
                    if tab_k[h] == tkey:
                        code = tab_v[h]
                        break
                    h = (h + np.uint64(1)) & np.uint64(tab_k.shape[0] - 1)
                codes[v] = code
                if code == BINDS:
                    n_b += vcount[v]
                if code in (BINDS, DEGRADED):
                    n_r += vcount[v]
            if n_b < min_binds:
                continue
            if n_out >= out_jj.shape[0]:
                return -1
            out_jj[n_out] = jj
            out_key[n_out] = ckey
            out_nb[n_out] = n_b
            out_nr[n_out] = n_r
            out_binds[n_out, :] = 0
            for v in range(nv):
                if codes[v] != BINDS:
                    continue
                for t in range(starts[v], starts[v + 1]):
                    r = order[t]
                    for q in range(row_start[r], row_start[r + 1]):
                        gidx = row_genomes[q]
                        out_binds[n_out, gidx >> 3] |= np.uint8(1 << (7 - (gidx & 7)))
            n_out += 1
    return n_out


def distinct_rows(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a (genomes, columns) uint8 block and each genome's row index (collections are highly
    redundant: a few hundred distinct rows per few hundred columns among thousands of genomes)."""
    block = np.ascontiguousarray(block)
    view = block.view(np.dtype((np.void, block.shape[1])))[:, 0]
    _, first, inv = np.unique(view, return_index=True, return_inverse=True)
    return block[first], inv.ravel()


def decode_key(key: int, length: int) -> str:
    """A packed core back to its bases (first base in the most significant position)."""
    return "".join("ACGT"[(int(key) >> (2 * (length - 1 - i))) & 3] for i in range(length))


@dataclass
class GuideCandidates:
    """Distinct guides (oligo orientation, as written in an assay file) with the genomes each detects."""

    enzyme: Enzyme
    n_genomes: int
    column: np.ndarray  #: first reference column of the site (context included)
    strand: np.ndarray  #: 0: the genome's top strand reads like the oligo; 1: the bottom strand does
    key: np.ndarray  #: packed spacer
    binds: np.ndarray  #: (candidates, bytes) packed bitset of genomes where the guide binds
    n_binds: np.ndarray  #: genomes where it binds
    n_risk: np.ndarray  #: genomes where it binds or is degraded
    footprint: int  #: site length in columns (context + spacer)
    core_offset: np.ndarray  #: first spacer column of each candidate
    survival: np.ndarray | None = field(default=None)  #: P(an unseen genome keeps it binding), set by the pipeline

    def __len__(self) -> int:
        return len(self.key)

    def spacer(self, i: int) -> str:
        return decode_key(int(self.key[i]), self.enzyme.spacer_length)

    def span(self, i: int) -> tuple[int, int]:
        """Reference columns [start, end) of the whole site (PAM/PFS included)."""
        return int(self.column[i]), int(self.column[i]) + self.footprint

    def core_span(self, i: int) -> tuple[int, int]:
        c5, c3, _ = self.enzyme.oligo_context()
        start = int(self.column[i]) + (c5 if self.strand[i] == 0 else c3)
        return start, start + self.enzyme.spacer_length


class _CallCache:
    """Rule-table calls of guide sites by their figures (few distinct figure sets exist)."""

    def __init__(self, enzyme: Enzyme, rules: RuleSet, spacer_len: int, max_mismatches: int):
        self.enzyme = enzyme
        self.rules = rules
        self.L = spacer_len
        self.k = max_mismatches
        lo, hi = enzyme.seed
        mask = 0
        for i in range(max(0, lo - 1), min(spacer_len, hi)):
            mask |= 3 << (2 * (spacer_len - 1 - i))
        self.seed_mask = np.uint64(mask)
        self.cache: dict[tuple, int] = {}

    def call(self, mm_mask: int, motif_ok: bool, motif_unknown: bool) -> int:
        key = (mm_mask, motif_ok, motif_unknown)
        c = self.cache.get(key)
        if c is not None:
            return c
        n_mm = bin(mm_mask).count("1")
        if n_mm > self.k:
            c = FAILS  # beyond the engine's search budget: `check` finds no site
        else:
            seed_mm = bin(mm_mask & int(self.seed_mask)).count("1")
            from_3p = tuple(p + 1 for p in range(self.L) if (mm_mask >> (2 * p)) & 3)
            diffs = SiteDifferences(self.L, n_mm, 0, 0, from_3p, (), seed_mm, motif_ok, motif_unknown)
            # guides are called without thermodynamics (the shipped guide rules use none; see docs/design.md)
            c, _ = call_site(self.rules, rule_group("crRNA", self.enzyme), diffs, SiteThermo.none(), self.enzyme)
        self.cache[key] = c
        return c


def motif_table(enzyme: Enzyme) -> np.ndarray:
    """Whether each PAM/PFS (packed 2 bits a base, oligo orientation, 5' part then 3' part) satisfies the
    enzyme's motif, by :meth:`Enzyme.motif_matches` itself (IUPAC flanks and any motif rule), so the kernels
    need no copy of the rule."""
    from itertools import product

    _, _, motif = enzyme.oligo_context()
    if len(motif) > 10:
        raise InputError(
            enzyme.path or None,
            f"{enzyme.name}: a PAM/PFS of {len(motif)} nt is longer than design supports (10 nt)",
            "shorten the motif in the enzyme file",
        )
    return np.array(
        [bool(enzyme.motif_matches("".join(bases))) for bases in product("ACGT", repeat=len(motif))], dtype=np.bool_
    )


def call_table(enzyme: Enzyme, rules: RuleSet, L: int, max_mismatches: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The rule table's call for every mismatch pattern (up to ``max_mismatches`` positions) and motif state,
    as a hash table for the kernels: key = mismatch bits | motif state << 40."""
    from itertools import combinations

    cache = _CallCache(enzyme, rules, L, max_mismatches)
    keys, values = [], []
    for n_mm in range(max_mismatches + 1):
        for pos in combinations(range(L), n_mm):
            m1 = 0
            m2 = 0
            for p in pos:
                m1 |= 1 << p
                m2 |= 1 << (2 * p)
            for flag, (ok, unk) in enumerate(((False, False), (True, False), (False, True))):
                keys.append(m1 | (flag << 40))
                values.append(cache.call(m2, ok, unk))
    bits = max(10, int(np.ceil(np.log2(2 * len(keys) + 1))))
    tk, tv = hash_build(np.array(keys, dtype=np.uint64), np.array(values, dtype=np.int64), bits)
    return tk, tv, bits


def _merge_shifted(column, strand, key, nb, nr, max_shift: int = MERGE_SHIFT):
    """One candidate per spacer and locus: the same spacer at columns a few nt apart (an indel in some genomes
    shifts their site) is one guide, kept at the column where it binds most; returns (row to keep, rows to
    unite into it) with the kept rows in (column, strand) order."""
    order = np.lexsort((column, key, strand))
    c, st, k = column[order], strand[order], key[order]
    same = np.zeros(len(k), dtype=bool)
    if len(k) > 1:
        same[1:] = (st[1:] == st[:-1]) & (k[1:] == k[:-1]) & (c[1:] - c[:-1] <= max_shift)
    starts = np.flatnonzero(~same)
    ends = np.concatenate([starts[1:], [len(k)]])
    keep = np.empty(len(starts), dtype=np.int64)
    groups: dict[int, np.ndarray] = {}
    for r, (a, b) in enumerate(zip(starts, ends)):
        if b - a == 1:
            keep[r] = order[a]
            continue
        members = order[a:b]
        best = int(members[np.argmax(nb[members])])
        keep[r] = best
        groups[best] = members
    keep = keep[np.lexsort((strand[keep], column[keep]))]
    return keep, groups


def _reference_repeats(collection: Collection, c5: int, L: int, W: int) -> np.ndarray:
    """Spacer keys that occur more than once in the reference (either strand)."""
    ref = collection.reference.codes[None, :].astype(np.uint8)
    n = ref.shape[1] - W + 1
    if n <= 0:
        return np.zeros(0, np.uint64)
    anything = np.ones(4 ** (W - L), dtype=np.bool_)
    keys = []
    for st in (0, 1):
        v = window_values(ref, 0, n, W, c5, L, anything, st)[0]
        keys.append(v[(v & (F_GAP | F_UNKNOWN)) == 0] & KEY_MASK)
    k = np.concatenate(keys)
    uniq, counts = np.unique(k, return_counts=True)
    return uniq[counts > 1]


def generate_guides(
    collection: Collection,
    enzyme: Enzyme,
    rules: RuleSet,
    *,
    max_mismatches: int = 3,
    columns: tuple[int, int] | None = None,
    min_binds: int = 1,
    block: int = 256,
    max_per_column: int = 8,
    progress=None,
) -> GuideCandidates:
    """Every distinct spacer with a valid motif in the collection (the ``max_per_column`` most frequent at each
    site), with the genomes where it binds and where it binds or is degraded.

    ``columns`` limits sites to a reference range [start, end) (region constraint); ``min_binds`` drops
    candidates that bind fewer genomes."""
    L = enzyme.spacer_length
    if not 1 <= L <= 30:
        raise ValueError("spacer length must be 1..30 nt for design")
    c5, c3, _ = enzyme.oligo_context()
    W = c5 + L + c3
    masks = motif_table(enzyme)
    bases = collection.bases
    G, ncol = bases.shape
    lo, hi = columns if columns is not None else (0, ncol)
    lo, hi = max(0, lo), min(ncol - W + 1, hi - W + 1)
    tab = call_table(enzyme, rules, L, max_mismatches)
    nbytes = (G + 7) // 8
    parts = []
    for c0 in range(lo, max(lo, hi), block):
        c1 = min(hi, c0 + block)
        pl = min(MAX_READ_THROUGH, c0)
        pr = min(MAX_READ_THROUGH, ncol - (c1 + W - 1))
        rows, inv = distinct_rows(bases[:, c0 - pl : c1 + W - 1 + pr])
        row_count = np.bincount(inv, minlength=len(rows)).astype(np.int64)
        row_genomes = np.argsort(inv, kind="stable").astype(np.int64)
        row_start = np.concatenate([[0], np.cumsum(row_count)]).astype(np.int64)
        for st in (0, 1):
            V = np.ascontiguousarray(window_values(rows, 0, c1 - c0, W, c5, L, masks, st, pl).T)
            cap = 2 * (c1 - c0) + 64
            while True:
                o_jj = np.empty(cap, np.int64)
                o_key = np.empty(cap, np.uint64)
                o_b = np.empty((cap, nbytes), np.uint8)
                o_nb = np.empty(cap, np.int64)
                o_nr = np.empty(cap, np.int64)
                n = _column_candidates(
                    V,
                    row_count,
                    row_start,
                    row_genomes,
                    G,
                    L,
                    max_mismatches,
                    *tab,
                    max_per_column,
                    min_binds,
                    o_jj,
                    o_key,
                    o_b,
                    o_nb,
                    o_nr,
                )
                if n >= 0:
                    break
                cap *= 4
            parts.append((c0 + o_jj[:n], np.full(n, st, np.int8), o_key[:n], o_b[:n].copy(), o_nb[:n], o_nr[:n]))
        if progress is not None:
            progress(c1 - lo, hi - lo)
    if parts:
        cols = [np.concatenate([p[i] for p in parts]) for i in range(6)]
    else:
        cols = [
            np.zeros(0, np.int64),
            np.zeros(0, np.int8),
            np.zeros(0, np.uint64),
            np.zeros((0, nbytes), np.uint8),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        ]
    del parts
    column, strand, key, binds, nb, nr = cols
    # a spacer found more than once in the reference (a repeat, e.g. the coronavirus TRS motif) is dropped:
    # `check` assigns each oligo to the locus where it binds the reference best, so such a guide is ambiguous
    repeated = _reference_repeats(collection, c5, L, W)
    ok = ~np.isin(key, repeated) if len(repeated) else np.ones(len(key), dtype=bool)
    idx = np.flatnonzero(ok)
    keep, groups = _merge_shifted(column[idx], strand[idx], key[idx], nb[idx], nr[idx])
    rows = idx[keep]
    out_binds = binds[rows]
    out_nb, out_nr = nb[rows].copy(), nr[rows].copy()
    for r, best in enumerate(keep):
        members = groups.get(int(best))
        if members is not None:
            out_binds[r] = np.bitwise_or.reduce(binds[idx[members]], axis=0)
            out_nb[r] = int(POPCOUNT8[out_binds[r]].sum())
            out_nr[r] = max(out_nb[r], int(nr[idx[members]].max()))
    del binds
    core_offset = column[rows] + np.where(strand[rows] == 0, c5, c3)
    return GuideCandidates(
        enzyme, G, column[rows], strand[rows], key[rows], out_binds, out_nb, out_nr, W, core_offset=core_offset
    )
