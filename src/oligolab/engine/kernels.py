"""The numba kernels of the approximate-match search, shared by the CPU path (:mod:`.cache`) and the CUDA path
(:mod:`.cuda`): Myers' bit-parallel filter (one Python source compiled for both) and the banded dynamic
programme that verifies each candidate start under the mismatch and gap budgets."""

from __future__ import annotations

import numba as nb
import numpy as np

from .patterns import MAX_GAPS, MAX_PATTERN

_U1 = np.uint64(1)
_U0 = np.uint64(0)


@nb.njit(cache=True, nogil=True)
def verify_start(text, s, seg_end, masks_j, ctx_j, m, k, g, out_int, out_mask, out_target) -> bool:
    """Best alignment of pattern ``j`` starting exactly at text[s] (pattern[0] pairs with text[s]).

    Kept in one piece (about 170 lines): it is the innermost step of the search, and a numba call per DP cell
    or per traceback field would cost more than the work.

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
            if (
                best_di < 0
                or cost < best_cost
                or (cost == best_cost and (u < best_u or (u == best_u and span < m + (best_di - g))))
            ):
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


def myers_scan_source(text, a, n, lim, peq, j, m, g, e, cand, row, base) -> tuple[int, int]:
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


myers_scan = nb.njit(cache=True, nogil=True)(myers_scan_source)


@nb.njit(cache=True, nogil=True)
def grow_rows(a, cap) -> np.ndarray:
    """A copy of ``a`` with room for ``cap`` rows."""
    b = np.empty((cap,) + a.shape[1:], dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@nb.njit(cache=True, nogil=True)
def new_rows(cap) -> tuple:
    return (
        np.empty(cap, dtype=np.int64),
        np.empty((cap, 10), dtype=np.int32),
        np.empty((cap, 2), dtype=np.uint64),
        np.empty((cap, MAX_PATTERN + MAX_GAPS), dtype=np.uint8),
    )


@nb.njit(cache=True, nogil=True)
def verify_marked_range(text, a, b, cand, row, base, lo, hi, j, masks_j, ctx_j, m, k, g, out, n_out) -> tuple:
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
        if verify_start(text, a + s, b, masks_j, ctx_j, m, k, g, row_int, row_mask, row_target):
            if n_out == out_start.shape[0]:
                cap = 2 * n_out
                out_start = grow_rows(out_start, cap)
                out_int = grow_rows(out_int, cap)
                out_mask = grow_rows(out_mask, cap)
                out_target = grow_rows(out_target, cap)
            out_start[n_out] = a + s
            row_int[0] = j
            out_int[n_out] = row_int
            out_mask[n_out] = row_mask
            out_target[n_out] = row_target
            n_out += 1
    return (out_start, out_int, out_mask, out_target), n_out


@nb.njit(cache=True, nogil=True)
def _myers_all(peq_c, pv, mv, score, high, n_pat) -> int:
    """One text character through Myers' step for every pattern at once (the loop over patterns has no branch, so
    the compiler runs it on SIMD lanes); returns the lowest score."""
    one = np.uint64(1)
    best = 1 << 30
    for pj in range(n_pat):
        eq = peq_c[pj]
        p = pv[pj]
        m_ = mv[pj]
        xv = eq | m_
        xh = (((eq & p) + p) ^ p) | eq
        ph = m_ | ~(xh | p)
        mh = p & xh
        s = score[pj] + np.int64((ph & high[pj]) != 0) - np.int64((mh & high[pj]) != 0)
        score[pj] = s
        ph = ph << one
        mh = mh << one
        pv[pj] = mh | ~(xv | ph)
        mv[pj] = ph & xv
        best = min(best, s)
    return best


@nb.njit(cache=True, nogil=True)
def search_patterns(
    text, seg_starts, seg_ends, seg_limits, pattern_ids, peq, lengths, masks, is_context, k, g
) -> tuple:
    """Search pattern-strands over text segments. Segment ``i`` covers text[seg_starts[i]:seg_ends[i]]; only
    sites starting before ``seg_limits[i]`` are reported. Returns (starts, int fields, masks, targets).

    Myers' filter runs every pattern over a segment together, character by character (:func:`_myers_all`), and
    marks candidate starts per pattern; each pattern's marks are then verified. The marks are exactly those of
    :func:`myers_scan` run pattern by pattern (the CUDA path), so the sites are the same."""
    out = new_rows(1024)
    n_out = 0
    n_pat = pattern_ids.shape[0]
    max_seg = 0
    for si in range(seg_starts.shape[0]):
        if seg_ends[si] - seg_starts[si] > max_seg:
            max_seg = seg_ends[si] - seg_starts[si]
    cand = np.zeros((n_pat, max_seg + 1), dtype=np.uint8)
    peq_t = np.empty((6, n_pat), dtype=np.uint64)
    high = np.empty(n_pat, dtype=np.uint64)
    m_of = np.empty(n_pat, dtype=np.int64)
    for pj in range(n_pat):
        j = pattern_ids[pj]
        m_of[pj] = lengths[j]
        high[pj] = np.uint64(1) << np.uint64(lengths[j] - 1)
        for c in range(6):
            peq_t[c, pj] = peq[j, c]
    pv = np.empty(n_pat, dtype=np.uint64)
    mv = np.empty(n_pat, dtype=np.uint64)
    score = np.empty(n_pat, dtype=np.int64)
    lo = np.empty(n_pat, dtype=np.int64)
    hi = np.empty(n_pat, dtype=np.int64)
    for si in range(seg_starts.shape[0]):
        a = seg_starts[si]
        n = seg_ends[si] - a
        last = seg_limits[si] - a - 1
        for pj in range(n_pat):
            pv[pj] = ~np.uint64(0)
            mv[pj] = np.uint64(0)
            score[pj] = m_of[pj]
            lo[pj] = n
            hi[pj] = -1
        for t in range(n):
            if _myers_all(peq_t[text[a + t]], pv, mv, score, high, n_pat) > k:
                continue
            for pj in range(n_pat):
                if score[pj] > k:
                    continue
                s0 = max(t - m_of[pj] + 1 - g, 0)
                s1 = min(t - m_of[pj] + 1 + g, last)
                for s in range(s0, s1 + 1):
                    cand[pj, s] = 1
                if s0 <= s1:
                    lo[pj] = min(lo[pj], s0)
                    hi[pj] = max(hi[pj], s1)
        for pj in range(n_pat):
            if hi[pj] >= lo[pj]:
                j = pattern_ids[pj]
                out, n_out = verify_marked_range(
                    text, a, a + n, cand, pj, 0, lo[pj], hi[pj], j, masks[j], is_context[j], m_of[pj], k, g, out, n_out
                )
    return out[0][:n_out], out[1][:n_out], out[2][:n_out], out[3][:n_out]


@nb.njit(cache=True, nogil=True)
def best_site_in_window(text, lo, hi, seg_end, expected, masks_j, ctx_j, m, k, g, out_int, out_mask, out_target) -> int:
    """The cheapest alignment of pattern ``j`` starting in text[lo:hi] (cost = mismatches + unknowns + 2 x gap nt,
    ties to the start nearest ``expected``), with at most ``k`` differences of which at most ``g`` gap nt, verified
    as the search verifies. Fills the output rows like :func:`verify_start`; returns the start or -1. Used to call
    an oligo at its expected place whatever the search limit."""
    row_int = np.zeros(10, dtype=np.int32)
    row_mask = np.zeros(2, dtype=np.uint64)
    row_target = np.zeros(MAX_PATTERN + MAX_GAPS, dtype=np.uint8)
    best = -1
    best_cost = 1 << 30
    best_dist = 1 << 30
    for s in range(lo, hi):
        if not verify_start(text, s, seg_end, masks_j, ctx_j, m, k, g, row_int, row_mask, row_target):
            continue
        cost = row_int[9]
        dist = abs(s - expected)
        if cost < best_cost or (cost == best_cost and dist < best_dist):
            best, best_cost, best_dist = s, cost, dist
            out_int[:] = row_int
            out_mask[:] = row_mask
            out_target[:] = row_target
    return best
