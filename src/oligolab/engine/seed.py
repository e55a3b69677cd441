"""The seed-index engine: mismatch-only search of many short patterns in large, non-redundant texts (a
transcriptome, a human genome) by exact pairs of pattern pieces (pigeonhole) in direct-address tables."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from .batch import Hits, SiteTable
from .patterns import MAX_GAPS, MAX_PATTERN, PatternSet

_U1 = np.uint64(1)
_U0 = np.uint64(0)


@nb.njit(cache=True, nogil=True)
def _qmer_values(codes, q) -> np.ndarray:
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
def _seed_scan_into(
    codes,
    genome_ends,
    lo,
    hi,
    qv,
    offsets,
    pair_a,
    pair_b,
    q,
    starts_tab,
    pats_tab,
    lengths,
    masks,
    k,
    out_start,
    out_int,
    out_mask,
    out_target,
) -> tuple[int, int]:
    """Scan window starts lo..hi-1 into preallocated output rows: look up every pair of pieces in its table,
    verify each candidate pattern by Hamming distance (unknown bases count as differences) and report it from
    the first pair of pieces that matches exactly (so every site is reported once). Returns (rows written,
    next start): it stops early when the output is full (the arrays are never reallocated inside the loop,
    which would cost a reference count per step). Kept in one piece: the innermost loop of the seed search,
    where a numba call per candidate would cost more than its work."""
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


def _seed_scan(
    codes, genome_ends, lo, hi, qv, offsets, pair_a, pair_b, q, starts_tab, pats_tab, lengths, masks, k
) -> tuple:
    """All sites with window starts in lo..hi-1 (see :func:`_seed_scan_into`); grows the output as needed."""
    parts = []
    p = lo
    cap = 1 << 14
    while p < hi:
        out_start = np.empty(cap, dtype=np.int64)
        out_int = np.empty((cap, 10), dtype=np.int32)
        out_mask = np.empty((cap, 2), dtype=np.uint64)
        out_target = np.empty((cap, MAX_PATTERN + MAX_GAPS), dtype=np.uint8)
        n, p = _seed_scan_into(
            codes,
            genome_ends,
            p,
            hi,
            qv,
            offsets,
            pair_a,
            pair_b,
            q,
            starts_tab,
            pats_tab,
            lengths,
            masks,
            k,
            out_start,
            out_int,
            out_mask,
            out_target,
        )
        parts.append((out_start[:n], out_int[:n], out_mask[:n], out_target[:n]))
        cap *= 2
    if not parts:
        return (
            np.zeros(0, np.int64),
            np.zeros((0, 10), np.int32),
            np.zeros((0, 2), np.uint64),
            np.zeros((0, MAX_PATTERN + MAX_GAPS), np.uint8),
        )
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
        for t, (key_arr, pat_arr) in enumerate(keys_per_pair):
            order = np.argsort(key_arr, kind="stable")
            counts = np.bincount(key_arr, minlength=n_keys)
            self.starts_tab[t, 1:] = base + np.cumsum(counts)
            self.starts_tab[t, 0] = base
            pats_all.append(pat_arr[order])
            base += len(key_arr)
        self.pats_tab = np.concatenate(pats_all) if pats_all else np.zeros(0, dtype=np.int64)

    def search_codes(self, codes: np.ndarray, genome_ends: np.ndarray) -> Hits:
        genome_ends = np.asarray(genome_ends, dtype=np.int64)
        qv = _qmer_values(codes, self.q)
        n = codes.shape[0]
        bounds = np.linspace(0, n, self.threads + 1).astype(np.int64)
        args = (
            self.offsets,
            self.pair_a,
            self.pair_b,
            self.q,
            self.starts_tab,
            self.pats_tab,
            self.patterns.lengths,
            self.patterns.masks,
            self.k,
        )
        if self._pool is None:
            parts = [_seed_scan(codes, genome_ends, 0, n, qv, *args)]
        else:
            futures = [
                self._pool.submit(_seed_scan, codes, genome_ends, int(bounds[i]), int(bounds[i + 1]), qv, *args)
                for i in range(self.threads)
            ]
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
        hits = Hits(
            (self.n_genomes + g).astype(np.int32),
            (starts - genome_starts[g]).astype(np.int32),
            np.arange(base_id, base_id + len(starts), dtype=np.int32),
        )
        self.n_genomes += len(genome_ends)
        self.stats["positions"] += int(n - len(genome_ends))
        self.stats["searched"] += int(n - len(genome_ends))
        self.stats["hits"] += len(hits)
        return hits

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
