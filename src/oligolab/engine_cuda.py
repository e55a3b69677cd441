"""Optional CUDA path of the approximate-match engine: the bit-parallel Myers filter runs on the GPU, one
thread per (pattern, text segment); candidate starts come back and are verified by the same CPU routine as
the CPU path, so the sites are identical by construction (tested under numba's CUDA simulator; CI has no GPU).

Used by ``Engine(..., device="cuda")`` when a CUDA GPU is present.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import cuda

from .engine import MAX_GAPS, MAX_PATTERN, _grow1, _grow2b, _grow2i, _grow2u, _verify_start


def available() -> bool:
    """Whether a CUDA device (or the numba simulator) can run the kernel."""
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001  (no driver, no toolkit: simply not available)
        return False


@cuda.jit
def _myers_kernel(text, seg_starts, seg_ends, seg_limits, seg_offsets, pattern_ids, peq, lengths, k, g, cand):
    """Thread i scans segment i % n_seg for pattern i // n_seg and marks candidate starts in ``cand``."""
    idx = cuda.grid(1)
    n_seg = seg_starts.shape[0]
    if idx >= pattern_ids.shape[0] * n_seg:
        return
    pj = idx // n_seg
    si = idx % n_seg
    j = pattern_ids[pj]
    m = lengths[j]
    one = np.uint64(1)
    high = one << np.uint64(m - 1)
    pv = ~np.uint64(0)
    mv = np.uint64(0)
    score = m
    a = seg_starts[si]
    n = seg_ends[si] - a
    lim = seg_limits[si]
    base = seg_offsets[si]
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
        if score <= k:
            s0 = t - m + 1 - g
            s1 = t - m + 1 + g
            if s0 < 0:
                s0 = 0
            if s1 > lim - a - 1:
                s1 = lim - a - 1
            for s in range(s0, s1 + 1):
                cand[pj, base + s] = 1


@nb.njit(cache=True, nogil=True)
def _verify_marked(text, seg_starts, seg_ends, seg_offsets, pattern_ids, lengths, masks, is_context, k, g, cand):
    """Verify every marked candidate start (same routine and output layout as the CPU search)."""
    cap = 1024
    n_out = 0
    out_start = np.empty(cap, dtype=np.int64)
    out_int = np.empty((cap, 10), dtype=np.int32)
    out_mask = np.empty((cap, 2), dtype=np.uint64)
    out_target = np.empty((cap, MAX_PATTERN + MAX_GAPS), dtype=np.uint8)
    row_int = np.zeros(10, dtype=np.int32)
    row_mask = np.zeros(2, dtype=np.uint64)
    row_target = np.zeros(MAX_PATTERN + MAX_GAPS, dtype=np.uint8)
    for pj in range(pattern_ids.shape[0]):
        j = pattern_ids[pj]
        m = lengths[j]
        for si in range(seg_starts.shape[0]):
            a = seg_starts[si]
            b = seg_ends[si]
            base = seg_offsets[si]
            for s in range(b - a):
                if cand[pj, base + s] == 0:
                    continue
                if _verify_start(text, a + s, b, masks[j], is_context[j], m, k, g, row_int, row_mask, row_target):
                    if n_out == cap:
                        cap *= 2
                        out_start = _grow1(out_start, cap)
                        out_int = _grow2i(out_int, cap)
                        out_mask = _grow2u(out_mask, cap)
                        out_target = _grow2b(out_target, cap)
                    out_start[n_out] = a + s
                    row_int[0] = j
                    out_int[n_out] = row_int
                    out_mask[n_out] = row_mask
                    out_target[n_out] = row_target
                    n_out += 1
    return out_start[:n_out], out_int[:n_out], out_mask[:n_out], out_target[:n_out]


def search_patterns_cuda(text, seg_starts, seg_ends, seg_limits, pattern_ids, peq, lengths, masks, is_context, k, g):
    """GPU filter + CPU verification; same return value as ``engine._search_patterns``."""
    lens = (seg_ends - seg_starts).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    total = int(lens.sum())
    n_threads = len(pattern_ids) * len(seg_starts)
    cand = np.zeros((len(pattern_ids), max(total, 1)), dtype=np.uint8)
    if n_threads:
        d_cand = cuda.to_device(cand)
        block = 128
        grid = (n_threads + block - 1) // block
        _myers_kernel[grid, block](cuda.to_device(text), cuda.to_device(seg_starts), cuda.to_device(seg_ends),
                                   cuda.to_device(seg_limits), cuda.to_device(offsets),
                                   cuda.to_device(pattern_ids), cuda.to_device(peq), cuda.to_device(lengths),
                                   k, g, d_cand)
        cand = d_cand.copy_to_host()
    return _verify_marked(text, seg_starts, seg_ends, offsets, pattern_ids, lengths, masks, is_context, k, g, cand)
