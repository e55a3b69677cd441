"""The window cache and the :class:`Engine`: every genome position is keyed by the window of ``W`` bases that
starts there; only windows never seen before are searched (by :mod:`.kernels`, or :mod:`.cuda` on a GPU) and
their sites are cached for every later occurrence."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ..errors import InputError
from .batch import Hits, SiteTable, pack_batch
from .kernels import search_patterns
from .patterns import MAX_GAPS, MAX_MISMATCHES, PatternSet

_U1 = np.uint64(1)
_U0 = np.uint64(0)


@nb.njit(cache=True, nogil=True, inline="always")
def _mix(x) -> np.uint64:
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@nb.njit(cache=True, nogil=True, inline="always")
def _hash(keys, rlen) -> np.uint64:
    h = _mix(keys[0] ^ _mix(keys[1] + np.uint64(rlen)) ^ (keys[2] * np.uint64(0x9E3779B97F4A7C15)))
    if keys[3] or keys[4]:
        h = _mix(h ^ keys[3] ^ _mix(keys[4] + np.uint64(0x632BE59BD9B4E019)))
    return h


@nb.njit(cache=True, nogil=True, inline="always")
def _window_key(codes, p, rlen, key) -> None:
    """The window of ``rlen`` bases at ``p`` as 5 words: 3 of bases (2 bits each, 32 per word) and 2 marking its
    unknown bases, so windows with N are cached like any other (a run of N is searched once)."""
    for w in range(5):
        key[w] = _U0
    for i in range(rlen):
        c = codes[p + i]
        w = i >> 5
        key[w] = (key[w] << np.uint64(2)) | np.uint64(c & 3)
        if c == 4:
            key[3 + (i >> 6)] |= _U1 << np.uint64(i & 63)


@nb.njit(cache=True, nogil=True, inline="always")
def _same(ent_keys, e, key) -> bool:
    return (
        ent_keys[e, 0] == key[0]
        and ent_keys[e, 1] == key[1]
        and ent_keys[e, 2] == key[2]
        and ent_keys[e, 3] == key[3]
        and ent_keys[e, 4] == key[4]
    )


@nb.njit(cache=True, nogil=True)
def _lookup_insert(
    codes,
    genome_ends,
    W,
    use_cache,
    p_start,
    tab_val,
    ent_keys,
    ent_len,
    ent_last,
    succ,
    n_entries,
    max_entries,
    entry,
    novel,
) -> tuple[int, int]:
    """Look up the window starting at each position from ``p_start``, inserting new ones.

    ``entry[p]`` gets the entry id, -1 where nothing is cached (``use_cache`` false: every window searched
    directly) or -2 at a separator; ``novel[p]`` is 1 where the window must be searched. Each entry remembers the
    entry that followed it where it was first seen and its own last base: when window p-1 is entry e, window p is
    e's successor exactly when its last base is the successor's last base, so a genome that repeats known content
    costs one comparison per position; the full key (:func:`_window_key`) and the hash table are used only where
    that chain breaks. Stops early (for the caller to grow the tables) when ``n_entries`` reaches
    ``max_entries``; returns (next position, n_entries).
    """
    n = codes.shape[0]
    mask = np.uint64(tab_val.shape[0] - 1)
    key = np.zeros(5, dtype=np.uint64)
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
        if not use_cache:
            entry[p] = -1
            novel[p] = 1
            continue
        if n_entries >= max_entries:
            return p, n_entries
        end = genome_ends[gi]
        rlen = W if p + W <= end else end - p
        if prev >= 0 and rlen == W:
            cand = succ[prev]
            if cand >= 0 and ent_len[cand] == W and ent_last[cand] == codes[p + W - 1]:
                entry[p] = cand
                prev = cand
                continue
        _window_key(codes, p, rlen, key)
        h = _hash(key, rlen) & mask
        while True:
            v = tab_val[h]
            if v < 0:
                tab_val[h] = n_entries
                ent_keys[n_entries, :] = key
                ent_len[n_entries] = rlen
                ent_last[n_entries] = codes[p + rlen - 1]
                succ[n_entries] = -1
                v = n_entries
                novel[p] = 1
                n_entries += 1
                break
            if ent_len[v] == rlen and _same(ent_keys, v, key):
                break
            h = (h + _U1) & mask
        entry[p] = v
        if prev >= 0 and succ[prev] < 0:
            succ[prev] = v
        prev = v
    return n, n_entries


def _segments(novel: np.ndarray, genome_ends: np.ndarray, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of novel positions within one genome -> (text start, text end, report limit) per segment: the text
    runs W - 1 bases past the run (the last novel window's bases) but not past the genome's end. Separators are
    never novel, so runs never cross genomes."""
    pos = np.flatnonzero(novel)
    if not len(pos):
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    breaks = np.flatnonzero(np.diff(pos) != 1)
    first = pos[np.concatenate([[0], breaks + 1])].astype(np.int64)
    last = pos[np.concatenate([breaks, [len(pos) - 1]])].astype(np.int64)
    gend = genome_ends[np.searchsorted(genome_ends, first, side="right")]
    return first, np.minimum(last + W, gend), last + 1


@nb.njit(cache=True, nogil=True)
def _emit(entry, genome_ends, entry_first, entry_count, entry_sites, direct_pos, direct_site, genome_base) -> tuple:
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
def _suppress_gapped(genome, pos, site, site_pattern, site_span, site_gaps, site_cost) -> np.ndarray:
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


class Engine:
    """Streaming search of a :class:`PatternSet` over batches of genomes, with a window cache shared by all
    batches (so repeated content is searched once).

    ``threads`` splits the pattern-strands across threads (numba releases the GIL); results are identical
    for any thread count.
    """

    def __init__(
        self,
        patterns: PatternSet,
        max_mismatches: int = 3,
        max_gaps: int = 2,
        *,
        threads: int | None = None,
        cache: bool = True,
        device: str = "cpu",
    ):
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
            from . import cuda

            if not cuda.available():
                raise InputError(None, "no CUDA device found", "use --device cpu")
        self.device = device
        self.sites = SiteTable.empty()
        # hash table of windows -> entry; entries -> slice of entry_sites
        self._tab_val = np.full(1 << 16, -1, dtype=np.int64)
        self._n_entries = 0
        self._ent_keys = np.zeros((1 << 15, 5), dtype=np.uint64)
        self._ent_len = np.zeros(1 << 15, dtype=np.int32)
        self._ent_last = np.zeros(1 << 15, dtype=np.uint8)
        self._succ = np.full(1 << 15, -1, dtype=np.int64)
        self._entry_first = np.zeros(1 << 15, dtype=np.int64)
        self._entry_count = np.zeros(1 << 15, dtype=np.int32)
        self._entry_sites = np.zeros(0, dtype=np.int32)
        self.n_genomes = 0
        self.stats = {"positions": 0, "searched": 0, "segments": 0, "hits": 0}
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        # group pattern-strands into per-thread shares balanced by length
        order = np.argsort(-patterns.lengths, kind="stable")
        self._shares = [np.sort(order[t :: self.threads]) for t in range(self.threads)]

    @property
    def n_windows(self) -> int:
        """Distinct windows in the cache."""
        return int(self._n_entries)

    # -- hash table maintenance
    def _ensure_capacity(self, extra: int) -> None:
        """Grow the tables so that ``extra`` more entries fit, keeping the hash table under half full."""
        need = self._n_entries + extra
        if need > self._ent_len.shape[0]:
            new = max(need, 2 * self._ent_len.shape[0])
            keys = np.zeros((new, 5), dtype=np.uint64)
            keys[: self._n_entries] = self._ent_keys[: self._n_entries]
            self._ent_keys = keys
            for name, fill in (
                ("_ent_len", 0),
                ("_ent_last", 0),
                ("_succ", -1),
                ("_entry_first", 0),
                ("_entry_count", 0),
            ):
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
        entry = np.empty(n, dtype=np.int64)
        novel = np.zeros(n, dtype=np.uint8)
        first_new = self._n_entries
        p = 0
        while p < n:
            self._ensure_capacity(max(4096, n // 64))
            limit = min(self._tab_val.shape[0] // 2, self._ent_len.shape[0])
            p, self._n_entries = _lookup_insert(
                codes,
                genome_ends,
                W,
                self.use_cache,
                p,
                self._tab_val,
                self._ent_keys,
                self._ent_len,
                self._ent_last,
                self._succ,
                self._n_entries,
                limit,
                entry,
                novel,
            )
        self._ensure_capacity(0)
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
        self._entry_count[first_new : self._n_entries] = counts
        self._entry_first[first_new : self._n_entries] = len(self._entry_sites) + np.concatenate(
            [[0], np.cumsum(counts)[:-1]]
        ).astype(np.int64)
        # sites are already sorted by start, hence grouped by entry in first-occurrence order; sort by entry
        c_ids = site_ids[cacheable]
        c_ent = ent_of_start[cacheable]
        self._entry_sites = np.concatenate([self._entry_sites, c_ids[np.argsort(c_ent, kind="stable")]])
        direct_pos = starts[~cacheable]
        direct_site = site_ids[~cacheable]
        g, p, s = _emit(
            entry,
            genome_ends,
            self._entry_first,
            self._entry_count,
            self._entry_sites,
            direct_pos,
            direct_site,
            self.n_genomes,
        )
        self.n_genomes += len(genome_ends)
        hits = Hits(g, p, s)
        if self.g > 0 and len(hits):
            hits = self._suppress(hits)
        self.stats["hits"] += len(hits)
        return hits

    def _search(self, codes: np.ndarray, seg_s: np.ndarray, seg_e: np.ndarray, seg_l: np.ndarray) -> tuple:
        p = self.patterns
        args = (codes, seg_s, seg_e, seg_l)
        tail = (p.peq, p.lengths, p.masks, p.is_context, self.k, self.g)
        if self.device == "cuda":
            from .cuda import search_patterns_cuda

            return search_patterns_cuda(*args, np.arange(p.n_patterns, dtype=np.int64), *tail)
        if self._pool is None or len(seg_s) == 0:
            return search_patterns(*args, np.arange(p.n_patterns, dtype=np.int64), *tail)
        # (mypy cannot match star-arguments around a positional one to the kernel's parameters)
        futures = [
            self._pool.submit(search_patterns, *args, share.astype(np.int64), *tail)  # type: ignore[arg-type, call-arg]
            for share in self._shares
        ]
        parts = [f.result() for f in futures]
        return (
            np.concatenate([x[0] for x in parts]),
            np.concatenate([x[1] for x in parts]),
            np.concatenate([x[2] for x in parts]),
            np.concatenate([x[3] for x in parts]),
        )

    def _suppress(self, hits: Hits) -> Hits:
        """Drop gapped hits overlapping a better hit of the same genome and pattern-strand (only the
        genome/pattern pairs that have a gapped hit are sorted and examined)."""
        pat = self.sites.pattern[hits.site].astype(np.int64)
        gapped = self.sites.gaps[hits.site] > 0
        if not gapped.any():
            return hits
        key = hits.genome.astype(np.int64) * self.patterns.n_patterns + pat
        involved = _members(key, key[gapped])
        idx = np.flatnonzero(involved)
        order = idx[np.lexsort((hits.pos[idx], pat[idx], hits.genome[idx]))]
        keep_sub = _suppress_gapped(
            hits.genome[order],
            hits.pos[order],
            hits.site[order],
            self.sites.pattern,
            self.sites.span,
            self.sites.gaps,
            self.sites.cost,
        )
        keep = np.ones(len(hits), dtype=bool)
        keep[order[~keep_sub]] = False
        return Hits(hits.genome[keep], hits.pos[keep], hits.site[keep])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@nb.njit(cache=True, nogil=True)
def _reinsert(n_entries, ent_keys, ent_len, tab_val) -> None:
    """Rebuild the hash table (after growth) from the entries' keys."""
    mask = np.uint64(tab_val.shape[0] - 1)
    for e in range(n_entries):
        h = _hash(ent_keys[e], ent_len[e]) & mask
        while tab_val[h] >= 0:
            h = (h + _U1) & mask
        tab_val[h] = e


def search(
    patterns: PatternSet, seqs: list[np.ndarray], max_mismatches: int = 3, max_gaps: int = 2, **kwargs
) -> tuple[Hits, SiteTable]:
    """Search encoded sequences in one batch (for small inputs and tests)."""
    engine = Engine(patterns, max_mismatches, max_gaps, **kwargs)
    try:
        codes, ends = pack_batch(seqs)
        hits = engine.search_codes(codes, ends)
    finally:
        engine.close()
    return hits, engine.sites


def _members(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin(values, of)`` for integers, ``of`` drawn from ``values``: by a table over their range where it is
    small (a batch's genome x pattern keys; 0.3 s of the shipped check went to sorting them), else by np.isin."""
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 8 * len(values) + 1_000_000:
        return np.isin(values, of)
    table = np.zeros(hi - lo + 1, dtype=bool)
    table[of - lo] = True
    return table[values - lo]
