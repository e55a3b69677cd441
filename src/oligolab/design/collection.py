"""The target collection in reference coordinates: genomes are read with the project's readers and projected
onto the reference by an anchored alignment, so that every design step works on one matrix
``bases[genome, reference column]``.

Why a projection: candidate guides and primers are compared across thousands of genomes at the same locus.
Unique reference k-mers anchor each genome (exact matches on one diagonal), the stretches between anchors on
different diagonals (indels) are aligned globally, and the result is one byte per genome and reference column.
For 3,585 SARS-CoV-2 genomes this is 107 MB and takes seconds; collections that share too few k-mers with the
reference (below roughly 80 % identity) lose anchors and their unanchored stretches become "no data".

Codes in the matrix: 0..3 A C G T, 4 unknown base (N or another ambiguity code), 6 deleted in the genome,
7 outside the genome (not sequenced: before its first or after its last base). Bit 0x80 marks bases
inserted in the genome just before the column (the inserted bases themselves are not kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from ..errors import InputError
from ..sequences import SeqRecord, read_fasta, read_metadata, reverse_complement

DELETED = 6
ABSENT = 7
INSERT_FLAG = 0x80
BASE_MASK = 0x7F
ANCHOR_K = 16  #: anchor k-mer length (nt); 2 bits per base fit one uint64
MAX_ALIGN_CELLS = 4_000_000  #: larger unanchored stretches are left as "no data" instead of aligned


# ---------------------------------------------------------------------------------------------- kernels


@nb.njit(cache=True, nogil=True)
def kmer_keys(codes: np.ndarray, k: int) -> np.ndarray:
    """2-bit packed k-mer starting at each position; all ones (invalid) where the window holds a non-ACGT code
    or runs off the end."""
    n = codes.shape[0]
    out = np.full(n, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    mask = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    key = np.uint64(0)
    valid = 0
    for i in range(n):
        c = codes[i]
        if c < 4:
            key = ((key << np.uint64(2)) | np.uint64(c)) & mask
            valid += 1
        else:
            valid = 0
            key = np.uint64(0)
        if valid >= k:
            out[i - k + 1] = key
    return out


@nb.njit(cache=True, nogil=True)
def hash_build(keys: np.ndarray, values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Open-addressing hash table (size 2**bits) of distinct uint64 keys -> int64 values."""
    size = 1 << bits
    tk = np.full(size, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    tv = np.full(size, -1, dtype=np.int64)
    mask = np.uint64(size - 1)
    for i in range(keys.shape[0]):
        h = (keys[i] * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)
        while tv[h] >= 0:
            h = (h + np.uint64(1)) & mask
        tk[h] = keys[i]
        tv[h] = values[i]
    return tk, tv


@nb.njit(cache=True, nogil=True)
def hash_lookup(keys: np.ndarray, tk: np.ndarray, tv: np.ndarray, bits: int) -> np.ndarray:
    """Value of each key in a table from :func:`hash_build` (-1 when absent)."""
    size = tk.shape[0]
    mask = np.uint64(size - 1)
    out = np.full(keys.shape[0], -1, dtype=np.int64)
    for i in range(keys.shape[0]):
        key = keys[i]
        if key == np.uint64(0xFFFFFFFFFFFFFFFF):
            continue
        h = (key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)
        while tv[h] >= 0:
            if tk[h] == key:
                out[i] = tv[h]
                break
            h = (h + np.uint64(1)) & mask
    return out


@nb.njit(cache=True, nogil=True)
def _chain(gpos: np.ndarray, rpos: np.ndarray) -> np.ndarray:
    """Indices of the longest chain of anchors increasing in both genome and reference position (anchors come
    sorted by genome position); O(n log n) patience sorting."""
    n = gpos.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tails = np.empty(n, dtype=np.int64)  # index of the anchor ending a chain of each length
    prev = np.full(n, -1, dtype=np.int64)
    length = 0
    for i in range(n):
        lo, hi = 0, length
        while lo < hi:
            mid = (lo + hi) // 2
            if rpos[tails[mid]] < rpos[i]:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev[i] = tails[lo - 1]
        tails[lo] = i
        if lo == length:
            length += 1
    out = np.empty(length, dtype=np.int64)
    j = tails[length - 1]
    for t in range(length - 1, -1, -1):
        out[t] = j
        j = prev[j]
    return out


@nb.njit(cache=True, nogil=True)
def _align_fill(g: np.ndarray, g0: int, g1: int, r: np.ndarray, r0: int, r1: int, row: np.ndarray) -> None:
    """Global alignment (affine gaps: open 5, extend 1, mismatch 3) of genome[g0:g1] to reference[r0:r1];
    writes the genome base, DELETED, or the insertion flag into ``row`` for columns r0..r1-1 (and flags an
    insertion before column r1 when the genome has extra bases at the end).

    One numba kernel on purpose (about 95 lines): the affine-gap matrices and the traceback share
    buffers; it is the textbook algorithm written out once."""
    n = g1 - g0
    m = r1 - r0
    if m == 0:
        if n > 0 and r1 < row.shape[0]:
            row[r1] |= INSERT_FLAG
        return
    if n == 0:
        for j in range(m):
            row[r0 + j] = DELETED
        return
    INF = 1 << 28
    # states: M (diagonal), X (gap in genome = deletion: ref advances), Y (gap in ref = insertion)
    M = np.full((n + 1, m + 1), INF, dtype=np.int32)
    X = np.full((n + 1, m + 1), INF, dtype=np.int32)
    Y = np.full((n + 1, m + 1), INF, dtype=np.int32)
    M[0, 0] = 0
    for j in range(1, m + 1):
        X[0, j] = 5 + j
    for i in range(1, n + 1):
        Y[i, 0] = 5 + i
    for i in range(1, n + 1):
        gi = g[g0 + i - 1]
        for j in range(1, m + 1):
            sub = 0 if gi == r[r0 + j - 1] and gi < 4 else 3
            best = M[i - 1, j - 1]
            if X[i - 1, j - 1] < best:
                best = X[i - 1, j - 1]
            if Y[i - 1, j - 1] < best:
                best = Y[i - 1, j - 1]
            M[i, j] = best + sub
            a = M[i, j - 1] + 6
            b = X[i, j - 1] + 1
            c = Y[i, j - 1] + 6
            X[i, j] = min(a, min(b, c))
            a = M[i - 1, j] + 6
            b = Y[i - 1, j] + 1
            c = X[i - 1, j] + 6
            Y[i, j] = min(a, min(b, c))
    # traceback
    i, j = n, m
    state = 0  # on ties the traceback prefers gaps, which places indels 3'-most (right-shifted)
    best = M[n, m]
    if X[n, m] <= best:
        best = X[n, m]
        state = 1
    if Y[n, m] < best:
        state = 2
    pending_ins = False
    while i > 0 or j > 0:
        if state == 0:
            row[r0 + j - 1] = g[g0 + i - 1] | (INSERT_FLAG if pending_ins else 0)
            pending_ins = False
            prev = M[i - 1, j - 1]
            nxt = 0
            if X[i - 1, j - 1] <= prev:
                prev = X[i - 1, j - 1]
                nxt = 1
            if Y[i - 1, j - 1] <= prev:
                nxt = 2
            i -= 1
            j -= 1
            state = nxt
        elif state == 1:
            row[r0 + j - 1] = DELETED | (INSERT_FLAG if pending_ins else 0)
            pending_ins = False
            cur = X[i, j]
            if j - 1 >= 0 and cur == X[i, j - 1] + 1:
                state = 1
            elif cur == M[i, j - 1] + 6:
                state = 0
            else:
                state = 2
            j -= 1
        else:
            pending_ins = True
            cur = Y[i, j]
            if i - 1 >= 0 and cur == Y[i - 1, j] + 1:
                state = 2
            elif cur == M[i - 1, j] + 6:
                state = 0
            else:
                state = 1
            i -= 1
        if i == 0 and j == 0:
            break
        if i == 0 and j > 0:
            state = 1
        elif j == 0 and i > 0:
            state = 2
    if pending_ins and r0 < row.shape[0]:
        row[r0] |= INSERT_FLAG


@nb.njit(cache=True, nogil=True)
def _project_one(
    g: np.ndarray, r: np.ndarray, ag: np.ndarray, ar: np.ndarray, k: int, max_cells: int, row: np.ndarray
) -> int:
    """Fill ``row`` (reference columns) from genome ``g`` given chained anchors (ag, ar); returns the number of
    columns left unknown because an unanchored stretch was too large to align.

    One numba kernel on purpose (about 95 lines): chaining anchors, copying diagonals and aligning the
    gaps between them share the cursor in the genome; splitting would cost a call per anchor."""
    L = r.shape[0]
    for j in range(L):
        row[j] = ABSENT
    na = ag.shape[0]
    if na == 0:
        return L
    # group anchors into runs on one diagonal
    seg_g0 = np.empty(na, dtype=np.int64)
    seg_g1 = np.empty(na, dtype=np.int64)
    seg_d = np.empty(na, dtype=np.int64)
    ns = 0
    for a in range(na):
        d = ar[a] - ag[a]
        if ns > 0 and seg_d[ns - 1] == d:
            seg_g1[ns - 1] = ag[a] + k
        else:
            seg_g0[ns] = ag[a]
            seg_g1[ns] = ag[a] + k
            seg_d[ns] = d
            ns += 1
    unknown = 0
    # before the first run: align the genome's first bases to the reference (reference bases before the
    # genome's first base are not sequenced: ABSENT)
    d = seg_d[0]
    g0 = seg_g0[0]
    r0 = g0 + d
    if g0 > 0 and r0 > 0:
        ra = r0 - g0 - 50
        if ra < 0:
            ra = 0
        if g0 * (r0 - ra) <= max_cells:
            _align_fill(g, 0, g0, r, ra, r0, row)
        else:
            for gp in range(g0 - 1, -1, -1):
                if gp + d < 0:
                    break
                row[gp + d] = g[gp]
        j = ra
        while j < r0 and (row[j] & BASE_MASK) == DELETED:
            row[j] = ABSENT | (row[j] & INSERT_FLAG)
            j += 1
    start = seg_g0[0]  # genome position from which the current run is copied
    for s in range(ns):
        d = seg_d[s]
        hi = seg_g1[s]
        if s + 1 < ns:
            # join with the next run: the current run is extended as far as its anchors reach and the next one
            # starts as late as possible, so an indel in a repeat is placed 3'-most; the rest is aligned
            nd = seg_d[s + 1]
            ng0 = seg_g0[s + 1]
            ga = hi
            if ga < start:
                ga = start
            gb = ga if ga > ng0 else ng0
            if ga + d > gb + nd:
                gb = ga + d - nd
            for gp in range(start, ga):
                row[gp + d] = g[gp]
            ra, rb = ga + d, gb + nd
            if (gb - ga) * (rb - ra) > max_cells:
                for rp in range(ra, rb):
                    row[rp] = 4
                unknown += rb - ra
            else:
                _align_fill(g, ga, gb, r, ra, rb, row)
            start = gb
        else:
            for gp in range(start, hi):
                row[gp + d] = g[gp]
            # after the last run: align the genome's last bases to the reference, then mark reference bases
            # after the genome's end ABSENT
            n_g = g.shape[0]
            ra = hi + d
            rb = ra + (n_g - hi) + 50
            if rb > L:
                rb = L
            if n_g > hi and ra < L:
                if (n_g - hi) * (rb - ra) <= max_cells:
                    _align_fill(g, hi, n_g, r, ra, rb, row)
                    j = rb - 1
                    while j >= ra and (row[j] & BASE_MASK) == DELETED:
                        row[j] = ABSENT
                        j -= 1
                else:
                    for gp in range(hi, n_g):
                        if gp + d >= L:
                            break
                        row[gp + d] = g[gp]
    return unknown


@nb.njit(cache=True, nogil=True)
def _column_profile(bases: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: counts of codes 0..7, and genomes with an insertion before it."""
    G, L = bases.shape
    counts = np.zeros((L, 8), dtype=np.int64)
    ins = np.zeros(L, dtype=np.int64)
    for g in range(G):
        for j in range(L):
            raw = bases[g, j]
            counts[j, raw & BASE_MASK] += 1
            if raw & INSERT_FLAG:
                ins[j] += 1
    return counts, ins, np.zeros(0, dtype=np.int64)


@dataclass
class Profile:
    """Per reference column: the collection's majority base and how many genomes differ from it."""

    consensus: np.ndarray  #: majority code among sequenced genomes (0..3, or DELETED)
    differ: np.ndarray  #: genomes whose base differs (substitution, deletion, or insertion next to it)
    unknown: np.ndarray  #: genomes with an unknown base or not sequenced there
    counts: np.ndarray  #: (columns, 8) genomes per code

    def sequence(self, start: int, end: int) -> str:
        """Consensus bases of columns [start, end) (deleted columns left out)."""
        return "".join("ACGT"[c] for c in self.consensus[start:end] if c < 4)


# ------------------------------------------------------------------------------------------- the objects


@dataclass
class Reference:
    """The coordinate system of a design: a reference genome, its codes and its unique anchor k-mers."""

    record: SeqRecord
    codes: np.ndarray
    anchor_keys: np.ndarray  #: sorted unique k-mer keys
    anchor_pos: np.ndarray  #: their reference positions
    _table: tuple = field(default=(), repr=False)

    @classmethod
    def from_record(cls, record: SeqRecord) -> Reference:
        codes = record.codes()
        keys = kmer_keys(codes, ANCHOR_K)
        valid = keys != np.uint64(0xFFFFFFFFFFFFFFFF)
        pos = np.flatnonzero(valid)
        k = keys[valid]
        uniq, first, counts = np.unique(k, return_index=True, return_counts=True)
        keep = counts == 1
        return cls(record, codes, uniq[keep], pos[first[keep]])

    @property
    def length(self) -> int:
        return int(self.codes.shape[0])

    @property
    def name(self) -> str:
        return self.record.id

    def anchors(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chained anchors (genome positions, reference positions) of an encoded genome."""
        keys = kmer_keys(codes, ANCHOR_K)
        if not len(self.anchor_keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if not self._table:
            bits = max(10, int(np.ceil(np.log2(2 * len(self.anchor_keys) + 1))))
            self._table = (*hash_build(self.anchor_keys, self.anchor_pos.astype(np.int64), bits), bits)
        found = hash_lookup(keys, *self._table)
        gpos = np.flatnonzero(found >= 0).astype(np.int64)
        rpos = found[gpos]
        if len(rpos) < 2 or bool(np.all(rpos[1:] > rpos[:-1])):  # the usual case: already co-linear
            return gpos, rpos
        chain = _chain(gpos, rpos)
        return gpos[chain], rpos[chain]


@dataclass
class Collection:
    """Target genomes projected onto the reference: ``bases`` is (genomes, reference length) uint8."""

    reference: Reference
    ids: list[str]
    lineages: list[str]
    bases: np.ndarray
    weights: np.ndarray  #: per genome (default 1.0)
    sources: list[str] = field(default_factory=list)
    reversed_ids: list[str] = field(default_factory=list)  #: genomes given as reverse complement
    unanchored: dict[str, int] = field(default_factory=dict)  #: genome -> columns left unknown

    @property
    def n(self) -> int:
        return len(self.ids)

    def profile(self) -> Profile:
        """Consensus and variability per column (computed once)."""
        if getattr(self, "_profile", None) is None:
            counts, ins, _ = _column_profile(self.bases)
            seen = counts[:, [0, 1, 2, 3, DELETED]]
            cons_idx = np.argmax(seen, axis=1)
            consensus = np.array([0, 1, 2, 3, DELETED], dtype=np.uint8)[cons_idx]
            differ = seen.sum(axis=1) - seen[np.arange(len(seen)), cons_idx] + ins
            unknown = counts[:, 4] + counts[:, 5] + counts[:, ABSENT]
            self._profile = Profile(consensus, differ.astype(np.int64), unknown.astype(np.int64), counts)
        return self._profile

    def lineage_index(self) -> tuple[list[str], np.ndarray]:
        """(distinct lineages in first-seen order, lineage index of each genome)."""
        names: dict[str, int] = {}
        idx = np.array([names.setdefault(x, len(names)) for x in self.lineages], dtype=np.int64)
        return list(names), idx

    def subset(self, keep: np.ndarray) -> Collection:
        keep = np.asarray(keep, dtype=bool)
        sel = np.flatnonzero(keep)
        return Collection(
            self.reference,
            [self.ids[i] for i in sel],
            [self.lineages[i] for i in sel],
            self.bases[sel],
            self.weights[sel],
            self.sources,
            [x for x in self.reversed_ids if x in set(self.ids[i] for i in sel)],
            {k: v for k, v in self.unanchored.items() if k in set(self.ids[i] for i in sel)},
        )


def project(reference: Reference, codes: np.ndarray) -> tuple[np.ndarray, bool, int]:
    """Project one encoded genome: (row of reference columns, reverse-complemented?, unknown columns)."""
    ag, ar = reference.anchors(codes)
    rc = False
    if len(ag) < max(10, reference.length // 2000):
        from ..sequences import encode

        rc_codes = encode(reverse_complement(_decode_plain(codes)))
        bg, br = reference.anchors(rc_codes)
        if len(bg) > 2 * max(1, len(ag)):
            codes, ag, ar, rc = rc_codes, bg, br, True
    row = np.empty(reference.length, dtype=np.uint8)
    unknown = _project_one(codes, reference.codes, ag, ar, ANCHOR_K, MAX_ALIGN_CELLS, row)
    return row, rc, unknown


def _decode_plain(codes: np.ndarray) -> str:
    from ..sequences import decode

    return decode(codes)


def read_collection(
    genome_paths: list[str | Path],
    reference: SeqRecord | None = None,
    metadata_path: str | Path | None = None,
    lineage_from_id: bool | None = None,
    keep=None,
    progress=None,
) -> Collection:
    """Read target genomes (streamed by the project's FASTA reader) and project them onto the reference.

    ``keep(record_id, lineage) -> bool`` filters genomes while reading (e.g. a temporal hold-out; the lineage
    is the metadata's, else the id). Without a reference the first genome is the reference. Lineages come from
    metadata, else from ids that look like Pango names, else 'unassigned'.
    """
    from ..lineages import looks_like_pango

    metadata = read_metadata(metadata_path) if metadata_path else None
    ref = Reference.from_record(reference) if reference is not None else None
    ids: list[str] = []
    rows: list[np.ndarray] = []
    reversed_ids: list[str] = []
    unanchored: dict[str, int] = {}
    seen: set[str] = set()
    n_read = 0
    # genomes are projected as they are read, so only one byte per reference column and genome is kept
    for path in genome_paths:
        for rec in read_fasta(path):
            if rec.id in seen:
                raise InputError(
                    path, f"duplicate record id '{rec.id}'", "give every genome a unique id", record=rec.id
                )
            seen.add(rec.id)
            n_read += 1
            if ref is None:
                ref = Reference.from_record(rec)
            if keep is not None:
                lin = metadata.lineage(rec.id) if metadata is not None else None
                if not keep(rec.id, lin or rec.id):
                    continue
            row, rc, unknown = project(ref, rec.codes())
            if rc:
                reversed_ids.append(rec.id)
            if unknown:
                unanchored[rec.id] = unknown
            ids.append(rec.id)
            rows.append(row)
            if progress is not None and n_read % 200 == 0:
                progress(n_read, 0)
    if n_read == 0:
        raise InputError(genome_paths[0] if genome_paths else None, "no genomes read", "give FASTA genomes")
    if not ids:
        raise InputError(genome_paths[0], "no genome left after filtering", "check the lineage filter")
    if lineage_from_id is None:
        lineage_from_id = metadata is None and looks_like_pango(ids)
    lineages = [
        (metadata.lineage(i) if metadata is not None else None) or (i if lineage_from_id else "unassigned") for i in ids
    ]
    bases = np.stack(rows)
    weights = np.ones(len(ids), dtype=np.float64)
    assert ref is not None  # given, or taken from the first genome read (none read was refused above)
    return Collection(ref, ids, lineages, bases, weights, [str(p) for p in genome_paths], reversed_ids, unanchored)
